"""How values print: the text Kestra writes for each kind of value.

- strings as they are, ``null`` as nothing, booleans as ``true``/``false``;
- integers in decimal, floating-point numbers like Java's ``Double.toString`` (``1.0``,
  ``1.0E20``);
- maps and lists as compact JSON (``{"value":"x"}``, ``[1,2]``);
- date-times as ISO-8601 in UTC with milliseconds (``2024-01-01T00:00:00.000Z``).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
from collections.abc import Mapping
from typing import Any

from jinja2.runtime import LoopContext

from .errors import EvaluationError, PebbleUndefined

# Kestra's TruthUtils: these rendered values (trimmed) are false, everything else is true.
FALSE_STRINGS = frozenset({"false", "0", "-0", ""})


def java_double(value: float) -> str:
    """``Double.toString``: plain notation in [1e-3, 1e7), ``d.dddE±n`` outside, shortest digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        if "e" in text or "E" in text:  # repr switches to exponents below 1e-4 only
            text = format(decimal.Decimal(text), "f")
        return text if "." in text else text + ".0"
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    digits_text = "".join(map(str, digits)).rstrip("0") or "0"
    scientific_exponent = len(digits) - 1 + int(exponent)
    mantissa = digits_text[0] + "." + (digits_text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{scientific_exponent}"


def iso_datetime(value: _dt.datetime) -> str:
    """A date-time as ISO-8601 in UTC with milliseconds; a naive one is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    value = value.astimezone(_dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def loop_as_map(loop: LoopContext) -> dict[str, Any]:
    """Pebble's ``loop`` variable: zero-based ``index`` and ``revindex``."""
    return {"index": loop.index0, "revindex": loop.revindex0, "first": loop.first,
            "last": loop.last, "length": loop.length}


def _json_default(value: Any) -> Any:
    if isinstance(value, PebbleUndefined):
        value._fail_with_undefined_error()
    if isinstance(value, _dt.datetime):
        return iso_datetime(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, LoopContext):
        return loop_as_map(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise EvaluationError(f"A value of type {type(value).__name__} cannot be written as JSON")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


def to_json(value: Any) -> str:
    """Compact JSON, as Kestra's Jackson mapper writes it (non-ASCII kept, no spaces)."""
    try:
        return _ENCODER.encode(value)
    except RecursionError:
        raise EvaluationError("The value is nested too deeply to be written as JSON") from None
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"The value cannot be written as JSON: {exc}") from None


def to_string(value: Any) -> str:
    """The text of a value when it is printed by ``{{ }}``."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return java_double(value)
    if isinstance(value, PebbleUndefined):
        value._fail_with_undefined_error()
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return java_double(float(value))
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, _dt.datetime):
        return iso_datetime(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, LoopContext):
        return to_json(loop_as_map(value))
    if isinstance(value, (list, tuple, Mapping, set, frozenset)):
        return to_json(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise EvaluationError(f"A value of type {type(value).__name__} cannot be printed")


def java_string(value: Any) -> str:
    """``String.valueOf`` as Pebble uses it when concatenating with ``+``: null is "null"."""
    return "null" if value is None else to_string(value)


def is_truthy(value: Any) -> bool:
    """Kestra's truthiness of a rendered condition (``If``, ``runIf``, ``Switch``...).

    ``None`` is false; otherwise the value's printed text, trimmed, is false when it is one of
    ``false``, ``0``, ``-0`` or the empty string, and true for everything else — so ``0.0``,
    ``[]`` and ``{}`` are true, exactly as in Kestra, where the condition is a rendered string.
    """
    if value is None:
        return False
    if type(value) is str:
        return value.strip() not in FALSE_STRINGS
    try:
        return to_string(value).strip() not in FALSE_STRINGS
    except EvaluationError:
        return True


def ensure_defined(value: Any, _depth: int = 0) -> Any:
    """Raise if an undefined value hides anywhere in ``value`` (a list or map literal can hold one)."""
    if isinstance(value, PebbleUndefined):
        value._fail_with_undefined_error()
    if _depth > 200:
        raise EvaluationError("The value is nested too deeply")
    if type(value) is dict:
        for item in value.values():
            if type(item) in (dict, list) or isinstance(item, PebbleUndefined):
                ensure_defined(item, _depth + 1)
    elif type(value) is list:
        for item in value:
            if type(item) in (dict, list) or isinstance(item, PebbleUndefined):
                ensure_defined(item, _depth + 1)
    elif isinstance(value, LoopContext):
        return loop_as_map(value)
    return value

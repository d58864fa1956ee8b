"""How each input type reads a given value and what it checks: the per-type half of
orchestrator/inputs.py. Pure Python (no Django), so it is tested without a database.

A value arrives as text (a form, `flow run --input k=v`) or as a JSON value (the API); each
reader returns the typed value as plain JSON data, or raises Invalid with the reason, written to
follow "input `id`: ". Temporal values are kept as ISO-8601 text because execution.inputs is a
JSON column and expressions compare and print them as Kestra's Java types would.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Mapping

import regex

from orchestrator.flowlang.errors import FlowSyntaxError
from orchestrator.flowlang.types import parse_duration
from orchestrator.flowlang.yaml_loader import load_yaml_value
from orchestrator.storage.uris import InvalidStorageURI, parse_uri

# Types whose empty text is a value; for every other type "" (an empty form field) means "not given".
TEXT_TYPES = frozenset({"STRING", "SECRET", "ENUM", "SELECT"})

_WHOLE = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*")
# A `validator` is the flow author's and the value the caller's: the match is bounded in time, so
# that a pattern that backtracks badly cannot hold the process creating the execution.
VALIDATOR_TIMEOUT_SECONDS = 1.0
# Deliberately loose, as address syntax is: one @, no spaces, a dot in the domain.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


class Invalid(ValueError):
    """A value refused for a reason the user can act on."""


def shown(value: Any, secret: bool = False) -> str:
    """A given value as an error message quotes it: short, and never a secret."""
    if secret:
        return "the value"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# -- readers ----------------------------------------------------------------------------------------

def read_text(value: Any, declaration: Mapping[str, Any]) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise Invalid(f"expected text, not {_kind(value)}")


def read_int(value: Any, declaration: Mapping[str, Any]) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{shown(value)} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        try:
            return int(value.strip())
        except ValueError:  # more digits than Python converts
            raise Invalid(f"{shown(value)} is too large a number") from None
    raise Invalid(f"{shown(value)} is not a whole number")


def read_float(value: Any, declaration: Mapping[str, Any]) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value.strip())
    if number is None:
        raise Invalid(f"{shown(value)} is not a number")
    if not math.isfinite(number):  # NaN and infinities are not JSON
        raise Invalid(f"{shown(value)} is not a finite number")
    return number


def read_bool(value: Any, declaration: Mapping[str, Any]) -> bool:
    # Stricter than Java's Boolean.valueOf, which reads any typo as false.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Invalid(f"{shown(value)} is not a boolean (true or false)")


def _iso_text(value: Any, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{shown(value)} is not {example}")
    return value.strip()


def parse_datetime(value: Any) -> datetime:
    text = _iso_text(value, "an ISO-8601 date-time such as 2024-01-15T10:00:00Z")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{shown(value)} is not an ISO-8601 date-time such as 2024-01-15T10:00:00Z") from None
    if moment.tzinfo is None:
        # An instant needs a zone (Kestra's Instant.parse refuses one without it too).
        raise Invalid(f"{shown(value)} has no time zone: end it with Z or an offset such as +02:00")
    return moment


def instant_text(moment: datetime) -> str:
    """Java's Instant.toString: UTC, a Z, and as many groups of three decimals as needed."""
    moment = moment.astimezone(timezone.utc)
    micros = moment.microsecond
    fraction = "" if micros == 0 else f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def read_datetime(value: Any, declaration: Mapping[str, Any]) -> str:
    return instant_text(parse_datetime(value))


def parse_date(value: Any) -> date:
    text = _iso_text(value, "an ISO-8601 date such as 2024-01-15")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{shown(value)} is not an ISO-8601 date such as 2024-01-15") from None


def read_date(value: Any, declaration: Mapping[str, Any]) -> str:
    return parse_date(value).isoformat()


def parse_time(value: Any) -> time:
    text = _iso_text(value, "an ISO-8601 time such as 10:15:30")
    try:
        moment = time.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{shown(value)} is not an ISO-8601 time such as 10:15:30") from None
    if moment.tzinfo is not None:
        raise Invalid(f"{shown(value)} has a time zone; a TIME is a time of day without one, such as 10:15:30")
    return moment


def read_time(value: Any, declaration: Mapping[str, Any]) -> str:
    return parse_time(value).isoformat()


def parse_duration_value(value: Any) -> timedelta:
    duration = parse_duration(value) if isinstance(value, str) else None
    if duration is None:
        raise Invalid(f"{shown(value)} is not an ISO-8601 duration such as PT30S, PT5M or P1D")
    return duration


def duration_text(duration: timedelta) -> str:
    """Java's Duration.toString: hours, minutes and seconds (a day is PT24H), PT0S for zero."""
    micros = duration // timedelta(microseconds=1)
    if micros == 0:
        return "PT0S"
    sign = "-" if micros < 0 else ""
    hours, rest = divmod(abs(micros), 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    text = "PT"
    if hours:
        text += f"{sign}{hours}H"
    if minutes:
        text += f"{sign}{minutes}M"
    if seconds or fraction:
        decimals = f".{fraction:06d}".rstrip("0") if fraction else ""
        text += f"{sign}{seconds}{decimals}S"
    return text


def read_duration(value: Any, declaration: Mapping[str, Any]) -> str:
    return duration_text(parse_duration_value(value))


def read_file(value: Any, declaration: Mapping[str, Any]) -> str:
    """A FILE input is the `kestra:///…` URI of a file in the internal storage (an upload is given
    its URI before the inputs are read: orchestrator/input_files.py), read by the storage's own
    rules and returned in its one canonical spelling. Whether it exists, and whether the execution
    may read it, is checked where the storage is at hand."""
    if not isinstance(value, str):
        raise Invalid(f"{shown(value)} is not an internal storage URI such as kestra:///company/team/file.csv")
    try:
        location = parse_uri(value.strip())
    except InvalidStorageURI as error:
        raise Invalid(str(error)) from None
    extensions = list(declaration.get("allowedFileExtensions") or [])
    if declaration.get("extension"):
        extensions.append(declaration["extension"])
    if extensions:
        wanted = [ext if ext.startswith(".") else f".{ext}" for ext in map(str, extensions)]
        if not any(location.name.lower().endswith(ext.lower()) for ext in wanted):
            raise Invalid(f"{shown(value)} is not a file of type {', '.join(wanted)}")
    return location.uri


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _plain(value: Any, depth: int = 0) -> Any:
    """Check that data is JSON: finite numbers, string keys, not absurdly deep."""
    if depth > 100:
        raise Invalid("the value is nested more than 100 levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid("the value holds a number that is not finite")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(f"the value has a key that is not text: {shown(key)}")
            _plain(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _plain(item, depth + 1)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise Invalid(f"expected JSON data, not {_kind(value)}")
    return value


def read_json(value: Any, declaration: Mapping[str, Any]) -> Any:
    if not isinstance(value, str):
        return _plain(value)  # already parsed (the API sends JSON)
    try:
        return _plain(json.loads(value, parse_constant=_refuse_constant))
    except RecursionError:
        raise Invalid("the JSON is nested too deeply") from None
    except ValueError as error:
        raise Invalid(f"{shown(value)} is not valid JSON: {error}") from None


def read_yaml(value: Any, declaration: Mapping[str, Any]) -> Any:
    if not isinstance(value, str):
        return _plain(value)
    try:
        return _plain(load_yaml_value(value))
    except FlowSyntaxError as error:
        reason = error.message.removeprefix("invalid YAML: ")
        where = f" at line {error.line}" if error.line else ""
        raise Invalid(f"{shown(value)} is not valid YAML: {reason}{where}") from None


def read_uri(value: Any, declaration: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or not _URI.fullmatch(value.strip()):
        raise Invalid(f"{shown(value)} is not a URI such as https://example.com/path")
    return value.strip()


def read_email(value: Any, declaration: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value.strip()):
        raise Invalid(f"{shown(value)} is not an email address")
    return value.strip()


def read_list(value: Any) -> list[Any]:
    """A list given as such, or as the text of a JSON list (forms and the CLI)."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, list):
            return parsed
    raise Invalid(f'{shown(value)} is not a list such as ["a", "b"]')


def read_items(value: Any, declaration: Mapping[str, Any], default_type: str) -> list[Any]:
    item_type = declaration.get("itemType") or default_type
    reader = READERS.get(item_type)
    if reader is None or item_type in ("ARRAY", "MULTISELECT"):
        raise Invalid(f"the items cannot be of type {item_type}")
    items, reasons = [], []
    for index, item in enumerate(read_list(value)):
        try:
            items.append(reader(item, {}))
        except Invalid as error:
            reasons.append(f"item {index + 1}: {error}")
    if reasons:
        raise Invalid("; ".join(reasons))
    return items


def read_array(value: Any, declaration: Mapping[str, Any]) -> list[Any]:
    return read_items(value, declaration, "STRING")


READERS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "STRING": read_text, "SECRET": read_text, "ENUM": read_text, "SELECT": read_text,
    "INT": read_int, "FLOAT": read_float, "BOOLEAN": read_bool, "BOOL": read_bool,
    "DATETIME": read_datetime, "DATE": read_date, "TIME": read_time, "DURATION": read_duration,
    "FILE": read_file, "JSON": read_json, "YAML": read_yaml, "URI": read_uri, "EMAIL": read_email,
    "ARRAY": read_array, "MULTISELECT": read_array,
}


# -- validators -------------------------------------------------------------------------------------

def check(input_type: str, value: Any, declaration: Mapping[str, Any], *, choices: list[str] | None) -> list[str]:
    """Every rule of the declaration the typed value breaks, as reasons (empty: valid)."""
    secret = input_type == "SECRET"
    reasons: list[str] = []
    pattern = declaration.get("validator")
    if isinstance(pattern, str) and isinstance(value, str):
        try:
            if regex.fullmatch(pattern, value, regex.VERSION0, timeout=VALIDATOR_TIMEOUT_SECONDS) is None:
                reasons.append(f"{shown(value, secret)} does not match the pattern `{pattern}`")
        except regex.error as error:
            reasons.append(f"the `validator` {pattern!r} is not a valid regular expression: {error}")
        except TimeoutError:
            reasons.append(f"checking {shown(value, secret)} against the pattern `{pattern}` takes too long")
    reasons += _check_length(value, declaration, secret)
    if input_type in ("INT", "FLOAT"):
        reasons += _check_range(value, declaration, "min", "max", _number, str)
    elif input_type == "DURATION":
        reasons += _check_range(parse_duration_value(value), declaration, "min", "max", _duration_bound,
                                duration_text)
    elif input_type in _TEMPORAL:
        parse = _TEMPORAL[input_type]
        reasons += _check_range(parse(value), declaration, "after", "before", _bound(parse), lambda _: shown(value))
    if choices is not None and not declaration.get("allowCustomValue"):
        chosen = value if isinstance(value, list) else [value]
        allowed = [str(choice) for choice in choices]
        for item in chosen:
            if str(item) not in allowed:
                reasons.append(f"{shown(item, secret)} is not one of {', '.join(allowed) or '(no values)'}")
    return reasons


def _check_length(value: Any, declaration: Mapping[str, Any], secret: bool) -> list[str]:
    low, high = declaration.get("minLength"), declaration.get("maxLength")
    if isinstance(value, str):
        size, unit = len(value), "character"
    elif isinstance(value, list):
        size, unit = len(value), "item"
    else:
        return []
    what = f"{shown(value, secret)} has {size} {unit}{'' if size == 1 else 's'}"
    if isinstance(low, int) and size < low:
        return [f"{what}; at least {low} are required"]
    if isinstance(high, int) and size > high:
        return [f"{what}; at most {high} are allowed"]
    return []


def _number(bound: Any) -> float:
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise Invalid(f"{shown(bound)} is not a number")
    return bound


def _duration_bound(bound: Any) -> timedelta:
    duration = parse_duration(bound)  # a bound may be written as a number of seconds
    if duration is None:
        raise Invalid(f"{shown(bound)} is not a duration")
    return duration


def _bound(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_bound(bound: Any) -> Any:
        if parse is parse_datetime and isinstance(bound, str):
            try:
                moment = datetime.fromisoformat(bound.strip())
            except ValueError:
                raise Invalid(f"{shown(bound)} is not a date-time") from None
            # A bound written without a zone is read in UTC, as the values are compared there.
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return parse(bound)
    return parse_bound


def _check_range(value: Any, declaration: Mapping[str, Any], low_key: str, high_key: str,
                 parse: Callable[[Any], Any], show: Callable[[Any], str]) -> list[str]:
    """Bounds are inclusive, as Kestra's (a value equal to `min` or `after` is accepted)."""
    reasons = []
    for key in (low_key, high_key):
        raw = declaration.get(key)
        if raw is None:
            continue
        try:
            bound = parse(raw)
        except Invalid as error:
            reasons.append(f"the bound `{key}` cannot be read: {error}")
            continue
        if (key == low_key and value < bound) or (key == high_key and value > bound):
            reasons.append(_OUT_OF_RANGE[key].format(value=show(value), bound=raw))
    return reasons


_OUT_OF_RANGE = {
    "min": "{value} is less than the minimum {bound}",
    "max": "{value} is more than the maximum {bound}",
    "after": "{value} is before {bound}, the earliest allowed (`after`)",
    "before": "{value} is after {bound}, the latest allowed (`before`)",
}
_TEMPORAL: dict[str, Callable[[Any], Any]] = {"DATETIME": parse_datetime, "DATE": parse_date, "TIME": parse_time}

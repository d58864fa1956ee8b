"""Data filters: JSON, YAML, Ion, jq, numbers, encodings and hashes."""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import yaml

from . import registry
from .errors import EvaluationError
from .formatting import iso_datetime, to_json, to_string
from .limits import MAX_COLLECTION_ITEMS
from .operators import is_number, to_number, type_name

# -- JSON ------------------------------------------------------------------------------------

@registry.filter("toJson", "json", "jsonEncode")
def to_json_filter(call, value):
    """The value as compact JSON (``null`` for null)."""
    return to_json(value)


def parse_json(text: Any, label: str) -> Any:
    if text is None:
        return None
    if not isinstance(text, str):
        raise EvaluationError(f"The '{label}' function expects an argument 'json' with type string.")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise EvaluationError(f"Invalid json: {exc}") from None


@registry.filter("fromJson", "jsonDecode")
def from_json_filter(call, value):
    return parse_json(value, "fromJson")


# -- YAML ------------------------------------------------------------------------------------

class _YamlDumper(yaml.SafeDumper):
    """Lists indented under their key, as Kestra's Jackson YAML writer (INDENT_ARRAYS) does."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


_YamlDumper.add_representer(tuple, _YamlDumper.represent_list)
_YamlDumper.add_multi_representer(
    __import__("datetime").datetime, lambda dumper, value: dumper.represent_str(iso_datetime(value)))
_YamlDumper.add_multi_representer(
    decimal.Decimal, lambda dumper, value: dumper.represent_float(float(value)))


def to_yaml(value: Any) -> str:
    if value is None:
        return "null"
    try:
        text = yaml.dump(value, Dumper=_YamlDumper, default_flow_style=False, sort_keys=False,
                         allow_unicode=True, width=2**31 - 1)
    except yaml.YAMLError as exc:
        raise EvaluationError(f"Unable to transform to yaml value: {exc}") from None
    return text[:-4] if text.endswith("\n...\n") else text


@registry.filter("yaml", "toYaml")
def to_yaml_filter(call, value):
    """The value written as a YAML document."""
    return to_yaml(value)


def _expanded_size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """Items of a value once shared references (YAML aliases) are written out in full."""
    if depth > 200:
        raise EvaluationError("The value is nested too deeply")
    if not isinstance(value, (list, dict)):
        return 1
    known = memo.get(id(value))
    if known is not None:
        return known
    children = value.values() if isinstance(value, dict) else value
    size = 1
    for child in children:
        size += _expanded_size(child, memo, depth + 1)
        if size > MAX_COLLECTION_ITEMS:
            raise EvaluationError(f"The YAML document expands to more than {MAX_COLLECTION_ITEMS} items")
    memo[id(value)] = size
    return size


def parse_yaml(text: Any) -> Any:
    if not isinstance(text, str):
        raise EvaluationError("The 'yaml' function expects an argument 'yaml' with type string.")
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise EvaluationError(f"Invalid yaml: {exc}") from None
    _expanded_size(value, {})
    return value


# -- Ion -------------------------------------------------------------------------------------

_ION_SYMBOL = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_ION_KEYWORDS = {"null", "true", "false", "nan"}


def _ion_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{text.rstrip('0').rstrip('.') if '.' in text else text}e0"


def to_ion(value: Any, depth: int = 0) -> str:
    """Ion text, as Kestra's Jackson Ion writer prints it (``{key:"value",n:1,f:1.5e0}``)."""
    if depth > 200:
        raise EvaluationError("The value is nested too deeply")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _ion_float(value)
    if isinstance(value, Mapping):
        fields = []
        for key, item in value.items():
            name = to_string(key)
            symbol = name if _ION_SYMBOL.match(name) and name not in _ION_KEYWORDS else "'" + \
                name.replace("\\", "\\\\").replace("'", "\\'") + "'"
            fields.append(f"{symbol}:{to_ion(item, depth + 1)}")
        return "{" + ",".join(fields) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_ion(item, depth + 1) for item in value) + "]"
    return json.dumps(to_string(value), ensure_ascii=False)


@registry.filter("toIon")
def to_ion_filter(call, value):
    return to_ion(value)


# -- jq --------------------------------------------------------------------------------------

@registry.filter("jq")
def jq_filter(call, value, expression):
    """Apply a jq program; the result is always the list of its outputs (use ``| first``)."""
    from .jqrunner import run_jq

    if value is None:
        return None
    if not isinstance(expression, str):
        raise EvaluationError("The 'jq' filter expects an argument 'expression'.")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise EvaluationError(f"Unable to parse jq value '{value[:100]}': it is not JSON") from None
    return run_jq(expression, to_json(value))


# -- numbers ---------------------------------------------------------------------------------

def _parse_number(text: str) -> int | float:
    """commons-lang NumberUtils.createNumber: hex, decimals, exponents, type suffixes."""
    value = text.strip()
    lowered = value.lower()
    try:
        if lowered.startswith(("0x", "-0x", "#", "-#")):
            return int(lowered.replace("#", "0x", 1), 16)
        if lowered.endswith("l") and lowered[:-1].lstrip("+-").isdigit():
            return int(value[:-1])
        if lowered.endswith(("f", "d")) and not lowered.endswith("inf"):
            return float(value[:-1])
        if any(c in lowered for c in ".e") and lowered not in ("nan", "inf", "-inf"):
            return float(value)
        return int(value, 10)
    except ValueError:
        raise EvaluationError(f"{text} is not a valid number.") from None


@registry.filter("number")
def number(call, value, type=None):
    """Parse a string to a number; ``type``: INT, LONG, FLOAT, DOUBLE, BIGDECIMAL, BIGINTEGER."""
    if value is None:
        return None
    if is_number(value):
        return value
    if not isinstance(value, str):
        raise EvaluationError(f"'number' filter can only be applied to String. Actual type was: {type_name(value)}")
    kind = (type or "").upper()
    if kind in ("INT", "LONG", "BIGINTEGER"):
        parsed = _parse_number(value)
        if isinstance(parsed, float):
            raise EvaluationError(f"For input string: \"{value}\" (not an integer)")
        limits = {"INT": 2**31, "LONG": 2**63}
        if kind in limits and not -limits[kind] <= parsed < limits[kind]:
            raise EvaluationError(f"For input string: \"{value}\" (out of range for {kind})")
        return parsed
    if kind in ("FLOAT", "DOUBLE"):
        return float(_parse_number(value))
    if kind == "BIGDECIMAL":
        try:
            exact = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            raise EvaluationError(f"{value} is not a valid number.") from None
        return int(exact) if exact == exact.to_integral_value() else float(exact)
    if kind:
        raise EvaluationError(f"Unknown number type '{type}' (INT, LONG, FLOAT, DOUBLE, BIGDECIMAL, BIGINTEGER)")
    return _parse_number(value)


@registry.filter("abs")
def abs_filter(call, value):
    return None if value is None else abs(to_number(value))


@registry.filter("round")
def round_filter(call, value, precision=0, method="common"):
    """Round to ``precision`` decimals; ``method``: common (half away from zero), ceil, floor."""
    if value is None:
        return None
    number_value = decimal.Decimal(repr(to_number(value)))
    if not is_number(precision):
        raise EvaluationError("The round precision must be a number")
    modes = {"common": decimal.ROUND_HALF_UP, "ceil": decimal.ROUND_CEILING, "floor": decimal.ROUND_FLOOR}
    if method not in modes:
        raise EvaluationError("The round method must be 'common', 'ceil' or 'floor'")
    rounded = number_value.quantize(decimal.Decimal(1).scaleb(-int(precision)), rounding=modes[method])
    return int(rounded) if int(precision) <= 0 else float(rounded)


_NUMBER_PATTERN = re.compile(r"^(?P<prefix>[^#0,.]*)(?P<number>[#0,.]+)(?P<suffix>.*)$")


def decimal_format(value: Any, pattern: str) -> str:
    """java.text.DecimalFormat for the usual patterns: ``#``, ``0``, ``,`` grouping, ``.``, ``%``."""
    match = _NUMBER_PATTERN.match(pattern.split(";")[0])
    if not match or match.group("number").count(".") > 1 or re.match(r"E[0#]", match.group("suffix")):
        raise EvaluationError(f"Unsupported number format pattern '{pattern}'")
    prefix, numeric, suffix = match.group("prefix"), match.group("number"), match.group("suffix")
    integer_part, _, fraction_part = numeric.partition(".")
    grouping = len(integer_part) - integer_part.rindex(",") - 1 if "," in integer_part else 0
    min_integer = integer_part.count("0")
    min_fraction, max_fraction = fraction_part.count("0"), len(fraction_part.replace(",", ""))
    amount = decimal.Decimal(repr(to_number(value)) if not isinstance(value, decimal.Decimal) else value)
    if not amount.is_finite():
        return "NaN" if amount.is_nan() else ("∞" if amount > 0 else "-∞")
    if "%" in prefix + suffix:
        amount *= 100
    elif "‰" in prefix + suffix:
        amount *= 1000
    rounded = amount.quantize(decimal.Decimal(1).scaleb(-max_fraction), rounding=decimal.ROUND_HALF_EVEN)
    integer_digits, _, fraction_digits = format(abs(rounded), "f").partition(".")
    fraction_digits = fraction_digits.rstrip("0").ljust(min_fraction, "0")
    integer_digits = integer_digits.lstrip("0").rjust(min_integer, "0")
    if grouping and integer_digits:
        groups = []
        while len(integer_digits) > grouping:
            groups.insert(0, integer_digits[-grouping:])
            integer_digits = integer_digits[:-grouping]
        integer_digits = ",".join([integer_digits, *groups]) if integer_digits else ",".join(groups)
    body = integer_digits + ("." + fraction_digits if fraction_digits else "")
    if not body:
        body = "0"
    sign = "-" if rounded < 0 and any(c not in "0.," for c in body) else ""
    return f"{prefix.replace(chr(39), '')}{sign}{body}{suffix.replace(chr(39), '')}"


@registry.filter("numberFormat", "numberformat")
def number_format(call, value, format):
    """Format a number with a java.text.DecimalFormat pattern, e.g. ``#,##0.00``."""
    if value is None:
        return None
    if not isinstance(format, str):
        raise EvaluationError("The 'numberFormat' filter expects a pattern string")
    return decimal_format(value, format)


# -- encodings and hashes --------------------------------------------------------------------

def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else to_string(value).encode("utf-8")


@registry.filter("base64encode")
def base64_encode(call, value):
    return None if value is None else base64.b64encode(_bytes(value)).decode("ascii")


@registry.filter("base64decode")
def base64_decode(call, value):
    if value is None:
        return None
    try:
        return base64.b64decode(_bytes(value), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise EvaluationError("The 'base64decode' filter got an invalid base64 string") from None


@registry.filter("urlencode")
def urlencode(call, value):
    """``URLEncoder.encode(value, UTF-8)``: spaces as '+', only ``a-zA-Z0-9.-*_`` kept."""
    if value is None:
        return None
    return urllib.parse.quote_plus(to_string(value), safe="*").replace("~", "%7E")


@registry.filter("urldecode")
def urldecode(call, value):
    return None if value is None else urllib.parse.unquote_plus(to_string(value))


def _digest(algorithm: str):
    def digest(call, value):
        return None if value is None else hashlib.new(algorithm, _bytes(value)).hexdigest()
    digest.__doc__ = f"The {algorithm} digest of the text, in lower-case hexadecimal."
    return digest


for _name, _algorithm in (("md5", "md5"), ("sha1", "sha1"), ("sha256", "sha256"), ("sha512", "sha512")):
    registry.filter(_name)(_digest(_algorithm))

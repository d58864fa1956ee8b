"""Pebble's operators with Pebble's semantics (io.pebbletemplates OperatorUtils, Kestra overrides).

- Arithmetic widens like Java: integers stay integers (``7 / 2`` is ``3``, ``-7 % 2`` is ``-1``),
  any float makes a float; numeric strings are converted (``"5" * 2`` is ``10``); ``+`` with a
  string concatenates; ``+``/``-`` on a list add or remove items.
- Comparisons ``< <= > >=`` compare numbers, or two strings lexicographically (Kestra); ``null``
  on either side is false; anything else is an error.
- ``==`` compares numbers by value (``1 == 1.0``) and everything else by equality, never a
  boolean with a number.

Python's ``bool`` is an ``int``; every numeric test here excludes it on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import EvaluationError, raise_if_undefined
from .formatting import java_string, to_string
from .limits import MAX_RANGE_ITEMS, check_items, check_string_length


def is_number(value: Any) -> bool:
    kind = type(value)
    return (kind is int or kind is float) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def to_number(value: Any) -> int | float:
    """OperatorUtils.toNumber: numbers as they are, strings parsed (a '.', 'e' or 'E' makes a float)."""
    if is_number(value):
        return value
    raise_if_undefined(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if "." in text or "e" in text or "E" in text:
                return float(text)
            return int(text, 10)
        except ValueError:
            pass
    raise EvaluationError(f"Cannot convert to Number: {java_string(value)}")


def _arith(left: Any, right: Any, symbol: str) -> int | float:
    a, b = to_number(left), to_number(right)
    if symbol == "+":
        return a + b
    if symbol == "-":
        return a - b
    if symbol == "*":
        return a * b
    if type(a) is int and type(b) is int:
        if b == 0:
            raise EvaluationError("Division by zero")
        quotient = abs(a) // abs(b)  # Java truncates towards zero
        if symbol == "/":
            return quotient if (a >= 0) == (b > 0) else -quotient
        remainder = abs(a) - quotient * abs(b)
        return remainder if a >= 0 else -remainder
    a, b = float(a), float(b)
    if b == 0.0:  # Java floating point: no exception
        if symbol == "%" or a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b if symbol == "/" else math.fmod(a, b)


def add(left: Any, right: Any) -> Any:
    if isinstance(left, str) or isinstance(right, str):
        a, b = java_string(left), java_string(right)
        check_string_length(len(a) + len(b))
        return a + b
    if isinstance(left, (list, tuple)):
        extra = list(right) if isinstance(right, (list, tuple)) else [right]
        check_items(len(left) + len(extra))
        return [*left, *extra]
    return _arith(left, right, "+")


def subtract(left: Any, right: Any) -> Any:
    if isinstance(left, (list, tuple)):
        result = list(left)
        if isinstance(right, (list, tuple)):
            return [item for item in result if not any(equals(item, r) for r in right)]
        for index, item in enumerate(result):
            if equals(item, right):
                del result[index]
                break
        return result
    return _arith(left, right, "-")


def multiply(left: Any, right: Any) -> Any:
    return _arith(left, right, "*")


def divide(left: Any, right: Any) -> Any:
    return _arith(left, right, "/")


def modulo(left: Any, right: Any) -> Any:
    return _arith(left, right, "%")


def negate(value: Any) -> Any:
    return _arith(-1, value, "*")


def positive(value: Any) -> Any:
    return _arith(1, value, "*")


def equals(left: Any, right: Any) -> bool:
    raise_if_undefined(left)
    raise_if_undefined(right)
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    if is_number(left) != is_number(right):
        return False
    try:
        return bool(left == right)
    except EvaluationError:
        raise
    except Exception:  # exotic values from a context: unequal rather than a crash
        return False


def not_equals(left: Any, right: Any) -> bool:
    return not equals(left, right)


_COMPARISON_NAMES = {"<": "less than", "<=": "less than or equals", ">": "greater than",
                     ">=": "greater than or equals"}


def compare(symbol: str, left: Any, right: Any) -> bool:
    raise_if_undefined(left)
    raise_if_undefined(right)
    if left is None or right is None:
        return False
    if isinstance(left, str) and isinstance(right, str):
        pass
    elif not (is_number(left) and is_number(right)):
        raise EvaluationError(
            f"Could not perform {_COMPARISON_NAMES[symbol]} comparison between "
            f"{type_name(left)} and {type_name(right)}")
    if symbol == "<":
        return left < right
    if symbol == "<=":
        return left <= right
    if symbol == ">":
        return left > right
    return left >= right


def concat(left: Any, right: Any) -> str:
    """``~``: the printed text of both sides, ``null`` printing as nothing."""
    a, b = to_string(left), to_string(right)
    check_string_length(len(a) + len(b))
    return a + b


def _member(collection: Any, item: Any) -> bool:
    return any(equals(element, item) for element in collection)


def contains(left: Any, right: Any) -> bool:
    """Pebble's ``contains``: item of a list, key of a map, substring of a string."""
    raise_if_undefined(left)
    raise_if_undefined(right)
    if left is None:
        return False
    if isinstance(left, Mapping):
        if isinstance(right, (list, tuple)):
            return all(_has_key(left, key) for key in right)
        return _has_key(left, right)
    if isinstance(left, (list, tuple)):
        if isinstance(right, (list, tuple)):
            return all(_member(left, element) for element in right)
        return _member(left, right)
    if isinstance(left, str):
        return to_string(right) in left
    raise EvaluationError(
        "Contains operator can only be used on Collections, Maps and Strings. "
        f"Actual type of the left operand was: {type_name(left)}")


def _has_key(mapping: Mapping, key: Any) -> bool:
    try:
        if key in mapping:
            return True
    except TypeError:
        return False
    return not isinstance(key, str) and to_string(key) in mapping


def is_in(left: Any, right: Any) -> bool:
    """Kestra's ``isIn``: compares printed forms; for a map, any key or value matches."""
    raise_if_undefined(left)
    raise_if_undefined(right)
    if left is None or right is None:
        return False
    needle = to_string(left)
    if isinstance(right, Mapping):
        return any(to_string(k) == needle or to_string(v) == needle for k, v in right.items())
    if isinstance(right, (list, tuple)):
        return any(to_string(item) == needle for item in right)
    return False


def number_range(start: Any, end: Any, increment: Any = 1) -> list:
    """Pebble's ``range``/``..``: both ends included; numbers or single characters."""
    raise_if_undefined(start)
    raise_if_undefined(end)
    if increment is None:
        increment = 1
    if not is_number(increment):
        raise EvaluationError(f"The increment of the range function must be a number {java_string(increment)}")
    step = int(increment)
    if step == 0:
        raise EvaluationError("The increment of the range function must be different than 0")
    if is_number(start) and is_number(end):
        first, last = int(start), int(end)
        _check_range(first, last, step)
        stop = last + 1 if step > 0 else last - 1
        return list(range(first, stop, step))
    if isinstance(start, str) and isinstance(end, str) and len(start) == 1 and len(end) == 1:
        first, last = ord(start), ord(end)
        _check_range(first, last, step)
        stop = last + 1 if step > 0 else last - 1
        return [chr(code) for code in range(first, stop, step)]
    raise EvaluationError("Arguments of range function must be of type Number or String with a length of 1")


def _check_range(first: int, last: int, step: int) -> None:
    if (step > 0 and last < first) or (step < 0 and last > first):
        return
    size = abs(last - first) // abs(step) + 1
    if size > MAX_RANGE_ITEMS:
        raise EvaluationError(
            f"The range function cannot produce more than {MAX_RANGE_ITEMS} elements, "
            f"but this call would produce {size}.")


def truth(value: Any) -> bool:
    """A condition of ``{% if %}``, ``? :``, ``not``, ``and``, ``or`` (Pebble's boolean cast).

    Booleans as they are, numbers true unless zero, strings true unless empty (so the string
    "false" is true here, as in Pebble — use ``== 'true'`` for text flags). Pebble refuses
    ``null`` and collections in conditions; here ``null`` is false and a collection is true
    unless empty.
    """
    kind = type(value)
    if kind is bool:
        return value
    if value is None:
        return False
    raise_if_undefined(value)
    if kind is str:
        return value != ""
    if is_number(value):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, (list, tuple, Mapping, set)):
        return len(value) > 0
    return True


def type_name(value: Any) -> str:
    """A user-facing name of a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__

"""Tests: ``value is name`` and ``value is not name``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import registry
from .errors import EvaluationError, PebbleUndefined
from .formatting import java_string
from .operators import is_number

_JAVA_WHITESPACE = "".join(chr(code) for code in range(33))

@registry.test("defined", soft=True)
def defined_test(call, value):
    """Pebble: defined means it exists and is not null."""
    return not isinstance(value, PebbleUndefined) and value is not None


@registry.test("null")
def null_test(call, value):
    return value is None


@registry.test("empty")
def empty_test(call, value):
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip(_JAVA_WHITESPACE) == ""
    if isinstance(value, (list, tuple, Mapping, set)):
        return len(value) == 0
    return False


def _parity(value: Any, name: str) -> int:
    if value is None:
        raise EvaluationError(f'Can not pass null value to "{name}" test.')
    if not is_number(value) or value != int(value):
        raise EvaluationError(f'The "{name}" test expects an integer, not {java_string(value)}')
    return int(value) % 2


@registry.test("even")
def even_test(call, value):
    return _parity(value, "even") == 0


@registry.test("odd")
def odd_test(call, value):
    return _parity(value, "odd") == 1


@registry.test("iterable")
def iterable_test(call, value):
    return isinstance(value, (list, tuple, set))


@registry.test("map")
def map_test(call, value):
    return isinstance(value, Mapping)


@registry.test("json")
def json_test(call, value):
    """Whether the value is a string holding valid JSON."""
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True

"""Collection filters: lists and maps, with Pebble's and Kestra's semantics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import registry
from .errors import EvaluationError
from .formatting import java_string, to_string
from .limits import check_items, check_string_length
from .operators import equals, is_number, type_name


@registry.filter("first")
def first(call, value):
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise EvaluationError("The 'first' filter got an empty string")
        return value[0]
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    raise EvaluationError(f"The 'first' filter expects a list or a string, not a {type_name(value)}")


@registry.filter("last")
def last(call, value):
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise EvaluationError("The 'last' filter got an empty string")
        return value[-1]
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    raise EvaluationError(f"The 'last' filter expects a list or a string, not a {type_name(value)}")


@registry.filter("length")
def length(call, value):
    if isinstance(value, (str, list, tuple, Mapping, set)):
        return len(value)
    return 0


@registry.filter("join")
def join(call, value, separator=None):
    if value is None:
        return None
    if not isinstance(value, (list, tuple, set)):
        raise EvaluationError("The 'join' filter expects that the input is either a collection or an array.")
    glue = "" if separator is None else to_string(separator)
    parts = [java_string(item) for item in value]
    check_string_length(sum(map(len, parts)) + len(glue) * max(len(parts) - 1, 0))
    return glue.join(parts)


@registry.filter("keys")
def keys(call, value):
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, (list, tuple)):
        return list(range(len(value)))
    raise EvaluationError(f"'keys' filter can only be applied to List, Map, Array. Actual type was: {type_name(value)}")


@registry.filter("values")
def values(call, value):
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    raise EvaluationError(f"'values' filter can only be applied to a Map. Actual type was: {type_name(value)}")


def _sorted(value: Any, name: str, reverse: bool) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple, set)):
        raise EvaluationError(f"The '{name}' filter expects a list, not a {type_name(value)}")
    items = list(value)
    numbers = all(is_number(item) for item in items)
    strings = all(isinstance(item, str) for item in items)
    if not (numbers or strings):
        raise EvaluationError(f"The '{name}' filter can only sort a list of numbers or a list of strings")
    return sorted(items, reverse=reverse)


@registry.filter("sort")
def sort(call, value):
    return _sorted(value, "sort", False)


@registry.filter("rsort")
def rsort(call, value):
    return _sorted(value, "rsort", True)


@registry.filter("reverse")
def reverse(call, value):
    if value is None:
        return None
    if isinstance(value, str):
        return value[::-1]
    if isinstance(value, (list, tuple)):
        return list(reversed(value))
    raise EvaluationError(f"The 'reverse' filter expects a list or a string, not a {type_name(value)}")


@registry.filter("chunk")
def chunk(call, value, size):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise EvaluationError(f"'chunk' filter can only be applied to List. Actual type was: {type_name(value)}")
    if not is_number(size) or int(size) <= 0:
        raise EvaluationError("'chunk' filter expects a positive integer 'size'.")
    step = int(size)
    return [list(value[i:i + step]) for i in range(0, len(value), step)]


@registry.filter("distinct")
def distinct(call, value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise EvaluationError(f"The 'distinct' filter expects a list, not a {type_name(value)}")
    result: list = []
    for item in value:
        if not any(equals(item, seen) for seen in result):
            result.append(item)
    return result


@registry.filter("flatten")
def flatten(call, value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise EvaluationError("The 'flatten' filter can only be applied to lists.")
    result: list = []
    for item in value:
        result.extend(item) if isinstance(item, (list, tuple)) else result.append(item)
    return result


@registry.filter("merge")
def merge(call, value, items):
    """Lists are concatenated; maps are merged, the argument's keys winning."""
    if value is None:
        if items is None:
            raise EvaluationError("The two arguments to be merged are null")
        return items
    if items is None:
        return value
    if isinstance(value, Mapping):
        if isinstance(items, Mapping):
            check_items(len(value) + len(items))
            return {**value, **items}
        if isinstance(items, (list, tuple)):
            check_items(len(value) + len(items))
            return {**value, **{to_string(item): item for item in items}}
        raise EvaluationError("Currently, only Maps and Lists can be merged with a Map.")
    if isinstance(value, (list, tuple)):
        if isinstance(items, Mapping):
            check_items(len(value) + len(items))
            return [*value, *({"key": k, "value": v} for k, v in items.items())]
        if isinstance(items, (list, tuple)):
            check_items(len(value) + len(items))
            return [*value, *items]
        raise EvaluationError("Currently, only Maps and Lists can be merged with a List.")
    raise EvaluationError("The object being filtered is not a Map/List/Array")


@registry.filter("slice")
def slice_(call, value, fromIndex=0, toIndex=None):
    if value is None:
        return None
    start = 0 if fromIndex is None else fromIndex
    if not is_number(start):
        raise EvaluationError(f"Argument fromIndex must be a number. Actual type: {type_name(start)}")
    if toIndex is not None and not is_number(toIndex):
        raise EvaluationError(f"Argument toIndex must be a number. Actual type: {type_name(toIndex)}")
    if not isinstance(value, (str, list, tuple)):
        raise EvaluationError(
            f"Slice filter can only be applied to String, List and array inputs. Actual type was: {type_name(value)}")
    start = int(start)
    if start < 0:
        raise EvaluationError("fromIndex must be greater than 0")
    end = len(value) if toIndex is None else int(toIndex)
    if end > len(value):
        raise EvaluationError(f"toIndex must be smaller than input size: {len(value)}")
    if toIndex is not None and start >= end:
        raise EvaluationError("toIndex must be greater than fromIndex")
    result = value[start:end]
    return list(result) if isinstance(result, tuple) else result

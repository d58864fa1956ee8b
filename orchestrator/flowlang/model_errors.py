"""Validate plain data with a pydantic declaration and turn pydantic's errors into sentences for a
person: a path into the data as written, and why. No pydantic wording that names its own
internals (union branch tags, help-page URLs) gets through.

Two rules shape what is reported:

- a property whose value is an expression (`"{{ inputs.size }}"`) is rendered at run time, so a
  type error on it is dropped — unless the error is about the string itself (pattern, length)
  or about the property being unknown;
- when a value could be one of several types (`str | list[str]`), only the errors of the branch
  that fits the value best are reported, merged into one "expected X or Y" sentence.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError

from orchestrator.flowlang.errors import Path
from orchestrator.flowlang.types import is_dynamic

# Errors that say "this is not the right kind of value", as opposed to "the right kind, but wrong".
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
    "time_delta_type": "a duration",
    "time_delta_parsing": "a duration",
    "literal_error": None,  # "one of …", from the error's context
    "enum": None,
}
# Errors kept even on an expression: about the string's own text, or about which properties are
# written at all (an unknown or missing property is wrong whatever renders).
_KEPT_ON_EXPRESSIONS = frozenset({
    "string_pattern_mismatch", "string_too_short", "string_too_long", "extra_forbidden", "missing",
    "union_tag_not_found",
})

# Patterns of ids and names, described in words.
PATTERN_RULES: dict[str, str] = {}

_MISSING = object()


def describe_rule(pattern: str, rule: str) -> None:
    """Say in words what a `pattern=` constraint allows, for the messages that quote it."""
    PATTERN_RULES[pattern] = rule


def model_errors(
    model: type[BaseModel], data: Any, *, expressions: bool = True, ignore: Iterable[str] = ()
) -> list[tuple[Path, str]]:
    """The problems of `data` against `model`, as (path relative to data, message).

    With `expressions`, type errors on expression strings are dropped (see the module doc).
    Top-level keys in `ignore` are left out of validation (the caller reports them itself)."""
    if ignore and isinstance(data, dict):
        skipped = set(ignore)
        data = {key: value for key, value in data.items() if key not in skipped}
    try:
        model.model_validate(data)
    except ValidationError as error:
        return _convert(error.errors(include_url=False), data, model, expressions)
    return []


def _convert(errors: list[dict], data: Any, model: type[BaseModel], expressions: bool) -> list[tuple[Path, str]]:
    located: list[tuple[Path, dict, Any]] = []
    for error in errors:
        path = _data_path(error["loc"], data, missing=error["type"] == "missing")
        raw = _value_at(data, path)
        if expressions and error["type"] not in _KEPT_ON_EXPRESSIONS and _under_expression(data, path):
            continue
        located.append((path, error, raw))

    paths = [path for path, _, _ in located]
    by_path: dict[Path, list[tuple[dict, Any]]] = {}
    for path, error, raw in located:
        # A union's "wrong kind" error is noise when another branch got further into the value.
        if error["type"] in _EXPECTED and any(len(other) > len(path) and other[: len(path)] == path for other in paths):
            continue
        by_path.setdefault(path, []).append((error, raw))

    messages: list[tuple[Path, str]] = []
    for path, items in by_path.items():
        kind_errors = [(e, raw) for e, raw in items if e["type"] in _EXPECTED]
        other_errors = [(e, raw) for e, raw in items if e["type"] not in _EXPECTED]
        if other_errors:
            # The value has the right kind for some branch and fails that branch's constraints.
            for error, raw in other_errors:
                messages.append((path, _message(error, raw, path, model)))
        elif kind_errors:
            expected = list(dict.fromkeys(_expected(e) for e, _ in kind_errors))
            messages.append((path, f"expected {_join(expected)}, got {describe(kind_errors[0][1])}"))
    return list(dict.fromkeys(messages))


def _data_path(loc: tuple, data: Any, *, missing: bool) -> Path:
    """The part of pydantic's location that exists in the data; what is left out names union
    branches and validator steps, which mean nothing to the person who wrote the flow."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and not isinstance(part, bool) \
                and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif missing and index == len(loc) - 1 and isinstance(current, dict) and isinstance(part, str):
            path.append(part)
    return tuple(path)


def _value_at(data: Any, path: Path) -> Any:
    current = data
    for part in path:
        try:
            current = current[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return current


def _under_expression(data: Any, path: Path) -> bool:
    return any(is_dynamic(_value_at(data, path[:size])) for size in range(len(path), -1, -1))


def _expected(error: dict) -> str:
    text = _EXPECTED.get(error["type"])
    if text is None:
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"one of {expected}" if expected else "an allowed value"
    return text


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" or {items[-1]}"


def describe(value: Any) -> str:
    """A short description of a value, for "expected X, got Y"."""
    if value is _MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _message(error: dict, raw: Any, path: Path, model: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        name = error["loc"][-1] if error["loc"] else "?"
        return f"required property {name!r} is missing"
    if kind == "extra_forbidden":
        name = path[-1] if path else error["loc"][-1]
        return f"unknown property {name!r}" + _suggestion(name, path, model)
    if kind == "union_tag_not_found":
        return f"required property '{str(ctx.get('discriminator', 'type')).strip(chr(39))}' is missing"
    if kind == "union_tag_invalid":
        return f"{ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    if kind == "string_pattern_mismatch":
        rule = PATTERN_RULES.get(ctx.get("pattern", ""))
        if rule:
            return f"{raw!r} is not valid: use {rule}"
        return f"{raw!r} does not match the pattern {ctx.get('pattern')}"
    if kind in ("string_too_short", "too_short"):
        least = ctx.get("min_length", 1)
        what = "character" if kind == "string_too_short" else "item"
        if least == 1:
            return "must not be empty"
        return f"must have at least {least} {what}s"
    if kind in ("string_too_long", "too_long"):
        what = "characters" if kind == "string_too_long" else "items"
        return f"must have at most {ctx.get('max_length')} {what}"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge')} or more, got {describe(raw)}"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}, got {describe(raw)}"
    if kind == "less_than_equal":
        return f"must be {ctx.get('le')} or less, got {describe(raw)}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}, got {describe(raw)}"
    message = str(error.get("msg", "invalid value"))
    # Errors raised by our own validators come prefixed by pydantic; the rest is ours.
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def _suggestion(name: Any, path: Path, model: type[BaseModel]) -> str:
    if not isinstance(name, str) or len(path) != 1:
        return ""
    known = [field.alias or key for key, field in model.model_fields.items()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""

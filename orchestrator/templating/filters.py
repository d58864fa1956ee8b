"""Text filters, with Pebble's and Kestra's semantics.

Almost every filter returns ``null`` for a ``null`` input, as Pebble's do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

try:  # the `regex` engine can stop a match that takes too long; `re` cannot
    import regex
except ImportError:  # pragma: no cover - without it, regular expressions run unbounded in time
    regex = None

from . import registry
from .errors import EvaluationError, PebbleUndefined
from .formatting import java_string, to_string
from .limits import REGEX_TIMEOUT_SECONDS, check_string_length
from .operators import is_number, type_name
from .predicates import empty_test

_REGEX_ERRORS = (re.error, regex.error) if regex else (re.error,)
_JAVA_WHITESPACE = "".join(chr(code) for code in range(33))  # String.trim() removes chars <= ' '
_REGEX_META = set(".$|()[{^?*+\\")


def text_of(value: Any, name: str) -> str:
    """The string a text filter works on: strings, numbers and booleans; not lists or maps."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, Mapping)):
        raise EvaluationError(f"The '{name}' filter expects a string, not a {type_name(value)}")
    return to_string(value)


def compile_regex(pattern: Any, name: str) -> Any:
    if not isinstance(pattern, str):
        raise EvaluationError(f"The '{name}' filter expects a regular expression string")
    try:
        return regex.compile(pattern, regex.VERSION0) if regex else re.compile(pattern)
    except _REGEX_ERRORS as exc:
        raise EvaluationError(f"Invalid regular expression '{pattern}' in '{name}': {exc}") from None


def _bounded(name: str, operation: Any, *args: Any) -> Any:
    """Run a regular expression operation with the time bound, when the engine has one."""
    try:
        if regex is None:
            return operation(*args)
        return operation(*args, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        raise EvaluationError(f"The regular expression of '{name}' takes too long") from None


# -- text ------------------------------------------------------------------------------------

@registry.filter("upper")
def upper(call, value):
    return None if value is None else text_of(value, "upper").upper()


@registry.filter("lower")
def lower(call, value):
    return None if value is None else text_of(value, "lower").lower()


@registry.filter("title")
def title(call, value):
    """Capitalize the first letter of each word; the other letters are left as they are."""
    if value is None:
        return None
    out, capitalize_next = [], True
    for char in text_of(value, "title"):
        if char.isspace():
            capitalize_next = True
        elif capitalize_next:
            char = char.title()
            capitalize_next = False
        out.append(char)
    return "".join(out)


@registry.filter("capitalize")
def capitalize(call, value):
    if value is None:
        return None
    text = text_of(value, "capitalize")
    for index, char in enumerate(text):
        if not char.isspace():
            return text[:index] + char.title() + text[index + 1:]
    return text


@registry.filter("trim")
def trim(call, value):
    return None if value is None else text_of(value, "trim").strip(_JAVA_WHITESPACE)


@registry.filter("abbreviate")
def abbreviate(call, value, length):
    if value is None:
        return None
    if not is_number(length) or length < 0:
        raise EvaluationError("Invalid argument to abbreviate filter; must be greater than zero")
    text, width = text_of(value, "abbreviate"), int(length)
    if len(text) < width or len(text) <= 3:
        return text
    if width <= 3:
        return text[:width]
    return text[:width - 3] + "..."


@registry.filter("default", soft=True)
def default(call, value, default):
    """The argument when the input is undefined, null, blank, or an empty list or map."""
    if isinstance(value, PebbleUndefined) or empty_test(call, value):
        return default
    return value


@registry.filter("string")
def string(call, value):
    return to_string(value)


@registry.filter("startsWith")
def starts_with_filter(call, input, value):
    """``startsWith(value)``: whether the text starts with ``value``."""
    if input is None:
        return False
    return to_string(input).startswith(to_string(value))


@registry.filter("endsWith")
def ends_with_filter(call, input, value):
    if input is None:
        return False
    return to_string(input).endswith(to_string(value))


@registry.filter("substringBefore")
def substring_before(call, value, separator):
    if value is None:
        return None
    text, sep = text_of(value, "substringBefore"), to_string(separator)
    if not text:
        return text
    position = text.find(sep)
    return text if position < 0 else text[:position]


@registry.filter("substringAfter")
def substring_after(call, value, separator):
    if value is None:
        return None
    text, sep = text_of(value, "substringAfter"), to_string(separator)
    if not text:
        return text
    position = text.find(sep)
    return "" if position < 0 else text[position + len(sep):]


@registry.filter("substringBeforeLast")
def substring_before_last(call, value, separator):
    if value is None:
        return None
    text, sep = text_of(value, "substringBeforeLast"), to_string(separator)
    if not text or not sep:
        return text
    position = text.rfind(sep)
    return text if position < 0 else text[:position]


@registry.filter("substringAfterLast")
def substring_after_last(call, value, separator):
    if value is None:
        return None
    text, sep = text_of(value, "substringAfterLast"), to_string(separator)
    if not text or not sep:
        return "" if text else text
    position = text.rfind(sep)
    return "" if position < 0 or position == len(text) - len(sep) else text[position + len(sep):]


@registry.filter("slugify")
def slugify(call, value):
    """Lower-case ASCII letters and digits, accents dropped, every other run of characters a '-'."""
    if value is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text_of(value, "slugify"))
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    out, dash = [], False
    for char in ascii_text:
        if ("a" <= char <= "z") or ("0" <= char <= "9"):
            if dash and out:
                out.append("-")
            out.append(char)
            dash = False
        else:
            dash = True
    return "".join(out)


def _escape_value(value: Any, find: str, replacement: str) -> Any:
    if isinstance(value, Mapping):
        return {key: _escape_value(item, find, replacement) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape_value(item, find, replacement) for item in value]
    return java_string(value).replace(find, replacement)


@registry.filter("escapeChar")
def escape_char(call, value, type):
    """Escape quotes for a ``single``-quoted, ``double``-quoted or ``shell`` single-quoted string."""
    if value is None:
        return None
    kind = type.lower() if isinstance(type, str) else None
    styles = {"single": ("'", "\\'"), "double": ('"', '\\"'), "shell": ("'", "'\\''")}
    if kind not in styles:
        raise EvaluationError(
            "The 'escapeChar' filter expects the value of 'type' to be either 'single', 'double', or 'shell'.")
    return _escape_value(value, *styles[kind])


def _indent(value: Any, amount: Any, prefix: Any, name: str, leading: bool) -> Any:
    if value is None:
        return None
    text = to_string(value)
    if not text:
        return text
    if not is_number(amount) or int(amount) < 0:
        raise EvaluationError(f"The '{name}' filter expects a positive integer >=0 as argument 'amount'.")
    prefix = " " if prefix is None else to_string(prefix)
    newline = next((sep for sep in ("\r\n", "\n\r", "\n", "\r") if sep in text), "\n")
    padding = prefix * int(amount)
    if leading:
        text = newline + text
    check_string_length(len(text) + (text.count(newline) + 1) * len(padding))
    return text.replace(newline, newline + padding)


@registry.filter("indent")
def indent(call, value, amount, prefix=None):
    """Indent every line but the first by ``amount`` times ``prefix`` (a space by default)."""
    return _indent(value, amount, prefix, "indent", False)


@registry.filter("nindent")
def nindent(call, value, amount, prefix=None):
    """A newline, then every line indented."""
    return _indent(value, amount, prefix, "nindent", True)


def java_split(text: str, delimiter: str, limit: int) -> list[str]:
    """``String.split(regex, limit)``, including its handling of empty strings."""
    if len(delimiter) == 1 and delimiter not in _REGEX_META:
        matches = [(i, i + 1) for i, c in enumerate(text) if c == delimiter]
    elif len(delimiter) == 2 and delimiter[0] == "\\" and not delimiter[1].isalnum():
        matches = [(i, i + 1) for i, c in enumerate(text) if c == delimiter[1]]
    else:
        pattern = compile_regex(delimiter, "split")
        matches = _bounded("split", lambda *a, **k: [m.span() for m in pattern.finditer(*a, **k)], text)
    parts, index = [], 0
    for start, end in matches:
        if limit > 0 and len(parts) >= limit - 1:
            break
        if index == 0 and start == 0 and start == end:
            continue
        parts.append(text[index:start])
        index = end
    if not parts and index == 0:
        return [text]
    parts.append(text[index:])
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


@registry.filter("split")
def split(call, value, delimiter, limit=None):
    """``split(delimiter, limit)``: the delimiter is a regular expression, as in Java."""
    if value is None:
        return None
    if not isinstance(delimiter, str):
        raise EvaluationError("missing delimiter parameter in split filter")
    if limit is not None and not is_number(limit):
        raise EvaluationError("The split limit must be a number")
    return java_split(text_of(value, "split"), delimiter, int(limit or 0))


def _java_replacement(template: str) -> list[tuple[bool, Any]]:
    """Parse a ``Matcher.replaceAll`` replacement: ``$1``/``${name}`` groups, ``\\`` escapes.

    Returns (is_group, literal text or group reference) parts, parsed once per replacement.
    """
    parts: list[tuple[bool, Any]] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and i + 1 < len(template):
            literal.append(template[i + 1])
            i += 2
            continue
        if char == "$" and i + 1 < len(template) and (template[i + 1] == "{" or template[i + 1].isdigit()):
            if literal:
                parts.append((False, "".join(literal)))
                literal = []
            if template[i + 1] == "{":
                end = template.find("}", i)
                if end < 0:
                    raise EvaluationError(f"Invalid replacement '{template}': unclosed group name")
                parts.append((True, template[i + 2:end]))
                i = end + 1
            else:
                j = i + 2
                while j < len(template) and template[j].isdigit():
                    j += 1
                parts.append((True, int(template[i + 1:j])))
                i = j
            continue
        literal.append(char)
        i += 1
    if literal:
        parts.append((False, "".join(literal)))
    return parts


def _replace_text(text: str, pairs: Mapping, use_regex: bool) -> str:
    for search, replacement in pairs.items():
        search, replacement = java_string(search), java_string(replacement)
        if use_regex:
            pattern, parts, size = compile_regex(search, "replace"), _java_replacement(replacement), [len(text)]

            def expand(match: Any, parts=parts, size=size) -> str:
                pieces = [match.group(ref) or "" if is_group else ref for is_group, ref in parts]
                size[0] += sum(map(len, pieces)) - (match.end() - match.start())
                check_string_length(size[0])
                return "".join(pieces)

            try:
                text = _bounded("replace", pattern.sub, expand, text)
            except (IndexError, *_REGEX_ERRORS) as exc:
                raise EvaluationError(f"Invalid replacement '{replacement}': {exc}") from None
        else:
            check_string_length(len(text) + text.count(search) * (len(replacement) - len(search)))
            text = text.replace(search, replacement)
    return text


def _replace_value(value: Any, pairs: Mapping, use_regex: bool) -> Any:
    if isinstance(value, Mapping):
        return {key: _replace_value(item, pairs, use_regex) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_value(item, pairs, use_regex) for item in value]
    return _replace_text(java_string(value), pairs, use_regex)


@registry.filter("replace")
def replace(call, value, replace_pairs, regexp=False):
    """``replace({'search': 'replacement'}, regexp=false)`` or ``replace('search', 'replacement')``."""
    if value is None:
        return None
    if isinstance(replace_pairs, str):
        if not isinstance(regexp, str):
            raise EvaluationError("replace('search', 'replacement') expects the replacement string")
        replace_pairs, regexp = {replace_pairs: regexp}, False
    if not isinstance(replace_pairs, Mapping):
        raise EvaluationError("The argument 'replace_pairs' is required.")
    if not isinstance(regexp, bool):
        raise EvaluationError("The 'regexp' argument of replace must be a boolean")
    return _replace_value(value, replace_pairs, regexp)

"""Read one item per line: JSON, or the Amazon Ion text Kestra's serializers write (`.ion` files,
one value per line: `{id:1,name:"Ada",at:2024-01-15T10:00:00Z,amount:12.5}`).

Only reading is needed — FilterItems and DeduplicateItems write each kept line back unchanged —
so this is a reader for the part of Ion text such lines use:

- structs `{a:1, "b c":2, 'd':3}` (field names as symbols, quoted symbols or strings), lists
  `[1, 2]`, strings `"…"` and long strings `'''…'''`, symbols (`abc`, `'a b'`) read as text;
- `null` and typed nulls (`null.string`), `true`/`false`, integers (`-12`, `1_000`, `0x1F`),
  decimals (`12.5`, `1.5d3`) and floats (`1.5e0`, `nan`, `+inf`, `-inf`) read as numbers;
- timestamps (`2024-01-15T10:00:00Z`, `2024-01-15`, `2024T`) read as their text;
- blobs `{{ aGVsbG8= }}` read as their base64 text, clobs `{{ "text" }}` as the text;
- annotations (`price::12.5`) are dropped.

S-expressions `( … )` and comments are refused. Pure Python.
"""

from __future__ import annotations

import math
import re
from typing import Any

_SPACE = re.compile(r"[ \t\r\n\f\v]*")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_TIMESTAMP = re.compile(r"\d{4}(?:T|-\d{2}(?:T|-\d{2}(?:T(?:\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|z|[+-]\d{2}:\d{2}))?)?))")
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9A-Fa-f](?:_?[0-9A-Fa-f])*|0[bB][01](?:_?[01])*"
    r"|(?:\d(?:_?\d)*)(?:\.(?:\d(?:_?\d)*)?)?(?:[eEdD][+-]?\d+)?)"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "a": "\a", "0": "\0",
            '"': '"', "'": "'", "\\": "\\", "/": "/", "?": "?", "\n": ""}
_MAX_DEPTH = 100


class ItemError(ValueError):
    """A line that is not one JSON or Ion value."""


def parse_item(text: str) -> Any:
    """The value of one line: dicts, lists, text, numbers, booleans and None."""
    parser = _Parser(text)
    value = parser.value(0)
    parser.space()
    if parser.pos != len(text):
        parser.fail("more than one value on the line")
    return value


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, reason: str) -> None:
        raise ItemError(f"{reason} at character {self.pos + 1}")

    def space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()
        if self.text.startswith(("//", "/*"), self.pos):
            self.fail("comments are not supported")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        self.space()
        if self.peek() != char:
            self.fail(f"expected {char!r}")
        self.pos += 1

    def value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            self.fail(f"values nested more than {_MAX_DEPTH} deep")
        self.space()
        while True:  # annotations: `name::value`
            start = self.pos
            name = self.symbol_name()
            self.space()
            if name is not None and self.text.startswith("::", self.pos):
                self.pos += 2
                self.space()
                continue
            self.pos = start
            break
        char = self.peek()
        if char == "{":
            if self.text.startswith("{{", self.pos):
                return self.lob()
            return self.struct(depth)
        if char == "[":
            return self.sequence(depth)
        if char == "(":
            self.fail("s-expressions are not supported")
        if char == '"':
            return self.string('"')
        if self.text.startswith("'''", self.pos):
            return self.long_strings()
        if char == "'":
            return self.string("'")
        timestamp = _TIMESTAMP.match(self.text, self.pos)
        if timestamp:
            self.pos = timestamp.end()
            return timestamp.group(0)
        if self.text.startswith(("+inf", "-inf"), self.pos):
            self.pos += 4
            return math.inf if char == "+" else -math.inf
        if char.isdigit() or char in "+-":
            return self.number()
        if char == "":
            self.fail("a value is missing")
        identifier = _IDENT.match(self.text, self.pos)
        if not identifier:
            self.fail(f"unexpected {char!r}")
        self.pos = identifier.end()
        word = identifier.group(0)
        if word == "null":
            if self.peek() == ".":  # a typed null: null.string, null.struct…
                self.pos += 1
                typed = _IDENT.match(self.text, self.pos)
                if not typed:
                    self.fail("expected a type after 'null.'")
                self.pos = typed.end()
            return None
        return {"true": True, "false": False, "nan": math.nan}.get(word, word)

    def symbol_name(self) -> str | None:
        if self.peek() == "'" and not self.text.startswith("'''", self.pos):
            return self.string("'")
        identifier = _IDENT.match(self.text, self.pos)
        if identifier and identifier.group(0) not in ("true", "false", "null", "nan"):
            self.pos = identifier.end()
            return identifier.group(0)
        return None

    def number(self) -> Any:
        match = _NUMBER.match(self.text, self.pos)
        if not match or not match.group(0).lstrip("+-"):
            self.fail("expected a number")
        self.pos = match.end()
        text = match.group(0).replace("_", "")
        lowered = text.lower()
        if "0x" in lowered or "0b" in lowered:
            return int(text, 0)
        if any(mark in lowered for mark in ".ed"):
            return float(lowered.replace("d", "e"))
        return int(text)

    def string(self, quote: str) -> str:
        self.pos += 1
        parts: list[str] = []
        text = self.text
        while True:
            end = self.pos
            while end < len(text) and text[end] not in (quote, "\\"):
                end += 1
            parts.append(text[self.pos:end])
            self.pos = end
            if end >= len(text):
                self.fail("a string is not closed")
            if text[end] == quote:
                self.pos = end + 1
                return "".join(parts)
            parts.append(self.escape())

    def escape(self) -> str:
        self.pos += 1  # the backslash
        char = self.peek()
        if char in _ESCAPES:
            self.pos += 1
            return _ESCAPES[char]
        sizes = {"x": 2, "u": 4, "U": 8}
        if char in sizes:
            digits = self.text[self.pos + 1:self.pos + 1 + sizes[char]]
            if len(digits) != sizes[char] or not all(c in "0123456789abcdefABCDEF" for c in digits):
                self.fail(f"an invalid \\{char} escape")
            self.pos += 1 + sizes[char]
            code = int(digits, 16)
            # A JSON surrogate pair (\ud83d\ude00) is one character.
            if 0xD800 <= code < 0xDC00 and self.text.startswith("\\u", self.pos):
                low = int(self.text[self.pos + 2:self.pos + 6] or "0", 16)
                if 0xDC00 <= low < 0xE000:
                    self.pos += 6
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            try:
                return chr(code)
            except ValueError:
                self.fail("an escape names no character")
        self.fail(f"an unknown escape \\{char}")
        return ""

    def long_strings(self) -> str:
        """Long strings side by side are one string: their parts joined."""
        parts = []
        while self.text.startswith("'''", self.pos):
            start = self.pos + 3
            end = self.text.find("'''", start)
            while end != -1 and self.text[end - 1] == "\\":
                end = self.text.find("'''", end + 1)
            if end == -1:
                self.fail("a long string is not closed")
            parts.append(_Parser(self.text[:end]).unescape(start))
            self.pos = end + 3
            self.space()
        return "".join(parts)

    def unescape(self, start: int) -> str:
        """The text from `start` to the end, its escapes read."""
        parts = []
        self.pos = start
        while self.pos < len(self.text):
            slash = self.text.find("\\", self.pos)
            if slash == -1:
                parts.append(self.text[self.pos:])
                break
            parts.append(self.text[self.pos:slash])
            self.pos = slash
            parts.append(self.escape())
        return "".join(parts)

    def lob(self) -> str:
        self.pos += 2
        self.space()
        if self.peek() == '"':
            value = self.string('"')
        elif self.text.startswith("'''", self.pos):
            value = self.long_strings()
        else:
            end = self.text.find("}}", self.pos)
            if end == -1:
                self.fail("a blob is not closed")
            value = "".join(self.text[self.pos:end].split())
            self.pos = end
        self.space()
        if not self.text.startswith("}}", self.pos):
            self.fail("expected '}}'")
        self.pos += 2
        return value

    def struct(self, depth: int) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        self.space()
        if self.peek() == "}":
            self.pos += 1
            return result
        while True:
            self.space()
            if self.peek() == '"':
                name = self.string('"')
            else:
                name = self.symbol_name()
                if name is None:
                    self.fail("expected a field name")
            self.expect(":")
            result[name] = self.value(depth + 1)
            self.space()
            if self.peek() == ",":
                self.pos += 1
                self.space()
                if self.peek() == "}":
                    self.pos += 1
                    return result
                continue
            self.expect("}")
            return result

    def sequence(self, depth: int) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        self.space()
        if self.peek() == "]":
            self.pos += 1
            return result
        while True:
            result.append(self.value(depth + 1))
            self.space()
            if self.peek() == ",":
                self.pos += 1
                self.space()
                if self.peek() == "]":
                    self.pos += 1
                    return result
                continue
            self.expect("]")
            return result

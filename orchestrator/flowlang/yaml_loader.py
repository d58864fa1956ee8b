"""Safe YAML for flows: plain data out, with the line of every property, and bounded work.

The document is read as a stream of parser events and built with an explicit stack, never with
PyYAML's constructors, so that:

- no tag can build an object: only YAML's core tags are accepted (`!!python/...`, `!foo` are
  refused by name), and a timestamp stays the string it was written as ("2024-01-01");
- mapping keys are the text written (`1:` and `"1":` are both the key "1", as Kestra reads them),
  and a key written twice in one mapping is refused with both lines;
- nothing recurses on the input: nesting depth, alias uses and the number of values after alias
  expansion are counted while reading and refused past the limits below, so a "billion laughs"
  document or 100,000 nested brackets stop early instead of eating memory or the stack.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent, DocumentStartEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from orchestrator.flowlang.errors import FlowSyntaxError, Path, PathPart

MAX_BYTES = 1_048_576
# Real flows nest a few levels per flowable; 100 leaves room for deep trees of them.
MAX_DEPTH = 100
# Anchors and aliases are legitimate YAML, but a flow never needs thousands of them.
MAX_ALIASES = 10_000
# Values (scalars, lists, mappings) in the document once every alias is expanded.
MAX_NODES = 100_000

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_CORE}{name}" for name in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _TIMESTAMP, _MERGE = (f"{_CORE}{name}" for name in ("seq", "map", "timestamp", "merge"))
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, f"{_CORE}value"})
_NON_SPECIFIC = "!"

_PARSER = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class LoadedYaml:
    """A parsed flow document: plain data and the line (1-based) of each value in it."""

    data: dict[str, Any]
    lines: Mapping[Path, int] = field(repr=False)

    def line_of(self, path: Iterable[PathPart]) -> int | None:
        """The line of the value at `path`, or of its closest ancestor written in the document
        (a missing property is reported at the line of the object that lacks it)."""
        path = tuple(path)
        while True:
            line = self.lines.get(path)
            if line is not None or not path:
                return line
            path = path[:-1]


@dataclass
class _Frame:
    value: dict | list
    path: Path
    anchor: str | None
    nodes: int = 1  # values in this collection, itself included, aliases expanded
    key: str | None = None  # a mapping's key waiting for its value
    key_line: int = 0
    key_lines: dict[str, int] = field(default_factory=dict)


def load_yaml(source: str | bytes, *, max_bytes: int = MAX_BYTES) -> LoadedYaml:
    """Parse one flow document. Raises FlowSyntaxError with the line of the problem."""
    builder = _parse(source, max_bytes)
    root = builder.root
    if root is None and builder.documents == 0:
        raise FlowSyntaxError("the document is empty: a flow needs at least `id`, `namespace` and `tasks`", 1)
    if not isinstance(root, dict):
        raise FlowSyntaxError(
            f"a flow must be a YAML mapping (id, namespace, tasks…), not {_kind(root)}", builder.lines.get((), 1)
        )
    return LoadedYaml(data=root, lines=builder.lines)


def load_yaml_value(source: str | bytes, *, max_bytes: int = MAX_BYTES) -> Any:
    """Parse one YAML document of any shape (a YAML input's value) with the rules and limits of
    flows: plain data out, None for an empty document. Raises FlowSyntaxError."""
    return _parse(source, max_bytes).root


def _parse(source: str | bytes, max_bytes: int) -> "_Builder":
    text = _decode(source, max_bytes)
    builder = _Builder()
    try:
        for event in yaml.parse(text, Loader=_PARSER):
            builder.feed(event)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        context = f" ({error.context})" if error.context and error.problem else ""
        raise FlowSyntaxError(f"invalid YAML: {problem}{context}", mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1 if isinstance(error.position, int) else None
        raise FlowSyntaxError(f"invalid YAML: {error.reason} (character {error.character!r})", line) from None
    except yaml.YAMLError as error:  # any other parser complaint, without its traceback
        raise FlowSyntaxError(f"invalid YAML: {error}") from None
    return builder


def _decode(source: str | bytes, max_bytes: int) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        if len(raw) > max_bytes:
            raise FlowSyntaxError(f"the flow is {len(raw):,} bytes long; the limit is {max_bytes:,} bytes")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = raw.count(b"\n", 0, error.start) + 1
            raise FlowSyntaxError(
                f"the flow is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start})", line
            ) from None
    if not isinstance(source, str):
        raise FlowSyntaxError(f"a flow is YAML text, not {type(source).__name__}")
    # Every character is at least one byte: a string longer than the limit is over it without
    # paying for its encoding.
    if len(source) > max_bytes:
        raise FlowSyntaxError(f"the flow is longer than the limit of {max_bytes:,} bytes")
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError as error:  # lone surrogates cannot come from real UTF-8 text
        raise FlowSyntaxError(f"the flow is not valid UTF-8 text (character {error.start})") from None
    if size > max_bytes:
        raise FlowSyntaxError(f"the flow is {size:,} bytes long; the limit is {max_bytes:,} bytes")
    return source


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


class _Builder:
    """Builds plain data from parser events, one event at a time, with the limits enforced."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.lines: dict[Path, int] = {}
        self.anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, values in it)
        self.nodes = 0
        self.aliases = 0
        self.documents = 0

    def feed(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise FlowSyntaxError("a flow file holds one YAML document; a second one starts here", line)
        elif isinstance(event, ScalarEvent):
            self._scalar(event, line)
        elif isinstance(event, (MappingStartEvent, SequenceStartEvent)):
            self._start(event, line)
        elif isinstance(event, (MappingEndEvent, SequenceEndEvent)):
            frame = self.stack.pop()
            if frame.anchor is not None:
                self.anchors[frame.anchor] = (frame.value, frame.nodes)
            self._place(frame.value, frame.nodes, line)
        elif isinstance(event, AliasEvent):
            self._alias(event, line)

    # -- values ---------------------------------------------------------------------------------

    def _scalar(self, event: ScalarEvent, line: int | None) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and frame.key is None:
            self._key(frame, event, line)
            return
        value = _construct_scalar(event, line, self._child_path(frame))
        self._count(1, line)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self._place(value, 1, line)

    def _start(self, event: MappingStartEvent | SequenceStartEvent, line: int | None) -> None:
        is_map = isinstance(event, MappingStartEvent)
        expected = _MAP if is_map else _SEQ
        parent = self.stack[-1] if self.stack else None
        if parent is not None and isinstance(parent.value, dict) and parent.key is None:
            raise FlowSyntaxError("a mapping key must be a plain value, not a list or a mapping", line, parent.path)
        if event.tag not in (None, _NON_SPECIFIC, expected):
            raise FlowSyntaxError(_tag_message(event.tag, "a mapping" if is_map else "a list"), line,
                                  self._child_path(parent))
        if len(self.stack) >= MAX_DEPTH:
            raise FlowSyntaxError(f"the document nests deeper than {MAX_DEPTH} levels", line)
        self._count(1, line)
        path = self._child_path(parent)
        self.lines[path] = self._child_line(parent, line)
        self.stack.append(_Frame(value={} if is_map else [], path=path, anchor=event.anchor))

    def _alias(self, event: AliasEvent, line: int | None) -> None:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise FlowSyntaxError(f"the document uses more than {MAX_ALIASES:,} aliases", line)
        if event.anchor not in self.anchors:
            raise FlowSyntaxError(
                f"alias *{event.anchor} refers to no finished anchor (undefined, or a structure that "
                "contains itself)", line,
            )
        value, nodes = self.anchors[event.anchor]
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and frame.key is None:
            if not isinstance(value, (str, int, float, bool)):
                raise FlowSyntaxError("a mapping key must be a plain value, not a list or a mapping", line)
            self._set_key(frame, str(value).lower() if isinstance(value, bool) else str(value), line)
            return
        self._count(nodes, line)
        # A copy, so that the data is a tree: changing one use never changes another.
        self._place(copy.deepcopy(value) if isinstance(value, (dict, list)) else value, nodes, line)

    def _key(self, frame: _Frame, event: ScalarEvent, line: int | None) -> None:
        if event.tag not in (None, _NON_SPECIFIC) and event.tag not in _SCALAR_TAGS:
            raise FlowSyntaxError(_tag_message(event.tag, "a mapping key"), line, frame.path)
        if event.tag is None and _RESOLVER.resolve(ScalarNode, event.value, event.implicit) == _MERGE:
            raise FlowSyntaxError("YAML merge keys (`<<`) are not supported: write the properties out", line)
        if event.anchor is not None:
            self.anchors[event.anchor] = (event.value, 1)
        self._set_key(frame, event.value, line)

    def _set_key(self, frame: _Frame, key: str, line: int | None) -> None:
        first = frame.key_lines.get(key)
        if first is not None:
            raise FlowSyntaxError(
                f"duplicate key {key!r}: first at line {first}, again at line {line}", line, (*frame.path, key)
            )
        frame.key_lines[key] = line or 0
        frame.key = key
        frame.key_line = line or 0

    def _place(self, value: Any, nodes: int, line: int | None) -> None:
        """Put a finished value into the collection being built (or make it the root)."""
        if not self.stack:
            self.root = value
            self.lines.setdefault((), line or 1)
            return
        parent = self.stack[-1]
        parent.nodes += nodes
        # A collection recorded its line when it started; setdefault keeps that one.
        self.lines.setdefault(self._child_path(parent), self._child_line(parent, line))
        if isinstance(parent.value, dict):
            parent.value[parent.key] = value
            parent.key = None
        else:
            parent.value.append(value)

    def _child_path(self, parent: _Frame | None) -> Path:
        if parent is None:
            return ()
        if isinstance(parent.value, dict):
            return (*parent.path, parent.key)
        return (*parent.path, len(parent.value))

    @staticmethod
    def _child_line(parent: _Frame | None, line: int | None) -> int:
        # A property is reported where its key is written; a list item where it starts.
        if parent is not None and isinstance(parent.value, dict) and parent.key_line:
            return parent.key_line
        return line or 1

    def _count(self, nodes: int, line: int | None) -> None:
        self.nodes += nodes
        if self.nodes > MAX_NODES:
            raise FlowSyntaxError(
                f"the document holds more than {MAX_NODES:,} values once its aliases are expanded", line
            )


def _construct_scalar(event: ScalarEvent, line: int | None, path: Path) -> Any:
    tag = event.tag
    if tag is None or tag == _NON_SPECIFIC:
        tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)
    if tag not in _SCALAR_TAGS:
        raise FlowSyntaxError(_tag_message(tag, "a plain value"), line, path)
    if tag in (_STR, _TIMESTAMP, f"{_CORE}value"):
        # Dates and times stay the text written; the flow's reader decides what they mean.
        return event.value
    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        if tag == _NULL:
            return _CONSTRUCTOR.construct_yaml_null(node)
        if tag == _BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == _INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        return _CONSTRUCTOR.construct_yaml_float(node)
    except (ValueError, KeyError, ConstructorError):
        kind = {_NULL: "null", _BOOL: "boolean", _INT: "integer", _FLOAT: "number"}[tag]
        raise FlowSyntaxError(f"{event.value[:40]!r} is not a valid {kind}", line, path) from None


def _tag_message(tag: str, written_on: str) -> str:
    shown = f"!!{tag[len(_CORE):]}" if tag.startswith(_CORE) else tag
    if tag in _SCALAR_TAGS or tag in (_SEQ, _MAP):
        return f"the YAML tag {shown!r} cannot be written on {written_on}"
    return (
        f"the YAML tag {shown!r} is not allowed: only the core tags !!str, !!int, !!float, !!bool, "
        "!!null, !!seq, !!map and !!timestamp may be written"
    )

"""Finding the tasks (and input lists) nested in a task definition, from its declaration.

A flowable declares where its children are with markers in its JSON Schema (`TaskList` for a
list of tasks, `Task` for one task inside a structure, `InputList` for inputs). Walking the raw
definition alongside that schema finds them wherever they are: `tasks`, `then`, a Switch's
`cases.<value>`, a Dag's `tasks[i].task`… so no place needs a list of flowable types.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator, Literal, Mapping

from pydantic import BaseModel

from orchestrator.flowlang.errors import Path
from orchestrator.flowlang.types import INPUTS_MARKER, is_dynamic
from workers import registry
from workers.registry import TASK_MARKER, TASKS_MARKER

# "expression": an expression string where tasks or inputs are expected. Those are structure,
# read before anything is rendered, so they can never come from an expression.
Nested = Literal["tasks", "task", "inputs", "expression"]
_MARKERS: tuple[tuple[str, Nested], ...] = ((TASKS_MARKER, "tasks"), (TASK_MARKER, "task"), (INPUTS_MARKER, "inputs"))


@lru_cache(maxsize=None)
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def nested(model: type[BaseModel], data: Any) -> Iterator[tuple[Path, Nested, Any]]:
    """(path relative to data, what is there, the value) for every marked place present in data."""
    schema = _schema(model)
    seen: set[Path] = set()
    for found in _walk(schema, schema.get("$defs", {}), data, (), 0):
        if found[0] not in seen:  # a value can match several branches of a union
            seen.add(found[0])
            yield found


def _walk(schema: dict, defs: dict, value: Any, path: Path, depth: int) -> Iterator[tuple[Path, Nested, Any]]:
    if depth > 64 or not isinstance(schema, dict):  # declarations are shallow; this bounds a bad one
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        yield from _walk(defs.get(ref[len("#/$defs/"):], {}), defs, value, path, depth + 1)
        return
    if is_dynamic(value):
        if _holds_marker(schema, defs, 0):
            yield path, "expression", value
        return
    for marker, kind in _MARKERS:
        if schema.get(marker):
            if (kind == "task" and isinstance(value, dict)) or (kind != "task" and isinstance(value, list)):
                yield path, kind, value
            return
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, ()):
            yield from _walk(branch, defs, value, path, depth + 1)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from _walk(sub, defs, item, (*path, name), depth + 1)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _walk(schema["items"], defs, item, (*path, index), depth + 1)


def _holds_marker(schema: Any, defs: dict, depth: int) -> bool:
    if depth > 64 or not isinstance(schema, dict):
        return False
    if any(schema.get(marker) for marker, _ in _MARKERS):
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _holds_marker(defs.get(ref[len("#/$defs/"):]), defs, depth + 1)
    subs = [*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ()),
            *schema.get("properties", {}).values(), schema.get("items"), schema.get("additionalProperties")]
    return any(_holds_marker(sub, defs, depth + 1) for sub in subs)


def child_tasks(definition: Mapping[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The tasks directly inside a task definition, with their path relative to it
    (`("then", 0)`, `("cases", "A", 1)`, `("tasks", 2, "task")`). Nothing for an unknown type."""
    task_type = registry.get(definition.get("type")) if isinstance(definition.get("type"), str) else None
    if task_type is None:
        return
    for path, kind, value in nested(task_type.properties, definition):
        if kind == "tasks":
            for index, child in enumerate(value):
                if isinstance(child, dict):
                    yield (*path, index), child
        elif kind == "task":
            yield path, value


def flow_tasks(data: Mapping[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every task of a flow, nested ones included, in document order, with its path."""
    stack: list[tuple[Path, Any]] = []
    for key in reversed(("tasks", "errors", "finally", "afterExecution")):
        items = data.get(key)
        if isinstance(items, list):
            stack.extend(((key, index), item) for index, item in reversed(list(enumerate(items))))
    while stack:
        path, task = stack.pop()
        if not isinstance(task, dict):
            continue
        yield path, task
        children = [((*path, *relative), child) for relative, child in child_tasks(task)]
        stack.extend(reversed(children))

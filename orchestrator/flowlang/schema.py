"""The JSON Schema (draft 2020-12) of a flow, generated from the declarations — the task and
trigger registries and the flow's own models — so that it never drifts from what the validator
accepts. Editors use it for completion; the API serves it.

Shape:
- `$defs/Task` lists the task type names and aliases in `properties.type` (a `oneOf` of `const`s,
  each with its title, for completion), and selects the properties of the type written with one
  `if`/`then` per name; every place that holds tasks (a flow's `tasks`, a flowable's `then`, a
  Switch's `cases.*`, a Dag's `tasks[].task`…) refers to it, so nesting is described to any depth.
  Not a `oneOf` of whole task schemas: a validator must try every branch of a `oneOf` to the end,
  and through nested flowables that is (number of types) ** (depth) — minutes for a flow
  Kestra's corpus holds. An `if` on the `type` alone costs one comparison per type.
- `$defs/Trigger` and `$defs/Input` are built the same way, discriminated by `type`.
- Properties of tasks and triggers whose declared type is not a plain string also accept an
  expression string (`"{{ inputs.size }}"`), which is rendered at run time — the validator's rule.

The schema is a little looser than the validator: rules that span several values (unique ids, a
Dag's dependencies, cron syntax, declared worker groups) are not expressible in it.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Iterable

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from orchestrator.flowlang.models import INPUT_TYPES, TRIGGERS_MARKER, FlowModel, input_model
from orchestrator.flowlang.types import INPUTS_MARKER
from scheduler import triggers as trigger_registry
from workers import registry
from workers.registry import TASK_MARKER, TASKS_MARKER

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_REF = "#/$defs/"
# Contains `{{` or `{%`: JSON Schema patterns are searched, not anchored.
_EXPRESSION = {"type": "string", "pattern": r"\{\{|\{%", "description": "An expression, rendered at run time."}
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated"})
_MARKERS = {TASKS_MARKER: "Task", TASK_MARKER: "Task", INPUTS_MARKER: "Input", TRIGGERS_MARKER: "Trigger"}


def flow_json_schema() -> dict[str, Any]:
    """The schema of a flow document. A fresh copy each call: callers may change it."""
    return copy.deepcopy(_build())


@lru_cache(maxsize=1)
def _build() -> dict[str, Any]:
    task_types = registry.canonical_types()
    trigger_types = trigger_registry.canonical_types()
    input_models = list(dict.fromkeys(input_model(name) for name in INPUT_TYPES))
    models: list[type[BaseModel]] = list(dict.fromkeys(
        [FlowModel, *(t.properties for t in task_types), *(t.properties for t in trigger_types), *input_models]
    ))
    keys, generated = models_json_schema([(model, "validation") for model in models], ref_template=_REF + "{model}")
    defs: dict[str, Any] = generated.get("$defs", {})

    def name_of(model: type[BaseModel]) -> str:
        return keys[(model, "validation")]["$ref"][len(_REF):]

    # Expressions are allowed in what tasks and triggers hold, never in the flow's own structure.
    runtime_defs = _reachable(defs, [name_of(t.properties) for t in (*task_types, *trigger_types)])
    for name in runtime_defs:
        _allow_expressions_in_object(defs[name])

    defs["Task"] = _union(
        "Task", "A task; its `type` selects the properties it takes.", ["id", "type"],
        [(type_name, name_of(t.properties), t.title) for t in task_types for type_name in (t.name, *t.aliases)],
    )
    defs["Trigger"] = _union(
        "Trigger", "A trigger; its `type` selects the properties it takes.", ["id", "type"],
        [(type_name, name_of(t.properties), t.title) for t in trigger_types for type_name in (t.name, *t.aliases)],
    )
    defs["Input"] = _union(
        "Input", "An input of the flow; its `type` selects the properties it takes.", ["type"],
        [(input_type, name_of(input_model(input_type)), "") for input_type in INPUT_TYPES],
    )
    defs["Input"]["anyOf"] = [{"required": ["id"]}, {"required": ["name"]}]
    _resolve_markers(defs)

    root_name = name_of(FlowModel)
    root = defs.pop(root_name)
    # The identifying keys first, for a person opening the file.
    head = {"$schema": DRAFT, "title": "Harrier flow",
            "description": "A flow in Kestra's flow language, as Harrier reads it."}
    return {**head, **{key: value for key, value in root.items() if key not in head}, "$defs": defs}


def _union(title: str, description: str, required: list[str], types: list[tuple[str, str, str]]) -> dict[str, Any]:
    """An object discriminated by `type`: (type name, $defs name of its model, its title) each."""
    names = []
    for type_name, _, type_title in types:
        names.append({"const": type_name, "description": type_title} if type_title else {"const": type_name})
    return {
        "title": title,
        "description": description,
        "type": "object",
        "required": required,
        "properties": {"type": {"oneOf": names}},
        "allOf": [
            {"if": {"properties": {"type": {"const": type_name}}}, "then": {"$ref": _REF + model_def}}
            for type_name, model_def, _ in types
        ],
    }


def _reachable(defs: dict[str, Any], roots: Iterable[str]) -> set[str]:
    """Names of the $defs used by the given ones, through references, themselves included."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        pending.extend(_refs(defs[name]))
    return seen


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref[len(_REF):]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _allow_expressions_in_object(schema: dict[str, Any]) -> None:
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in list(properties.items()):
            if name not in ("id", "type"):
                properties[name] = _allow_expression(sub)


def _allow_expression(schema: Any) -> Any:
    """`schema`, or an expression string. Inline structures are opened up the same way; marked
    places (tasks, inputs) are structure and stay as they are."""
    if not isinstance(schema, dict) or any(schema.get(marker) for marker in _MARKERS) or _plain_string(schema):
        return schema
    inner = {key: value for key, value in schema.items() if key not in _ANNOTATIONS}
    if not inner:  # any value at all
        return schema
    for key in ("anyOf", "oneOf"):
        if key in inner:
            if any(_plain_string(branch) for branch in inner[key]):
                return schema
            inner[key] = [_open_structure(branch) for branch in inner[key]]
    inner = _open_structure(inner)
    annotations = {key: value for key, value in schema.items() if key in _ANNOTATIONS}
    return {**annotations, "anyOf": [inner, _EXPRESSION]}


def _open_structure(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    if isinstance(schema.get("items"), dict):
        schema["items"] = _allow_expression(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _allow_expression(schema["additionalProperties"])
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {name: _allow_expression(sub) for name, sub in schema["properties"].items()}
    return schema


def _plain_string(schema: Any) -> bool:
    """A schema any string satisfies: nothing to open up for expressions."""
    return isinstance(schema, dict) and schema.get("type") == "string" and set(schema) <= {"type", *_ANNOTATIONS}


def _resolve_markers(node: Any) -> None:
    """Point every marked place at its union ($defs/Task, Input, Trigger) and drop the markers."""
    if isinstance(node, dict):
        for marker, target in _MARKERS.items():
            if node.pop(marker, None):
                _point_at(node, target, single=marker == TASK_MARKER)
        for value in node.values():
            _resolve_markers(value)
    elif isinstance(node, list):
        for value in node:
            _resolve_markers(value)


def _point_at(node: dict[str, Any], target: str, *, single: bool) -> None:
    ref = {"$ref": _REF + target}
    if single:
        for key in ("type", "additionalProperties", "properties"):
            node.pop(key, None)
        node.update(ref)
        return
    branches = node.get("anyOf") if isinstance(node.get("anyOf"), list) else [node]
    for branch in branches:
        if isinstance(branch, dict) and branch.get("type") == "array":
            branch["items"] = dict(ref)


if __name__ == "__main__":  # `python -m orchestrator.flowlang.schema > flow.schema.json`, for editors
    import json
    import sys

    json.dump(flow_json_schema(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")

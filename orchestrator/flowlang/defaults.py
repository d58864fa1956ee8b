"""`pluginDefaults` (and the older `taskDefaults`): property values a flow gives every task or
trigger of a type, or of every type under a prefix (`io.kestra.plugin.core.log`).

A default fills what a task leaves out; a `forced` default overrides what the task says. Maps
merge key by key, at any depth; any other value (a string, a list) is taken whole. `id` and
`type` are never defaulted. Defaults apply in the order written, `taskDefaults` before
`pluginDefaults`, so a later forced default wins over an earlier one.

The flow's data is kept as written; the executor and the workers see the tasks with their
defaults applied, and validation checks the tasks that way too (a required property may come
from a default).
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

from orchestrator.flowlang.walk import flow_tasks
from workers import registry

_NEVER_DEFAULTED = frozenset({"id", "type"})


def plugin_defaults(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The flow's defaults, well-formed ones only (validation reports the others)."""
    found = []
    for key in ("taskDefaults", "pluginDefaults"):
        items = data.get(key)
        if isinstance(items, list):
            found.extend(
                item for item in items
                if isinstance(item, Mapping) and isinstance(item.get("type"), str) and item["type"]
                and isinstance(item.get("values") or {}, Mapping)
            )
    return found


def with_plugin_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the flow's data whose tasks and triggers carry their defaults; the data itself
    when the flow has none."""
    defaults = plugin_defaults(data)
    if not defaults:
        return dict(data)
    result = copy.deepcopy(dict(data))
    # flow_tasks reads a task's children after yielding it, so a parent is completed first.
    for _, task in flow_tasks(result):
        apply_defaults(task, defaults)
    triggers = result.get("triggers")
    if isinstance(triggers, list):
        for trigger in triggers:
            if isinstance(trigger, dict):
                apply_defaults(trigger, defaults)
    return result


def apply_defaults(definition: dict[str, Any], defaults: Iterable[Mapping[str, Any]]) -> None:
    """Apply, in place, every default whose type matches the definition's."""
    written = definition.get("type")
    if not isinstance(written, str):
        return
    for default in defaults:
        if not _matches(default["type"], written):
            continue
        values = {k: v for k, v in (default.get("values") or {}).items() if k not in _NEVER_DEFAULTED}
        if default.get("forced"):
            merged = _merge(definition, values)
        else:
            merged = _merge(values, definition)
        definition.clear()
        definition.update(merged)


def _matches(default_type: str, written: str) -> bool:
    """A default names a type exactly (its Kestra name or an older alias) or a prefix of types."""
    names = {written}
    declared = registry.get(written)
    if declared is not None:
        names.add(declared.name)
        names.update(declared.aliases)
    target = default_type.rstrip(".")
    alias = registry.get(target)
    targets = {target} | ({alias.name} if alias is not None else set())
    return any(name in targets or any(name.startswith(t + ".") for t in targets) for name in names)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over`'s values on top; maps present in both are merged the same way."""
    merged = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in over.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged

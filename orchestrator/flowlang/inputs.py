"""Checks of a list of inputs — the flow's `inputs`, or a Pause's `onResume` — beyond the shape
each input type declares (models.py): ids unique, regular expressions that compile, bounds in
order, dependencies that exist and do not loop."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any, Callable

from orchestrator.flowlang.errors import Path, format_path
from orchestrator.flowlang.model_errors import model_errors
from orchestrator.flowlang.models import INPUT_TYPES, InputIdentity, input_model
from orchestrator.flowlang.types import is_dynamic, parse_duration

Report = Callable[[Path, str], None]

# Kestra refuses these as the item type of an ARRAY (ARRAY) or a MULTISELECT (ARRAY, MULTISELECT).
_ARRAY_ITEM_REFUSED = frozenset({"ARRAY"})
_MULTISELECT_ITEM_REFUSED = frozenset({"ARRAY", "MULTISELECT"})


def check_inputs(inputs: Any, base: Path, report: Report) -> None:
    if not isinstance(inputs, list):
        return  # the declaration of the holder reports a wrong kind
    first_seen: dict[str, Path] = {}
    dependencies: dict[str, tuple[Path, list[Any]]] = {}
    for index, item in enumerate(inputs):
        path = (*base, index)
        if not isinstance(item, dict):
            report(path, f"an input must be a mapping (id, type…), not {_kind(item)}")
            continue
        input_id = _check_one(item, path, report)
        if input_id is None:
            continue
        if input_id in first_seen:
            report(
                (*path, "id" if "id" in item else "name"),
                f"duplicate input id {input_id!r}: already declared at {format_path(first_seen[input_id])}",
            )
            continue
        first_seen[input_id] = path
        depends = item.get("dependsOn")
        if isinstance(depends, dict) and isinstance(depends.get("inputs"), list):
            dependencies[input_id] = ((*path, "dependsOn", "inputs"), depends["inputs"])
    _check_dependencies(dependencies, first_seen, report)


def _check_one(item: dict, path: Path, report: Report) -> str | None:
    input_type = item.get("type")
    if "type" not in item:
        report((*path, "type"), "required property 'type' is missing")
    elif not isinstance(input_type, str) or input_type not in INPUT_TYPES:
        report((*path, "type"), f"unknown input type {input_type!r}; the types are {', '.join(INPUT_TYPES)}")
        input_type = None
    if input_type is not None:
        for relative, message in model_errors(input_model(input_type), item, expressions=False):
            report((*path, *relative), message)
        _check_type_rules(item, input_type, path, report)
    else:
        for relative, message in model_errors(InputIdentity, item, expressions=False):
            report((*path, *relative), message)
    input_id = item.get("id", item.get("name"))
    if "id" not in item and "name" not in item:
        report((*path, "id"), "required property 'id' is missing")
        return None
    return input_id if isinstance(input_id, str) else None


def _check_type_rules(item: dict, input_type: str, path: Path, report: Report) -> None:
    validator = item.get("validator")
    if isinstance(validator, str):
        try:
            re.compile(validator)
        except re.error as error:
            report((*path, "validator"), f"{validator!r} is not a valid regular expression: {error}")
    if input_type == "FILE" and item.get("defaults") is not None:
        report((*path, "defaults"), "an input of type FILE cannot have `defaults`")
    item_type = item.get("itemType") if isinstance(item.get("itemType"), str) else None
    if input_type == "ARRAY" and item_type in _ARRAY_ITEM_REFUSED:
        report((*path, "itemType"), f"the items of an ARRAY cannot be of type {item['itemType']}")
    if input_type == "MULTISELECT" and item_type in _MULTISELECT_ITEM_REFUSED:
        report((*path, "itemType"), f"the items of a MULTISELECT cannot be of type {item['itemType']}")
    if input_type in ("ENUM", "SELECT", "MULTISELECT"):
        _check_values(item, input_type, path, report)
    _check_bounds(item, input_type, path, report)


def _check_values(item: dict, input_type: str, path: Path, report: Report) -> None:
    values = item.get("values", item.get("options"))
    if values is None and item.get("expression") is None:
        needs = "`values`" if input_type == "ENUM" else "`values` or an `expression`"
        report(path, f"an input of type {input_type} needs {needs}")
        return
    default = item.get("defaults")
    if not isinstance(values, list) or item.get("allowCustomValue") or default is None or is_dynamic(default):
        return
    chosen = default if isinstance(default, list) else [default]
    for value in chosen:
        if isinstance(value, str) and value not in values:
            report((*path, "defaults"), f"{value!r} is not one of the `values` ({', '.join(map(str, values))})")


def _check_bounds(item: dict, input_type: str, path: Path, report: Report) -> None:
    pairs = {
        "INT": ("min", "max", _number), "FLOAT": ("min", "max", _number), "DURATION": ("min", "max", parse_duration),
        "DATE": ("after", "before", _date), "DATETIME": ("after", "before", _datetime),
        "TIME": ("after", "before", _time),
        **dict.fromkeys(("STRING", "SECRET", "ARRAY", "MULTISELECT"), ("minLength", "maxLength", _number)),
    }
    if input_type not in pairs:
        return
    low_key, high_key, parse = pairs[input_type]
    low, high = parse(item.get(low_key)), parse(item.get(high_key))
    try:
        inverted = low is not None and high is not None and low > high
    except TypeError:  # an aware and a naive date-time: not comparable, leave it to run time
        inverted = False
    if inverted:
        report((*path, high_key), f"`{high_key}` ({item[high_key]}) comes before `{low_key}` ({item[low_key]})")


def _check_dependencies(
    dependencies: dict[str, tuple[Path, list[Any]]], declared: dict[str, Path], report: Report
) -> None:
    graph: dict[str, list[str]] = {}
    for input_id, (path, names) in dependencies.items():
        for index, name in enumerate(names):
            if not isinstance(name, str):
                continue  # the declaration (a list of input ids) reports it
            if name not in declared:
                report((*path, index), f"input {input_id!r} depends on {name!r}, which is not an input of this flow")
        graph[input_id] = [name for name in names if isinstance(name, str) and name in declared]
    cycle = find_cycle(graph)
    if cycle:
        first = cycle[0]
        report(dependencies[first][0], f"inputs depend on each other in a cycle: {' -> '.join(cycle)}")


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of the graph as [a, b, …, a], or None. Iterative, so any size of graph is safe."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            edges = graph.get(node, [])
            if index < len(edges):
                stack.append((node, index + 1))
                target = edges[index]
                if state.get(target) == 1:
                    return path[path.index(target):] + [target]
                if not state.get(target):
                    stack.append((target, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _time(value: Any) -> time | None:
    try:
        return time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else type(value).__name__

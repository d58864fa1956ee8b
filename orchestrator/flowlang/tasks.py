"""Checks of a flow's tasks and triggers: each against the declaration of its type, then the rules
that span several of them (ids unique in the flow, a Dag's dependencies, what may run inside a
WorkingDirectory, a Subflow that would start its own flow, declared worker groups)."""

from __future__ import annotations

import difflib
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from croniter import croniter

from executor.flowables import dag, switch, working_directory
from orchestrator.flowlang.errors import Path, format_path
from orchestrator.flowlang.inputs import check_inputs, find_cycle
from orchestrator.flowlang.model_errors import model_errors
from orchestrator.flowlang.models import Identity, RetryHolder, TimeoutHolder
from orchestrator.flowlang.walk import nested
from scheduler import triggers as trigger_registry
from workers import registry

Report = Callable[[Path, str], None]

_CRON_NICKNAMES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


@dataclass
class FlowContext:
    """What the checks of one task need to know about the flow around it."""

    flow_id: Any
    namespace: Any
    worker_groups: frozenset[str] | None
    report: Report
    task_ids: dict[str, Path] = field(default_factory=dict)
    trigger_ids: dict[str, Path] = field(default_factory=dict)


def check_task(task: Any, path: Path, ctx: FlowContext) -> None:
    if not isinstance(task, dict):
        ctx.report(path, f"a task must be a mapping (id, type, …), not {_kind(task)}")
        return
    _record_id(task, path, ctx.task_ids, "task", ctx.report)
    type_name = task.get("type")
    task_type = registry.get(type_name) if isinstance(type_name, str) else None
    if task_type is None:
        if "type" not in task:
            ctx.report((*path, "type"), "required property 'type' is missing")
        else:
            ctx.report((*path, "type"), f"unknown task type {type_name!r}" + _did_you_mean(type_name, registry.REGISTRY))
        _check_identity(task, path, ctx.report)
        return
    for relative, message in model_errors(task_type.properties, task):
        ctx.report((*path, *relative), message)
    if isinstance(task.get("retry"), dict):
        for relative, message in model_errors(RetryHolder, {"retry": task["retry"]}):
            ctx.report((*path, *relative), message)
    timeout = task.get("timeout")
    if isinstance(timeout, (str, int, float)):  # lists and mappings are reported by the declaration
        for relative, message in model_errors(TimeoutHolder, {"timeout": timeout}):
            ctx.report((*path, *relative), message)
    _check_worker_group(task, path, ctx)
    _check_recursive_subflow(task, path, task_type, ctx)
    rule = _TYPE_RULES.get(task_type.name)
    if rule is not None:
        rule(task, path, ctx)
    for relative, kind, value in nested(task_type.properties, task):
        where = (*path, *relative)
        if kind == "tasks":
            for index, child in enumerate(value):
                check_task(child, (*where, index), ctx)
        elif kind == "task":
            check_task(value, where, ctx)
        elif kind == "inputs":
            check_inputs(value, where, ctx.report)
        else:
            ctx.report(where, "tasks and inputs are part of the flow's structure and cannot come from an "
                              "expression: write them out")


def check_trigger(trigger: Any, path: Path, ctx: FlowContext) -> None:
    if not isinstance(trigger, dict):
        ctx.report(path, f"a trigger must be a mapping (id, type, …), not {_kind(trigger)}")
        return
    _record_id(trigger, path, ctx.trigger_ids, "trigger", ctx.report)
    type_name = trigger.get("type")
    trigger_type = trigger_registry.get(type_name) if isinstance(type_name, str) else None
    if trigger_type is None:
        if "type" not in trigger:
            ctx.report((*path, "type"), "required property 'type' is missing")
        else:
            ctx.report(
                (*path, "type"),
                f"unknown trigger type {type_name!r}" + _did_you_mean(type_name, trigger_registry.REGISTRY),
            )
        _check_identity(trigger, path, ctx.report)
        return
    for relative, message in model_errors(trigger_type.properties, trigger):
        ctx.report((*path, *relative), message)
    _check_worker_group(trigger, path, ctx)
    if trigger_type.kind == "schedule":  # Schedule and ScheduleOnDates
        _check_schedule(trigger, path, ctx.report)


def _check_identity(item: dict, path: Path, report: Report) -> None:
    """Without a known type there is no declaration to check against; the id rule holds anyway."""
    for relative, message in model_errors(Identity, item, expressions=False):
        report((*path, *relative), message)


# -- rules spanning tasks --------------------------------------------------------------------------

def _record_id(item: dict, path: Path, seen: dict[str, Path], what: str, report: Report) -> None:
    item_id = item.get("id")
    if not isinstance(item_id, str):
        return
    first = seen.get(item_id)
    if first is None:
        seen[item_id] = path
    else:
        report((*path, "id"), f"duplicate {what} id {item_id!r}: also used by {format_path(first)}")


def _check_worker_group(item: dict, path: Path, ctx: FlowContext) -> None:
    group = item.get("workerGroup")
    key = group.get("key") if isinstance(group, dict) else None
    if ctx.worker_groups is None or not isinstance(key, str) or key in ctx.worker_groups:
        return
    declared = ", ".join(sorted(ctx.worker_groups)) or "none"
    ctx.report(
        (*path, "workerGroup", "key"),
        f"worker group {key!r} is not declared; declared: {declared} (the operator declares worker groups "
        "with HARRIER_WORKER_GROUPS)",
    )


def _check_recursive_subflow(task: dict, path: Path, task_type: registry.TaskType, ctx: FlowContext) -> None:
    # Every type that starts another flow names it with `namespace` and `flowId` (Subflow, the
    # older Flow, ForEachItem); one naming this very flow would start itself without end.
    fields = task_type.properties.model_fields
    if "namespace" not in fields or "flowId" not in fields:
        return
    # Numbers are ids written without quotes (`flowId: 2024`): compared as the text they are read as.
    target = (_as_id(task.get("namespace")), _as_id(task.get("flowId")))
    if None not in target and target == (_as_id(ctx.namespace), _as_id(ctx.flow_id)):
        ctx.report(path, f"recursive call: this task starts its own flow {ctx.namespace}.{ctx.flow_id}")


def _check_switch(task: dict, path: Path, ctx: FlowContext) -> None:
    if not task.get("cases") and not task.get("defaults"):
        ctx.report(path, "a Switch needs at least one case in `cases` or tasks in `defaults`")


def _check_dag(task: dict, path: Path, ctx: FlowContext) -> None:
    items = task.get("tasks")
    if not isinstance(items, list):
        return
    ids = [item["task"].get("id") for item in items
           if isinstance(item, dict) and isinstance(item.get("task"), dict)]
    known = {i for i in ids if isinstance(i, str)}
    graph: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("dependsOn"), list):
            continue
        own = item["task"].get("id") if isinstance(item.get("task"), dict) else None
        for position, name in enumerate(item["dependsOn"]):
            if not isinstance(name, str):
                continue  # the declaration (a list of task ids) reports it
            if name not in known:
                ctx.report(
                    (*path, "tasks", index, "dependsOn", position),
                    f"{name!r} is not a task of this Dag (its tasks: {', '.join(sorted(known))})",
                )
            elif isinstance(own, str):
                graph.setdefault(own, []).append(name)
    cycle = find_cycle(graph)
    if cycle:
        ctx.report((*path, "tasks"), f"cyclic dependency between tasks: {' -> '.join(cycle)}")


def _check_working_directory(task: dict, path: Path, ctx: FlowContext) -> None:
    children = task.get("tasks")
    if not isinstance(children, list):
        return
    for index, child in enumerate(children):
        if not isinstance(child, dict):
            continue
        child_type = registry.get(child["type"]) if isinstance(child.get("type"), str) else None
        if child_type is not None and child_type.kind == "flowable":
            ctx.report(
                (*path, "tasks", index),
                f"only runnable tasks can run in a WorkingDirectory; {child['type']} is a flowable task",
            )
        if child.get("workerGroup") is not None:
            ctx.report(
                (*path, "tasks", index, "workerGroup"),
                "set `workerGroup` on the WorkingDirectory itself, not on the tasks inside it",
            )


_TYPE_RULES: dict[str, Callable[[dict, Path, FlowContext], None]] = {
    switch.NAME: _check_switch,
    dag.NAME: _check_dag,
    working_directory.NAME: _check_working_directory,
}


# -- schedules -------------------------------------------------------------------------------------

def cron_problem(expression: str, with_seconds: bool) -> str | None:
    """Why a Schedule's cron expression is refused, or None. Kestra reads 5 fields (minute to
    day of week), or 6 with `withSeconds` where the seconds come first, or a nickname."""
    text = expression.strip()
    if text.lower() in _CRON_NICKNAMES:
        return None
    fields = text.split()
    expected = 6 if with_seconds else 5
    if len(fields) != expected:
        detail = " (seconds first, since `withSeconds` is true)" if with_seconds else ""
        return f"expected {expected} fields{detail}, found {len(fields)}"
    # croniter puts seconds last.
    ordered = fields[1:] + fields[:1] if with_seconds else fields
    try:
        croniter(" ".join(ordered))
    except (ValueError, KeyError, TypeError) as error:
        reason = str(error).split("] ", 1)[-1] if "] " in str(error) else str(error)
        return reason or "not a valid expression"
    return None


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    try:
        return frozenset(zoneinfo.available_timezones())
    except Exception:  # no time zone database at all: nothing to check against  # noqa: BLE001
        return frozenset()


def _check_schedule(trigger: dict, path: Path, report: Report) -> None:
    cron = trigger.get("cron")
    if isinstance(cron, str):
        problem = cron_problem(cron, trigger.get("withSeconds") is True)
        if problem:
            report((*path, "cron"), f"invalid cron expression {cron!r}: {problem}")
    zone = trigger.get("timezone")
    zones = _time_zones()
    if isinstance(zone, str) and zones and zone not in zones and zone not in ("UTC", "Z"):
        report((*path, "timezone"), f"unknown time zone {zone!r}; use a name such as Europe/Paris or UTC")


# -- words ------------------------------------------------------------------------------------------

def _did_you_mean(name: Any, known: dict[str, Any]) -> str:
    # Type names share long package prefixes, so closeness is judged on the last segment.
    if not isinstance(name, str):
        return ""
    short = name.rsplit(".", 1)[-1]
    scored = [
        (difflib.SequenceMatcher(None, short, candidate.rsplit(".", 1)[-1]).ratio(),
         difflib.SequenceMatcher(None, name, candidate).ratio(), candidate)
        for candidate in known
    ]
    best = max(scored, default=None)
    return f"; did you mean {best[2]!r}?" if best and best[0] >= 0.75 else ""


def _as_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__

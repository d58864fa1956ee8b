"""The run context a worker renders a task's properties with.

A job carries only what its task can reference: the outputs of the tasks its expressions name
(all outputs when it names them dynamically), so a job's size does not grow with the execution.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable, Mapping

from executor.core.model import ExecutionView, FlowGraph, TaskNode, TaskRunView

_OUTPUT_REF = re.compile(r"""outputs\s*(?:\.\s*([A-Za-z0-9_]+)|\[\s*(['"])([^'"]+)\2\s*\])""")
_ANY_OUTPUTS = re.compile(r"\boutputs\b")
_PARENTS = re.compile(r"\bparents?\b")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


@lru_cache(maxsize=4096)
def _referenced(text: str) -> frozenset[str] | None:
    references = list(_OUTPUT_REF.finditer(text))
    if len(_ANY_OUTPUTS.findall(text)) > len(references):
        return None  # `outputs` used as a whole, or with a computed key: send everything
    if _PARENTS.search(text):
        return None  # `parent.outputs` and `parents[i].outputs` are the outputs of enclosing tasks
    return frozenset(match.group(1) or match.group(3) for match in references)


def referenced_outputs(node: TaskNode) -> frozenset[str] | None:
    """Task ids whose outputs the task's expressions read; None when it cannot be told."""
    return referenced_in(node.definition)


def referenced_in(value: Any) -> frozenset[str] | None:
    """Task ids whose outputs the expressions in `value` read; None when it cannot be told."""
    return _referenced("\n".join(_strings(value)))


def is_literal(value: Any) -> bool:
    """Whether `value` holds no expression: it renders to itself whatever the context."""
    return not any("{{" in text or "{%" in text for text in _strings(value))


@lru_cache(maxsize=4096)
def _mentions_error_logs(text: str) -> bool:
    return "errorLogs" in text


def uses_error_logs(node: TaskNode) -> bool:
    return _mentions_error_logs("\n".join(_strings(node.definition)))


def error_logs(failed: Iterable[tuple[str, str, list[Mapping[str, Any]]]]) -> list[dict[str, Any]]:
    """What `errorLogs()` returns: one entry per failed attempt that said why, as Kestra's log
    entries (taskId, taskRunId, level, message, timestamp)."""
    entries = []
    for task_id, task_run_id, attempts in failed:
        for attempt in attempts:
            if attempt.get("error"):
                histories = attempt.get("state", {}).get("histories") or [{}]
                entries.append({"taskId": task_id, "taskRunId": task_run_id, "level": "ERROR",
                                "message": attempt["error"], "timestamp": histories[-1].get("date")})
    return entries


def labels_map(labels: tuple[Mapping[str, str], ...] | list) -> dict[str, str]:
    return {label["key"]: label["value"] for label in labels}


def lineage(runs: Mapping[str, TaskRunView], parent_id: str | None) -> list[TaskRunView]:
    """The task runs enclosing a task run whose parent is `parent_id`, nearest first."""
    chain: list[TaskRunView] = []
    while parent_id is not None and parent_id in runs and len(chain) < len(runs):
        parent = runs[parent_id]
        chain.append(parent)
        parent_id = parent.parent_id
    return chain


def value_path(ancestors: Iterable[TaskRunView], value: str | None) -> tuple[str, ...]:
    """The keys a task run's outputs sit under in `outputs.<task id>`, as in Kestra: the loop
    values of its enclosing task runs, outermost first, then its own (`ancestors` nearest first).
    A task in a Sequential in a ForEach is thus `outputs.task['value 1']` too, not overwritten
    by the next iteration."""
    path = [ancestor.value for ancestor in ancestors if ancestor.value is not None]
    path.reverse()
    if value is not None:
        path.append(value)
    return tuple(path)


def _nest(outputs: dict[str, Any], task_id: str, path: tuple[str, ...], task_outputs: Mapping[str, Any]) -> None:
    if not path:
        outputs[task_id] = task_outputs
        return
    current = outputs.setdefault(task_id, {})
    for key in path[:-1]:
        current = current.setdefault(key, {})
    current[path[-1]] = task_outputs


def outputs_of(rows: Iterable[tuple], runs: Mapping[str, TaskRunView] | None = None) -> dict[str, Any]:
    """`outputs` for expressions from (task id, loop value, outputs[, parent task run id]) rows in
    creation order. Outputs of task runs inside loops are nested by the loop values (see
    `value_path`); the enclosing task runs are looked up in `runs` when given."""
    outputs: dict[str, Any] = {}
    for task_id, value, task_outputs, *parent in rows:
        if task_outputs is None:
            continue
        ancestors = lineage(runs, parent[0]) if runs and parent else ()
        _nest(outputs, task_id, value_path(ancestors, value), task_outputs)
    return outputs


def _find(outputs: Mapping[str, Any], task_id: str, path: tuple[str, ...]) -> Any:
    found: Any = outputs.get(task_id)
    for key in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(key)
    return found


def parents_of(ancestors: list[TaskRunView], outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Kestra's `parents`: for each enclosing task run, nearest first, its loop value as
    `taskrun.value` and its `outputs`, leaving out those that have neither. `parent` is the
    first. A task run's own outputs are used when the view holds them (a Switch or If sets its
    outputs when it starts), else they are found in `outputs` by the run's value path."""
    parents = []
    for index, ancestor in enumerate(ancestors):
        entry: dict[str, Any] = {}
        if ancestor.value is not None:
            entry["taskrun"] = {"value": ancestor.value}
        found = ancestor.outputs
        if found is None:
            found = _find(outputs, ancestor.task_id, value_path(ancestors[index + 1:], ancestor.value))
        if found is not None:
            entry["outputs"] = found
        if entry:
            parents.append(entry)
    return parents


def with_parents(context: dict[str, Any], ancestors: list[TaskRunView]) -> dict[str, Any]:
    """Add `parents` and, inside any flowable, `parent` to a task run's context."""
    parents = parents_of(ancestors, context.get("outputs") or {})
    context["parents"] = parents
    if parents:
        context["parent"] = parents[0]
    return context


def trigger_context(trigger: Mapping[str, Any] | None) -> dict[str, Any]:
    """`trigger` in expressions: as in Kestra, the trigger's variables (`trigger.executionId`,
    `trigger.body`, `trigger.date`…), beside which the stored `id`, `type` and `variables` stay
    readable (workers find a subflow's parent through them)."""
    if not trigger:
        return {}
    variables = trigger.get("variables")
    if not isinstance(variables, Mapping):
        return dict(trigger)
    return {**variables, **{key: trigger[key] for key in ("id", "type", "variables") if key in trigger}}


def execution_context(flow: FlowGraph, view: ExecutionView, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The variables every expression of an execution sees."""
    return {
        "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
        "execution": {"id": view.id, "startDate": view.start_date, "originalId": view.original_id or view.id},
        "inputs": dict(view.inputs),
        "outputs": dict(outputs),
        "labels": labels_map(view.labels),
        "vars": dict(flow.data.get("variables") or {}),
        "trigger": trigger_context(view.trigger),
    }


def run_context(flow: FlowGraph, view: ExecutionView, node: TaskNode, run: TaskRunView, task_run_start: str,
                outputs: Mapping[str, Any], runs: Mapping[str, TaskRunView] | None = None) -> dict[str, Any]:
    """What one task run's expressions see: the execution's variables, `task`, `taskrun`, and
    `parent`/`parents` from its enclosing task runs, looked up in `runs` (by id; the view's when
    not given: pass it when building many contexts from one view)."""
    context = execution_context(flow, view, outputs)
    context["task"] = {"id": node.id, "type": node.definition.get("type", node.type)}
    context["taskrun"] = {
        "id": run.id, "startDate": task_run_start, "attemptsCount": run.attempts, "value": run.value,
        "parentId": run.parent_id, "iteration": run.iteration,
    }
    if runs is None:
        runs = {other.id: other for other in view.task_runs}
    return with_parents(context, lineage(runs, run.parent_id))

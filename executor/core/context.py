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
    return frozenset(match.group(1) or match.group(3) for match in references)


def referenced_outputs(node: TaskNode) -> frozenset[str] | None:
    """Task ids whose outputs the task's expressions read; None when it cannot be told."""
    return _referenced("\n".join(_strings(node.definition)))


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


def outputs_of(rows: Iterable[tuple[str, str | None, Mapping[str, Any] | None]]) -> dict[str, Any]:
    """`outputs` for expressions from (task id, loop value, outputs) rows in creation order."""
    outputs: dict[str, Any] = {}
    for task_id, value, task_outputs in rows:
        if task_outputs is None:
            continue
        if value is None:
            outputs[task_id] = task_outputs
        else:  # loop iterations: nested by the iteration's value, as Kestra does
            outputs.setdefault(task_id, {})[value] = task_outputs
    return outputs


def execution_context(flow: FlowGraph, view: ExecutionView, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The variables every expression of an execution sees."""
    return {
        "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
        "execution": {"id": view.id, "startDate": view.start_date, "originalId": view.original_id or view.id},
        "inputs": dict(view.inputs),
        "outputs": dict(outputs),
        "labels": labels_map(view.labels),
        "vars": dict(flow.data.get("variables") or {}),
        "trigger": dict(view.trigger or {}),
    }


def run_context(flow: FlowGraph, view: ExecutionView, node: TaskNode, run: TaskRunView, task_run_start: str,
                outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What one task run's expressions see: the execution's variables, `task` and `taskrun`."""
    context = execution_context(flow, view, outputs)
    context["task"] = {"id": node.id, "type": node.definition.get("type", node.type)}
    context["taskrun"] = {
        "id": run.id, "startDate": task_run_start, "attemptsCount": run.attempts, "value": run.value,
        "parentId": run.parent_id, "iteration": run.iteration,
    }
    return context

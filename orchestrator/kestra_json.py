"""Repository rows in Kestra's JSON shape (the CLI's --json and the REST API share this)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from orchestrator.input_types import duration_text
from orchestrator.models import Execution, LogEntry, TaskRun
from orchestrator.repository import iso, now


def _state(current: str, histories: list[dict[str, str]]) -> dict[str, Any]:
    state: dict[str, Any] = {"current": current, "histories": histories}
    if histories:
        state["startDate"] = histories[0]["date"]
        end = None
        if current in {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"}:
            state["endDate"] = end = histories[-1]["date"]
        # As Kestra: until the end, the time it has been running so far.
        state["duration"] = duration_text((_parse(end) if end else now()) - _parse(histories[0]["date"]))
    return state


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def task_run_json(run: TaskRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "executionId": run.execution_id,
        "taskId": run.task_id,
        "parentTaskRunId": run.parent_task_run_id,
        "value": run.value,
        "iteration": run.iteration,
        "state": _state(run.state, run.state_history),
        "attempts": run.attempts,
        "outputs": run.outputs,
    }


def execution_json(execution: Execution, task_runs: Iterable[TaskRun]) -> dict[str, Any]:
    return {
        "id": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "flowRevision": execution.flow_revision,
        "state": _state(execution.state, execution.state_history),
        "taskRunList": [task_run_json(run) for run in task_runs],
        "inputs": execution.inputs,
        "outputs": execution.outputs,
        "labels": execution.labels,
        "variables": execution.variables,
        "trigger": execution.trigger,
        "parentId": execution.parent_id,
        "originalId": execution.original_id or execution.id,
        "scheduleDate": iso(execution.schedule_date) if execution.schedule_date else None,
    }


def log_json(entry: LogEntry) -> dict[str, Any]:
    return {
        "namespace": entry.namespace,
        "flowId": entry.flow_id,
        "executionId": entry.execution_id,
        "taskId": entry.task_id,
        "taskRunId": entry.task_run_id,
        "attemptNumber": entry.attempt,
        "level": entry.level,
        "message": entry.message,
        "timestamp": iso(entry.timestamp),
    }

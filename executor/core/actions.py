"""What the decision core asks the shell to do. Frozen data, applied in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Mapping

from orchestrator.states import State


@dataclass(frozen=True, slots=True)
class CreateTaskRun:
    id: str
    task_id: str
    parent_id: str | None
    state: State  # CREATED for runnables (a job follows), RUNNING for flowables, SKIPPED…
    seq: int
    value: str | None = None
    iteration: int | None = None


@dataclass(frozen=True, slots=True)
class SetTaskRunState:
    task_run_id: str
    state: State
    outputs: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send the job for the next attempt of a runnable task run to its worker group."""

    task_run_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class SetExecutionState:
    state: State


@dataclass(frozen=True, slots=True)
class Log:
    level: str
    message: str
    task_run_id: str | None = None
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleDelay:
    """Look at this task run again after a while: the step in which the delay fires sees
    `view.fired[task_run_id] == kind`. One delay of a kind per task run: asking again while one
    is pending changes nothing."""

    task_run_id: str
    kind: str
    after: timedelta


@dataclass(frozen=True, slots=True)
class StartSubflow:
    """Start an execution of another flow for a Subflow task run; the shell records its id as
    the task run's output `executionId`, or fails the task run when it cannot start."""

    task_run_id: str
    namespace: str
    flow_id: str
    revision: int | None
    inputs: Mapping[str, Any]
    labels: Any
    inherit_labels: bool
    wait: bool
    # One of several children of the task run (ForEachItem's batch `iteration`, from 0): the
    # shell records no `executionId`; the child's trigger names the iteration, and the child
    # leaves its flow outputs at `outputs_uri` when it ends (None: nowhere).
    iteration: int | None = None
    outputs_uri: str | None = None
    schedule_date: datetime | None = None  # the child starts then rather than now


@dataclass(frozen=True, slots=True)
class DeleteTaskRun:
    """Remove a task run (a restart removes the `errors` and `finally` runs it reopens)."""

    task_run_id: str


@dataclass(frozen=True, slots=True)
class ResumeExecution:
    """Resume another, paused, execution (the Resume task); the shell fails `task_run_id` with
    the reason when it cannot."""

    task_run_id: str
    execution_id: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FetchLogs:
    """Write the log lines of an execution to a file of `task_run_id` (the log Fetch task); the
    shell records the outputs `uri` and `size`, or fails the task run with the reason. The
    execution is looked for in `namespace`.`flow_id` (the current flow when not given)."""

    task_run_id: str
    execution_id: str
    namespace: str | None
    flow_id: str | None
    task_ids: tuple[str, ...] | None
    levels: tuple[str, ...]


Action = (CreateTaskRun | SetTaskRunState | Dispatch | SetExecutionState | Log | ScheduleDelay | StartSubflow
          | DeleteTaskRun | ResumeExecution | FetchLogs)


def comparable(actions: list[Action]) -> list[str]:
    """Actions as text, in an order of their own and with the ids of the task runs they create
    replaced by what those task runs are, so that two decisions of one step can be compared (a
    step over part of an execution against one over all of it)."""
    names: dict[str, str] = {}
    for action in actions:
        if isinstance(action, CreateTaskRun):  # a parent is created before its children
            parent = names.get(action.parent_id, action.parent_id)
            names[action.id] = f"<{action.task_id} under {parent} #{action.iteration} {action.value!r}>"
    texts = []
    for action in actions:
        values = []
        for field in fields(action):
            value = getattr(action, field.name)
            if not (isinstance(action, CreateTaskRun) and field.name == "seq"):
                values.append(f"{field.name}={names.get(value, value) if isinstance(value, str) else value!r}")
        texts.append(f"{type(action).__name__}({', '.join(values)})")
    return sorted(texts)

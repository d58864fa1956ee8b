"""What the decision core asks the shell to do. Frozen data, applied in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
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


Action = CreateTaskRun | SetTaskRunState | Dispatch | SetExecutionState | Log

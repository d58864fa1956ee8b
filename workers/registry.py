"""The task-type registry: one declaration per task type, imported everywhere, defined once.

A declaration is a pydantic model of the type's own properties (the common ones — id, type,
retry, timeout, runIf… — come from `TaskBase`). From that one model come deploy-time
validation, the flow's JSON Schema, the plugin documentation and, for runnable types, the typed
properties the worker hands to `run()` after rendering.

Runnable types run on workers (`run` is set); flowable types are decided by the executor
(`run` is None, their semantics live in `executor/`), except a flowable with a `run` (the
WorkingDirectory), whose children a worker runs as one job. Pure Python: importing this module
must not touch Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from workers.context import RunContext

# Kestra's id rule for flows, tasks, inputs and triggers.
ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"

Kind = Literal["runnable", "flowable"]
LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]

# A list of task definitions nested in a flowable (`tasks`, `errors`, `then`…). The flow
# validator recognises this marker, validates each item as a task of its own type and
# references the task union in the JSON Schema.
TASKS_MARKER = "x-harrier-tasks"
TaskList = Annotated[list[dict[str, Any]], Field(json_schema_extra={TASKS_MARKER: True})]
# One task definition held inside a structure rather than a plain list (a Dag's `tasks[].task`).
TASK_MARKER = "x-harrier-task"
Task = Annotated[dict[str, Any], Field(json_schema_extra={TASK_MARKER: True})]


class WorkerGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    fallback: Literal["FAIL", "WAIT", "CANCEL"] | None = None


class TaskBase(BaseModel):
    """Properties every task has, whatever its type."""

    # Numbers written where a string is declared are read as that string (`format: 42`), the
    # way Kestra's YAML reader coerces scalars.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)

    id: str = Field(pattern=ID_PATTERN, max_length=256)
    type: str
    description: str | None = None
    disabled: bool = False
    allowFailure: bool = False
    allowWarning: bool = False
    runIf: str | bool | None = None
    timeout: timedelta | str | None = None
    retry: dict[str, Any] | None = None
    workerGroup: WorkerGroup | None = None
    logLevel: LogLevel | None = None
    logToFile: bool = False


@dataclass(frozen=True)
class TaskType:
    name: str
    properties: type[TaskBase]
    kind: Kind
    title: str = ""
    aliases: tuple[str, ...] = ()
    # runnable only: (typed, rendered properties, run context) -> outputs
    run: Callable[[Any, "RunContext"], dict[str, Any] | None] | None = None
    # property names the worker must not render before run() (rendered later, or never)
    raw_properties: frozenset[str] = field(default_factory=frozenset)
    # flowable only: the tasks it runs, made from its own definition instead of written in the
    # flow (ForEachItem's `<id>_split`, `<id>_items` and `<id>_merge`, as Kestra runs them)
    generated_tasks: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
    # a type only Harrier makes (a generated task's): left out of the flow's JSON Schema
    internal: bool = False


REGISTRY: dict[str, TaskType] = {}


def register(task_type: TaskType) -> TaskType:
    for name in (task_type.name, *task_type.aliases):
        existing = REGISTRY.get(name)
        if existing is not None and existing is not task_type:
            raise ValueError(f"task type {name} registered twice")
        REGISTRY[name] = task_type
    return task_type


def get(name: str) -> TaskType | None:
    """The declaration of a task type by its name or an alias, after loading every module."""
    load_all()
    return REGISTRY.get(name)


def canonical_types() -> list[TaskType]:
    load_all()
    seen: dict[str, TaskType] = {}
    for task_type in REGISTRY.values():
        if not task_type.internal:
            seen.setdefault(task_type.name, task_type)
    return sorted(seen.values(), key=lambda t: t.name)


def task_list_properties(task_type: TaskType) -> tuple[str, ...]:
    """Names of the properties of a type that hold a list of tasks (declared with TaskList)."""
    return tuple(
        name
        for name, info in task_type.properties.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(TASKS_MARKER)
    )


_loaded = False


def load_all() -> None:
    """Import every module that declares task types (runnable and flowable)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import executor.flowables  # noqa: F401  (registers the flowable declarations)
    import workers.tasktypes  # noqa: F401  (registers the runnable types)


def core_aliases(suffix: str) -> tuple[str, ...]:
    """The older `io.kestra.core.tasks.*` names of a `io.kestra.plugin.core.*` type."""
    match = re.match(r"^io\.kestra\.plugin\.core\.(.+)$", suffix)
    if not match:
        return ()
    rest = match.group(1)
    aliases = [f"io.kestra.core.tasks.{rest}"]
    # Kestra 0.x spelled some packages differently.
    renames = {"debug.": "debugs.", "log.": "log.", "flow.": "flows.", "execution.": "executions.",
               "output.": "outputs.", "storage.": "storages.", "state.": "states.", "http.": "http."}
    for new, old in renames.items():
        if rest.startswith(new) and new != old:
            aliases.append(f"io.kestra.core.tasks.{old}{rest[len(new):]}")
    return tuple(dict.fromkeys(aliases))

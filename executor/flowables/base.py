"""What every flowable declaration shares: the `errors` and `finally` branches, and the task-list
property types. Declarations only: what a flowable does is decided in `executor.core`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, create_model

from workers.registry import TASKS_MARKER, TaskBase, core_aliases

FLOW = "io.kestra.plugin.core.flow."

# A branch that must hold at least one task (Kestra refuses an empty or missing one).
RequiredTasks = Annotated[list[dict[str, Any]], Field(min_length=1, json_schema_extra={TASKS_MARKER: True})]
# A branch that may be left out or written `null`.
OptionalTasks = Annotated[list[dict[str, Any]] | None, Field(json_schema_extra={TASKS_MARKER: True})]

# `finally` (and If's `else`) are Python keywords, so the fields are made with create_model: the
# field names must be the YAML keys, since the executor reads branches by field name
# (workers.registry.task_list_properties).
FlowableBase: type[TaskBase] = create_model(
    "FlowableBase",
    __base__=TaskBase,
    __doc__="Properties every flowable task has.",
    errors=(OptionalTasks, Field(None, description="Tasks to run when a task of this flowable fails.")),
    **{"finally": (OptionalTasks, Field(None, description="Tasks to run at the end, whatever the outcome."))},
)


def names(short: str) -> tuple[str, tuple[str, ...]]:
    """The canonical name of a core flowable and its older `io.kestra.core.tasks.flows.*` aliases."""
    name = FLOW + short
    return name, core_aliases(name)

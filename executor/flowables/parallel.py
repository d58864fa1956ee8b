"""`io.kestra.plugin.core.flow.Parallel`: run tasks at the same time."""

from __future__ import annotations

from pydantic import Field

from executor.flowables.base import FlowableBase, RequiredTasks, names
from workers.registry import TaskType, register

NAME, ALIASES = names("Parallel")


class ParallelProperties(FlowableBase):
    tasks: RequiredTasks
    concurrent: int = Field(0, ge=0, description="How many tasks run at once; 0 means all of them.")


register(TaskType(name=NAME, properties=ParallelProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks in parallel"))

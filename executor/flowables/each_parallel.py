"""`io.kestra.plugin.core.flow.EachParallel` (deprecated by Kestra for ForEach): run the tasks
once per value, values in parallel."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from executor.flowables.base import FlowableBase, RequiredTasks, names
from workers.registry import TaskType, register

NAME, ALIASES = names("EachParallel")


class EachParallelProperties(FlowableBase):
    value: str | list[Any] = Field(description="A list, or a JSON array as a string.")
    concurrent: int = Field(0, ge=0, description="How many values run at once; 0 means all of them.")
    tasks: RequiredTasks


register(TaskType(name=NAME, properties=EachParallelProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks for each value in parallel (deprecated: use ForEach)"))

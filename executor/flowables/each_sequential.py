"""`io.kestra.plugin.core.flow.EachSequential` (deprecated by Kestra for ForEach): run the tasks
once per value, one value after the other."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from executor.flowables.base import FlowableBase, RequiredTasks, names
from workers.registry import TaskType, register

NAME, ALIASES = names("EachSequential")


class EachSequentialProperties(FlowableBase):
    value: str | list[Any] = Field(description="A list, or a JSON array as a string.")
    tasks: RequiredTasks


register(TaskType(name=NAME, properties=EachSequentialProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks for each value, one after the other (deprecated: use ForEach)"))

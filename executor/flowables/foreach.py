"""`io.kestra.plugin.core.flow.ForEach`: run the tasks once per value."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from executor.flowables.base import FlowableBase, RequiredTasks, names
from workers.registry import TaskType, register

NAME, ALIASES = names("ForEach")


class ForEachProperties(FlowableBase):
    values: str | list[Any] = Field(description="A list, or a JSON array as a string (often an expression).")
    concurrencyLimit: int = Field(1, ge=0, description="How many iterations run at once; 0 means all of them.")
    tasks: RequiredTasks


register(TaskType(name=NAME, properties=ForEachProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks for each value"))

"""`io.kestra.plugin.core.flow.Sequential`: run tasks one after the other."""

from __future__ import annotations

from executor.flowables.base import FlowableBase, RequiredTasks, names
from workers.registry import TaskType, register

NAME, ALIASES = names("Sequential")


class SequentialProperties(FlowableBase):
    tasks: RequiredTasks


register(TaskType(name=NAME, properties=SequentialProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks one after the other"))

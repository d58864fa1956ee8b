"""`io.kestra.plugin.core.flow.AllowFailure`: run tasks sequentially; a failure among them ends
this task in WARNING instead of failing the execution."""

from __future__ import annotations

from executor.flowables.base import FlowableBase, RequiredTasks, names
from workers.registry import TaskType, register

NAME, ALIASES = names("AllowFailure")


class AllowFailureProperties(FlowableBase):
    tasks: RequiredTasks


register(TaskType(name=NAME, properties=AllowFailureProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks, turning their failure into a warning"))

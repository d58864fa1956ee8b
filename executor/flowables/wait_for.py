"""`io.kestra.plugin.core.flow.WaitFor`: run tasks again and again until a condition holds,
checked after each iteration within the limits of `checkFrequency` (Kestra's defaults:
maxIterations 100, maxDuration PT1H, interval PT1S)."""

from __future__ import annotations

from pydantic import Field

from executor.flowables.base import FlowableBase, RequiredTasks, names
from orchestrator.flowlang.types import Duration, Props
from workers.registry import TaskType, register

NAME, ALIASES = names("WaitFor")


class CheckFrequency(Props):
    maxIterations: int | None = Field(None, ge=1, description="Stop after this many iterations.")
    maxDuration: Duration | None = Field(None, description="Stop after this long.")
    interval: Duration | None = Field(None, description="Wait this long between iterations.")


class LoopProperties(FlowableBase):
    condition: str | bool = Field(description="An expression evaluated after each iteration.")
    checkFrequency: CheckFrequency | None = None
    failOnMaxReached: bool = Field(False, description="Fail when a limit is reached before the condition.")
    tasks: RequiredTasks


register(TaskType(name=NAME, properties=LoopProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks until a condition holds"))

"""`io.kestra.plugin.core.flow.Pause`: pause the execution until it is resumed, or for a time."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from executor.flowables.base import FlowableBase, OptionalTasks, names
from orchestrator.flowlang.types import Duration, InputList
from workers.registry import TaskType, register

NAME, ALIASES = names("Pause")


class PauseProperties(FlowableBase):
    pauseDuration: Duration | None = Field(None, description="Resume by itself after this duration.")
    behavior: Literal["RESUME", "WARN", "CANCEL", "FAIL"] | None = Field(
        None, description="What happens when `pauseDuration` ends: RESUME (default), WARN, CANCEL or FAIL."
    )
    delay: Duration | None = Field(None, description="Older name of a pause that resumes after a duration.")
    timeout: Duration | None = Field(None, description="Older: resume (as failed) after this duration.")
    onResume: InputList | None = Field(None, description="Inputs asked for when the execution is resumed.")
    tasks: OptionalTasks = Field(None, description="Deprecated: tasks to run after the pause.")


register(TaskType(name=NAME, properties=PauseProperties, kind="flowable", aliases=ALIASES,
                  title="Pause the execution"))

"""`io.kestra.plugin.core.execution.Resume`: resume a paused execution — by default the current
one (a Pause in a parallel branch). Decided by the executor, since it changes an execution."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.execution.Resume"


class ResumeProperties(TaskBase):
    executionId: str | None = Field(None, description="The execution to resume; the current one when absent.")
    namespace: str | None = Field(None, description="Accepted for Kestra compatibility; the id is enough here.")
    flowId: str | None = Field(None, description="Accepted for Kestra compatibility; the id is enough here.")
    inputs: dict[str, Any] | None = Field(None, description="The `onResume` inputs given to the paused task.")


register(TaskType(name=NAME, properties=ResumeProperties, kind="flowable", aliases=core_aliases(NAME),
                  title="Resume a paused execution"))

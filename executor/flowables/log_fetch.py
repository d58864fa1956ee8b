"""`io.kestra.plugin.core.log.Fetch`: fetch an execution's log lines into a file. Decided by the
executor, since logs live in the repository, which workers never touch; a task of kind
"flowable" with no children (executor/core/flowables/log_fetch.py, executor/log_fetch.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.log.Fetch"


class FetchProperties(TaskBase):
    executionId: str | None = Field(None, description="The execution whose logs to fetch (default: this one); "
                                                      "looked for in the current flow unless `namespace` and "
                                                      "`flowId` say otherwise.")
    namespace: str | None = Field(None, description="The namespace of the execution's flow, with `executionId`.")
    flowId: str | None = Field(None, description="The flow of the execution, with `executionId`.")
    tasksId: list[str] | None = Field(None, description="Only the lines of these tasks.")
    level: Literal["TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR"] = Field(
        "INFO", description="The lowest level fetched.")


register(TaskType(name=NAME, properties=FetchProperties, kind="flowable", aliases=core_aliases(NAME),
                  title="Fetch an execution's logs into a file"))

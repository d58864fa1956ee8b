"""`io.kestra.plugin.core.execution.Exit`: end the execution in the state given. Decided by the
executor, since it changes the execution itself; a task of kind "flowable" with no children."""

from __future__ import annotations

from pydantic import Field

from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.execution.Exit"


class ExitProperties(TaskBase):
    state: str = Field("SUCCESS", description="The state the execution ends in: SUCCESS, WARNING, FAILED, "
                                              "CANCELED or KILLED (which also kills the tasks still running).")


register(TaskType(name=NAME, properties=ExitProperties, kind="flowable", aliases=core_aliases(NAME),
                  title="End the execution in a given state"))

"""`io.kestra.plugin.core.flow.Switch`: run the tasks of the case matching a value, or the
defaults. At least one case or the defaults must hold a task (checked by the flow validator)."""

from __future__ import annotations

from pydantic import Field

from executor.flowables.base import FlowableBase, OptionalTasks, names
from workers.registry import TaskList, TaskType, register

NAME, ALIASES = names("Switch")


class SwitchProperties(FlowableBase):
    value: str | bool = Field(description="The value to match, usually an expression; a boolean is "
                                          "matched as `true`/`false`.")
    cases: dict[str, TaskList] | None = Field(None, description="Task lists by the value that selects them.")
    defaults: OptionalTasks = Field(None, description="Tasks to run when no case matches.")


register(TaskType(name=NAME, properties=SwitchProperties, kind="flowable", aliases=ALIASES,
                  title="Run the tasks of the matching case"))

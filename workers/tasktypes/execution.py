"""`io.kestra.plugin.core.execution.Fail`: fail the task, optionally only when a condition holds."""

from __future__ import annotations

from pydantic import Field

from orchestrator.templating import is_truthy
from workers.context import RunContext, TaskFailure
from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.execution.Fail"


class FailProperties(TaskBase):
    condition: str | bool | None = Field(
        None, description="Fail only when this renders to a true value; always fail when absent."
    )
    errorMessage: str = Field("Task failure", description="The message of the failure.")


def run(props: FailProperties, ctx: RunContext) -> None:
    if props.condition is None or is_truthy(props.condition):
        raise TaskFailure(props.errorMessage)
    return None


register(TaskType(name=NAME, properties=FailProperties, kind="runnable", run=run, aliases=core_aliases(NAME),
                  title="Fail the execution"))

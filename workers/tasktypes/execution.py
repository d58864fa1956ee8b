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


ASSERT = "io.kestra.plugin.core.execution.Assert"


class AssertProperties(TaskBase):
    conditions: list[str | bool | int | float | None] = Field(
        min_length=1, description="Expressions that must all be true (Kestra truthiness: 0, -0 and '' are false)."
    )
    errorMessage: str | None = Field(None, description="Added to the failure's message.")


def run_assert(props: AssertProperties, ctx: RunContext) -> None:
    failed = [index for index, value in enumerate(props.conditions) if not is_truthy(value)]
    for index in failed:
        ctx.log("ERROR", f"Assertion `{ctx.job['task']['conditions'][index]}` failed")
    if failed:
        message = f"{len(failed)} of {len(props.conditions)} assertion(s) failed"
        raise TaskFailure(f"{message}: {props.errorMessage}" if props.errorMessage else message)
    return None


register(TaskType(name=ASSERT, properties=AssertProperties, kind="runnable", run=run_assert,
                  aliases=core_aliases(ASSERT), title="Assert conditions on the execution's data"))

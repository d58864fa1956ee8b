"""`io.kestra.plugin.core.flow.Sleep`: wait for a duration on the worker."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from workers.context import RunContext
from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.flow.Sleep"


class SleepProperties(TaskBase):
    duration: timedelta = Field(description="How long to wait, as an ISO-8601 duration such as PT5S.")


def run(props: SleepProperties, ctx: RunContext) -> None:
    ctx.sleep(props.duration.total_seconds())
    return None


register(TaskType(name=NAME, properties=SleepProperties, kind="runnable", run=run, aliases=core_aliases(NAME),
                  title="Sleep"))

"""`debug.Return` (render a value as the task's output) and the older `debug.Echo` (log it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workers.context import RunContext
from workers.registry import TaskBase, TaskType, core_aliases, register

RETURN = "io.kestra.plugin.core.debug.Return"
ECHO = "io.kestra.plugin.core.debug.Echo"


class ReturnProperties(TaskBase):
    format: str | None = Field(None, description="The value to render; becomes the output `value`.")


def run_return(props: ReturnProperties, ctx: RunContext) -> dict:
    return {"value": props.format}


class EchoProperties(TaskBase):
    format: str = Field(description="The message to log.")
    level: Literal["TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR"] = "INFO"


def run_echo(props: EchoProperties, ctx: RunContext) -> None:
    ctx.log(props.level, props.format)
    return None


register(TaskType(name=RETURN, properties=ReturnProperties, kind="runnable", run=run_return,
                  aliases=core_aliases(RETURN), title="Return a rendered value as output"))
register(TaskType(name=ECHO, properties=EchoProperties, kind="runnable", run=run_echo,
                  aliases=core_aliases(ECHO), title="Log a rendered message (deprecated: use Log)"))

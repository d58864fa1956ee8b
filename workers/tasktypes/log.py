"""`io.kestra.plugin.core.log.Log`: write a message (or several) to the execution's logs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workers.context import RunContext
from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.log.Log"


class LogProperties(TaskBase):
    message: str | list[str] = Field(description="The message, or a list of messages, to log.")
    level: Literal["TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR"] = Field(
        "INFO", description="The level of the log lines."
    )


def run(props: LogProperties, ctx: RunContext) -> None:
    for message in props.message if isinstance(props.message, list) else [props.message]:
        ctx.log(props.level, message)
    return None


register(TaskType(name=NAME, properties=LogProperties, kind="runnable", run=run, aliases=core_aliases(NAME),
                  title="Log a message"))

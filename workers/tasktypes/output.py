"""`io.kestra.plugin.core.output.OutputValues`: publish rendered values as outputs."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workers.context import RunContext
from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.output.OutputValues"


class OutputValuesProperties(TaskBase):
    values: dict[str, Any] = Field(default_factory=dict, description="The values, rendered, as `outputs.<id>.values`.")


def run(props: OutputValuesProperties, ctx: RunContext) -> dict:
    return {"values": props.values}


register(TaskType(name=NAME, properties=OutputValuesProperties, kind="runnable", run=run,
                  aliases=core_aliases(NAME), title="Output values"))

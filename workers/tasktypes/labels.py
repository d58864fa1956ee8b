"""`io.kestra.plugin.core.execution.Labels`: add or override labels of the running execution."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from workers.context import RunContext, TaskFailure
from workers.registry import TaskBase, TaskType, core_aliases, register

NAME = "io.kestra.plugin.core.execution.Labels"
# Labels Harrier sets itself; a task may not change them.
RESERVED_PREFIX = "system."


class LabelsProperties(TaskBase):
    labels: dict[str, Any] | list[dict[str, Any]] | str = Field(
        description="A map of labels, a list of {key, value}, or a JSON string of either."
    )


def _pairs(labels: dict | list | str) -> list[tuple[str, Any]]:
    if isinstance(labels, str):
        try:
            labels = json.loads(labels)
        except json.JSONDecodeError as error:
            raise TaskFailure(f"labels: not a JSON map or list ({error.msg} at position {error.pos})") from None
    if isinstance(labels, dict):
        return list(labels.items())
    if isinstance(labels, list):
        pairs = []
        for index, item in enumerate(labels):
            if not isinstance(item, dict) or "key" not in item or "value" not in item:
                raise TaskFailure(f"labels[{index}]: expected {{key, value}}")
            pairs.append((item["key"], item["value"]))
        return pairs
    raise TaskFailure("labels: expected a map, a list of {key, value} or a JSON string")


def run(props: LabelsProperties, ctx: RunContext) -> None:
    labels = []
    for key, value in _pairs(props.labels):
        key = str(key)
        if not key:
            raise TaskFailure("labels: a label key is empty")
        if key.startswith(RESERVED_PREFIX):
            raise TaskFailure(f"labels: '{key}' is a system label and cannot be set by a task")
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        labels.append({"key": key, "value": text})
    ctx.labels.extend(labels)
    return None


register(TaskType(name=NAME, properties=LabelsProperties, kind="runnable", run=run, aliases=core_aliases(NAME),
                  title="Set labels on the execution"))

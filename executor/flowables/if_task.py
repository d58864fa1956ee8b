"""`io.kestra.plugin.core.flow.If`: run `then` when the condition is true, else `else`."""

from __future__ import annotations

from pydantic import Field, create_model

from executor.flowables.base import FlowableBase, OptionalTasks, RequiredTasks, names
from workers.registry import TaskType, register

NAME, ALIASES = names("If")

# `else` is a Python keyword, hence create_model (see base.py).
IfProperties = create_model(
    "IfProperties",
    __base__=FlowableBase,
    condition=(str | bool, Field(description="An expression; false, 0, -0, '' and null are false.")),
    then=(RequiredTasks, Field(description="Tasks to run when the condition is true.")),
    **{"else": (OptionalTasks, Field(None, description="Tasks to run when the condition is false."))},
)

register(TaskType(name=NAME, properties=IfProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks depending on a condition"))

"""`io.kestra.plugin.core.trigger.Flow`: start an execution when executions of other flows
reach some states, optionally once a set of preconditions is met."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator.flowlang.types import Duration, Props, StateName
from scheduler.triggers import TriggerBase, TriggerType, old_aliases, register
from workers.registry import ID_PATTERN

NAME = "io.kestra.plugin.core.trigger.Flow"


class UpstreamFlow(Props):
    namespace: str = Field(min_length=1)
    flowId: str | None = None
    states: list[StateName] | None = None
    labels: dict[str, Any] | None = None


class Filter(Props):
    field: Literal["FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION"]
    type: str = Field(min_length=1, description="EQUAL_TO, NOT_EQUAL_TO, STARTS_WITH, ENDS_WITH, "
                                                "REGEX, IS_TRUE, IS_FALSE, IS_NULL, IS_NOT_NULL, IN, NOT_IN…")
    value: str | None = None
    values: list[str] | None = None


class ExecutionFilter(Props):
    id: str = Field(min_length=1)
    operand: Literal["AND", "OR"] | None = None
    filters: list[Filter] = Field(min_length=1)


class TimeWindow(Props):
    type: Literal["DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW"] | None = None
    window: Duration | None = None
    windowAdvance: Duration | None = None
    deadline: str | None = None
    startTime: str | None = None
    endTime: str | None = None


class Preconditions(Props):
    id: str = Field(pattern=ID_PATTERN)
    flows: list[UpstreamFlow] | None = None
    where: list[ExecutionFilter] | None = None
    timeWindow: TimeWindow | None = None
    resetOnSuccess: bool | None = None


class FlowTriggerProperties(TriggerBase):
    inputs: dict[str, Any] | None = Field(None, description="Inputs of the execution started.")
    states: list[StateName] | None = Field(
        None, description="States of upstream executions that fire the trigger (default: the terminal ones)."
    )
    preconditions: Preconditions | None = None


register(TriggerType(name=NAME, properties=FlowTriggerProperties, kind="flow", aliases=old_aliases(NAME),
                     title="Start an execution when other executions end"))

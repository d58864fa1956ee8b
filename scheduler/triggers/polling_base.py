"""What every polling trigger has: an `interval` between evaluations, which a worker of the
trigger's `workerGroup` runs (scheduler/polling.py dispatches them, workers/polling.py runs them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator

from orchestrator.flowlang.types import Duration, is_dynamic, parse_duration
from scheduler.triggers import TriggerBase

DEFAULT_INTERVAL = timedelta(seconds=60)
SHORTEST_INTERVAL = timedelta(seconds=1)
# Properties a worker must not render before the evaluation: the scheduler reads them, or the
# evaluation renders them itself later with more variables.
RAW_PROPERTIES = frozenset({"id", "type", "description", "disabled", "conditions", "labels", "stopAfter",
                            "workerGroup", "logLevel", "minLogLevel", "logToFile", "interval", "allowConcurrent"})


class PollingProperties(TriggerBase):
    interval: Duration | None = Field(None, description="Time between two evaluations (default PT60S).")
    allowConcurrent: bool = Field(False, description="Evaluate even while an execution it started still runs.")

    @field_validator("interval")
    @classmethod
    def _at_least_a_second(cls, value: Any) -> Any:
        if value is None:
            return value
        if is_dynamic(value):
            raise ValueError("the interval is read by the scheduler and cannot be an expression")
        duration = parse_duration(value)
        if duration is not None and duration < SHORTEST_INTERVAL:
            raise ValueError(f"an interval of {value!r} is too short: at least PT1S")
        return value

    @field_validator("conditions")
    @classmethod
    def _judgeable(cls, value: Any) -> Any:
        # Judged by the scheduler when a result arrives: the date conditions and Expression.
        from scheduler.conditions import problems

        found = problems([condition.model_dump() for condition in value or ()], on="a polling trigger")
        if found:
            raise ValueError("; ".join(found))
        return value


def interval_of(trigger: dict[str, Any]) -> timedelta:
    return parse_duration(trigger.get("interval")) or DEFAULT_INTERVAL

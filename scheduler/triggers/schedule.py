"""`io.kestra.plugin.core.trigger.Schedule`: start executions at the dates of a cron expression.
The expression itself is checked by the flow validator (with croniter)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from orchestrator.flowlang.types import Duration
from scheduler.triggers import TriggerBase, TriggerType, old_aliases, register

NAME = "io.kestra.plugin.core.trigger.Schedule"


class ScheduleProperties(TriggerBase):
    cron: str = Field(description="A cron expression of 5 fields (6 with `withSeconds`), or @hourly, "
                                  "@daily, @weekly, @monthly, @yearly, @annually, @midnight.")
    withSeconds: bool = Field(False, description="The expression starts with a seconds field.")
    timezone: str | None = Field(None, description="Time zone of the expression, e.g. Europe/Paris.")
    inputs: dict[str, Any] | None = Field(None, description="Inputs of the executions started.")
    lateMaximumDelay: Duration | None = Field(None, description="Skip a date missed by more than this.")
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = Field(
        None, description="Dates missed while the scheduler was down: start all, the last one, or none."
    )
    allowConcurrent: bool = Field(False, description="Fire even while an execution it started still runs.")
    backfill: dict[str, Any] | None = Field(None, description="Deprecated: {start, end, labels} to replay.")
    scheduleConditions: list[dict[str, Any]] | None = Field(None, description="Deprecated: use `conditions`.")

    @field_validator("conditions")
    @classmethod
    def _judgeable(cls, value):
        from scheduler.conditions import problems

        found = problems([condition.model_dump() for condition in value or ()])
        if found:
            raise ValueError("; ".join(found))
        return value


register(TriggerType(name=NAME, properties=ScheduleProperties, kind="schedule", aliases=old_aliases(NAME),
                     title="Start executions on a schedule"))

"""`io.kestra.plugin.core.trigger.ScheduleOnDates`: start one execution at each of a list of
dates, on the same firing machinery as Schedule (scheduler/service.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from scheduler.dates import read_iso
from scheduler.triggers import TriggerBase, TriggerType, register

NAME = "io.kestra.plugin.core.trigger.ScheduleOnDates"


class ScheduleOnDatesProperties(TriggerBase):
    dates: list[str] = Field(min_length=1, description="ISO-8601 dates, e.g. 2025-06-01T09:00:00+02:00; a date "
                                                       "without an offset is read in `timezone`.")
    timezone: str | None = Field(None, description="Time zone of the dates written without an offset.")
    inputs: dict[str, Any] | None = Field(None, description="Inputs of the executions started.")
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = Field(
        None, description="Dates missed while the scheduler was down: start all, the last one, or none."
    )
    allowConcurrent: bool = Field(False, description="Fire even while an execution it started still runs.")

    @field_validator("dates")
    @classmethod
    def _dates(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            try:
                read_iso(value)
            except ValueError:
                raise ValueError(f"dates[{index}] {value!r} is not an ISO-8601 date such as "
                                 f"2025-06-01T09:00:00Z") from None
        return values


register(TriggerType(name=NAME, properties=ScheduleOnDatesProperties, kind="schedule",
                     title="Start executions on a list of dates"))

"""Which scheduled dates to fire now: a pure decision over the trigger's state and the clock.

The trigger state keeps `last_date`: every date up to it has been handled (fired, or passed
over by a policy). `plan()` returns how far to move it without firing (`skip_to`) and the dates
to fire after that, oldest first; the caller fires them one by one, each with its key.

- A date older than `lateMaximumDelay` is passed over.
- A date older than `missed_after` (the scheduler was down, or stayed busy) is *missed* and
  follows `recoverMissedSchedules`: ALL fires every missed date, LAST only the latest of them,
  NONE none. Newer dates are simply due and always fire.
- Nothing fires while the trigger is busy (without `allowConcurrent`, an execution it started
  still runs, as in Kestra); the caller then fires the due dates one at a time, each waiting for
  the last one's execution, and passes over those whose conditions do not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from scheduler.dates import Calendar

Recover = Literal["ALL", "LAST", "NONE"]

# How many due dates one evaluation considers at most: a trigger far behind catches up over a few
# evaluations instead of one long one.
BATCH = 100


@dataclass(frozen=True)
class Plan:
    skip_to: datetime | None = None  # move last_date here first (dates up to it are passed over)
    fire: list[datetime] = field(default_factory=list)


def plan(cron: Calendar, last_date: datetime, now: datetime, *, recover: Recover = "ALL",
         late_maximum_delay: timedelta | None = None, missed_after: timedelta = timedelta(seconds=60),
         busy: bool = False) -> Plan:
    floor = last_date
    if late_maximum_delay is not None:
        too_late = cron.previous_before(now - late_maximum_delay)
        if too_late is not None and too_late > floor:
            floor = too_late
    last_missed = cron.previous_before(now - missed_after)
    if last_missed is not None and last_missed > floor and recover != "ALL":
        if recover == "NONE":
            floor = last_missed
        else:
            before_it = cron.previous_before(last_missed)
            if before_it is not None and before_it > floor:
                floor = before_it
    skip_to = floor if floor > last_date else None
    if busy:
        return Plan(skip_to=skip_to)
    return Plan(skip_to=skip_to, fire=cron.between(floor, now, BATCH))


def backfill_dates(cron: Calendar, cursor: datetime, end: datetime | None, now: datetime, limit: int) -> list[datetime]:
    """The next dates of a backfill after its cursor, up to its end (or now) — never future ones."""
    until = min(end, now) if end is not None else now
    return cron.between(cursor, until, limit)

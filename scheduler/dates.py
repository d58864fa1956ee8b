"""The dates of a Schedule trigger (a cron expression) or a ScheduleOnDates trigger (a list):
pure functions over aware datetimes, no Django.

Cron expressions are read in the trigger's time zone, so `0 9 * * *` in Europe/Paris fires at
09:00 Paris time in winter and in summer. Around daylight-saving changes:
- a local time that does not exist (the hour skipped in spring) fires at the change itself, as
  cron does for a job whose time was skipped;
- a local time that happens twice (the hour repeated in autumn) fires once when the expression
  names fixed hours (`30 2 * * *` runs once that night), and at both instants when its hour
  field is a wildcard or a step (`0 * * * *` runs every real hour, 25 that day) — the rule of
  Vixie cron, which Kestra's users know from their crontabs.
Every date is computed as an instant (UTC) and dates are strictly increasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Iterator, Union
from zoneinfo import ZoneInfo

from croniter import croniter

NICKNAMES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Cron:
    """A Schedule's `cron`, `withSeconds` and `timezone`, ready to compute dates."""

    expression: str
    with_seconds: bool = False
    zone_name: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.zone_name)

    @property
    def fields(self) -> list[str]:
        """Kestra's order: seconds first when `withSeconds`."""
        text = self.expression.strip()
        return NICKNAMES.get(text.lower(), text).split()

    @property
    def _croniter_text(self) -> str:
        fields = self.fields
        # croniter puts seconds last.
        return " ".join(fields[1:] + fields[:1]) if self.with_seconds and len(fields) == 6 else " ".join(fields)

    @property
    def repeats_in_folds(self) -> bool:
        """Whether a wall-clock time repeated by a DST change fires twice (wildcard hours)."""
        fields = self.fields
        hour = fields[2] if self.with_seconds and len(fields) == 6 else fields[1]
        return hour.startswith("*")

    def next_after(self, moment: datetime) -> datetime:
        """The first date strictly after `moment`."""
        return next(self._forward(moment))

    def previous_before(self, moment: datetime) -> datetime | None:
        """The last date strictly before `moment` (None when there is none within reach)."""
        iterator = croniter(self._croniter_text, moment.astimezone(self.zone))
        for _ in range(1000):
            try:
                candidate = iterator.get_prev(datetime)
            except Exception:  # noqa: BLE001 (croniter gives up on impossible expressions)
                return None
            if candidate < moment and not self._skipped_repeat(candidate):
                return candidate.astimezone(timezone.utc)
        return None

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """The last date at or before `moment`."""
        return self.previous_before(moment + timedelta(microseconds=1))

    def between(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Dates in (after, until], the first `limit` of them."""
        dates: list[datetime] = []
        for date in self._forward(after):
            if date > until or len(dates) >= limit:
                break
            dates.append(date)
        return dates

    def _forward(self, moment: datetime) -> Iterator[datetime]:
        iterator = croniter(self._croniter_text, moment.astimezone(self.zone))
        last = moment.astimezone(timezone.utc)
        while True:
            candidate = iterator.get_next(datetime)
            instant = candidate.astimezone(timezone.utc)
            if instant <= last or self._skipped_repeat(candidate):
                continue
            last = instant
            yield instant

    def _skipped_repeat(self, local: datetime) -> bool:
        """A second occurrence of a repeated wall-clock time, for an expression of fixed hours."""
        if self.repeats_in_folds:
            return False
        first = local.replace(tzinfo=None).replace(tzinfo=self.zone, fold=0)
        return first.astimezone(timezone.utc) < local.astimezone(timezone.utc)


@dataclass(frozen=True)
class DateList:
    """ScheduleOnDates' `dates`, with the interface of Cron: each date is a date of the trigger,
    once. A date written without an offset is read in the trigger's zone."""

    dates: tuple[datetime, ...]
    zone_name: str = "UTC"

    @classmethod
    def parse(cls, values: Iterable[str | datetime], zone_name: str = "UTC") -> "DateList":
        zone = _zone(zone_name)
        instants = set()
        for value in values:
            moment = value if isinstance(value, datetime) else read_iso(str(value))
            instants.add((moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(timezone.utc))
        return cls(tuple(sorted(instants)), zone_name)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.zone_name)

    def next_after(self, moment: datetime) -> datetime | None:
        return next((date for date in self.dates if date > moment), None)

    def previous_before(self, moment: datetime) -> datetime | None:
        return next((date for date in reversed(self.dates) if date < moment), None)

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        return self.previous_before(moment + timedelta(microseconds=1))

    def between(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        return [date for date in self.dates if after < date <= until][:limit]


# What a trigger's dates come from: a Schedule's cron or a ScheduleOnDates' list.
Calendar = Union[Cron, DateList]


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo("UTC" if name in ("Z", "") else name)


def iso(moment: datetime) -> str:
    """Kestra's date format: ISO-8601 in UTC with milliseconds and a Z."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def read_iso(text: str) -> datetime:
    """An ISO-8601 date as written: naive when it has no offset. Raises ValueError."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))


def parse_iso(text: str) -> datetime:
    """An ISO-8601 date; a date without a zone is read as UTC."""
    value = read_iso(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def trigger_variables(calendar: Calendar, date: datetime) -> dict[str, str | None]:
    """`trigger.date`, `trigger.next` and `trigger.previous` of the execution for `date` (null
    when there is none: the last of a ScheduleOnDates' dates has no next)."""
    previous, following = calendar.previous_before(date), calendar.next_after(date)
    return {"date": iso(date), "next": iso(following) if following else None,
            "previous": iso(previous) if previous else None}

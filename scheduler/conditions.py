"""Conditions of a Schedule trigger, judged on each scheduled date before it fires. Pure: the
caller passes the scheduled date (in the trigger's time zone) and a function that renders
expressions. A date whose conditions do not all hold is passed over, not fired later.

Kestra's names are accepted in their three spellings: `io.kestra.plugin.core.condition.DayWeek`,
`…condition.DayWeekCondition` and the older `io.kestra.core.models.conditions.types.DayWeekCondition`.
"""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta
from typing import Any, Callable, Mapping

from scheduler.dates import parse_iso

Render = Callable[[Any], Any]

DAYS_UPPER = tuple(day.upper() for day in calendar.day_name)  # MONDAY first, as datetime.weekday()
ORDINALS = {"FIRST": 1, "SECOND": 2, "THIRD": 3, "FOURTH": 4}
DEFAULT_DATE = "{{ trigger.date }}"


class ConditionError(ValueError):
    """A condition that cannot be judged: an unknown type or a property out of range."""


def short_name(type_name: str) -> str:
    name = type_name.rsplit(".", 1)[-1]
    return name[: -len("Condition")] if name.endswith("Condition") and name != "Condition" else name


def holds_all(conditions: list[Mapping[str, Any]] | None, date: datetime, render: Render) -> bool:
    return all(holds(condition, date, render) for condition in conditions or ())


def holds(condition: Mapping[str, Any], date: datetime, render: Render) -> bool:
    judge = _JUDGES.get(short_name(str(condition.get("type", ""))))
    if judge is None:
        raise ConditionError(f"condition {condition.get('type')!r} cannot be used on a Schedule trigger")
    return judge(condition, date, render)


def problems(conditions: list[Mapping[str, Any]] | None, on: str = "a Schedule trigger") -> list[str]:
    """What keeps these conditions from being judged, found at deploy time (`on` names the trigger kind)."""
    found: list[str] = []
    for condition in conditions or ():
        name = short_name(str(condition.get("type", "")))
        if name not in _JUDGES:
            found.append(f"condition {condition.get('type')!r} cannot be used on {on}; "
                         f"use one of {', '.join(sorted(_JUDGES))}")
            continue
        if name in ("Not", "Or"):
            found.extend(problems(condition.get("conditions"), on))
        for key, allowed in (("dayOfWeek", DAYS_UPPER), ("dayInMonth", (*ORDINALS, "LAST"))):
            value = condition.get(key)
            if value is not None and str(value).upper() not in allowed:
                found.append(f"{key} {value!r} is not one of {', '.join(allowed)}")
    return found



def _date(condition: Mapping[str, Any], scheduled: datetime, render: Render) -> datetime:
    """The date a condition tests: the scheduled date in the trigger's zone unless it names one."""
    given = condition.get("date")
    if given is None or "".join(str(given).split()) == "".join(DEFAULT_DATE.split()):
        return scheduled
    return parse_iso(str(render(given)))


def _weekday(value: Any) -> int:
    try:
        return DAYS_UPPER.index(str(value).upper())
    except ValueError:
        raise ConditionError(f"dayOfWeek {value!r} is not a day of the week") from None


def _day_week(condition, scheduled, render) -> bool:
    return _date(condition, scheduled, render).weekday() == _weekday(condition.get("dayOfWeek"))


def _day_week_in_month(condition, scheduled, render) -> bool:
    date = _date(condition, scheduled, render)
    if date.weekday() != _weekday(condition.get("dayOfWeek")):
        return False
    which = str(condition.get("dayInMonth", "")).upper()
    if which == "LAST":
        return (date + timedelta(days=7)).month != date.month
    if which not in ORDINALS:
        raise ConditionError(f"dayInMonth {condition.get('dayInMonth')!r} is not FIRST…FOURTH or LAST")
    return (date.day - 1) // 7 + 1 == ORDINALS[which]


def _weekend(condition, scheduled, render) -> bool:
    return _date(condition, scheduled, render).weekday() >= 5


def _date_time_between(condition, scheduled, render) -> bool:
    # Kestra's bounds are exclusive: the date must be after `after` and before `before`.
    date = _date(condition, scheduled, render)
    after, before = condition.get("after"), condition.get("before")
    if after is not None and not date > parse_iso(str(render(after))):
        return False
    return before is None or date < parse_iso(str(render(before)))


def _time_between(condition, scheduled, render) -> bool:
    """Times without an offset are wall-clock times of the date's zone; with one (`09:00:00+02:00`)
    the date is first moved to that offset. Exclusive bounds, as Kestra's."""
    date = _date(condition, scheduled, render)

    def local(bound: Any) -> tuple[time, time]:
        text = str(render(bound)).strip()
        parsed = time.fromisoformat(text.replace("Z", "+00:00"))
        moved = date.astimezone(parsed.tzinfo) if parsed.tzinfo else date
        return parsed.replace(tzinfo=None), moved.time().replace(tzinfo=None)

    after, before = condition.get("after"), condition.get("before")
    if after is not None:
        bound, at = local(after)
        if not at > bound:
            return False
    if before is not None:
        bound, at = local(before)
        if not at < bound:
            return False
    return True


def _not(condition, scheduled, render) -> bool:
    return not any(holds(inner, scheduled, render) for inner in condition.get("conditions") or ())


def _or(condition, scheduled, render) -> bool:
    return any(holds(inner, scheduled, render) for inner in condition.get("conditions") or ())


def _expression(condition, scheduled, render) -> bool:
    from orchestrator.templating import is_truthy

    return is_truthy(render(condition.get("expression")))


_JUDGES: dict[str, Callable[[Mapping[str, Any], datetime, Render], bool]] = {
    "DayWeek": _day_week,
    "DayWeekInMonth": _day_week_in_month,
    "Weekend": _weekend,
    "DateTimeBetween": _date_time_between,
    "TimeBetween": _time_between,
    "Not": _not,
    "Or": _or,
    "Expression": _expression,
}


def condition_names() -> list[str]:
    """The short names of the conditions a Schedule trigger judges (`DayWeek`, `Or`…)."""
    return sorted(_JUDGES)

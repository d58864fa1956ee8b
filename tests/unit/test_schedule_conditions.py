"""Conditions of Schedule triggers, judged on the scheduled date in the trigger's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.conditions import ConditionError, holds, holds_all, problems

PARIS = ZoneInfo("Europe/Paris")
CORE = "io.kestra.plugin.core.condition."


def render(value):
    return value


def on(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.mark.parametrize("type_name", [f"{CORE}DayWeek", f"{CORE}DayWeekCondition",
                                       "io.kestra.core.models.conditions.types.DayWeekCondition"])
def test_day_week_in_all_its_spellings(type_name):
    condition = {"type": type_name, "dayOfWeek": "MONDAY"}
    assert holds(condition, on("2025-03-03T10:00:00"), render)
    assert not holds(condition, on("2025-03-04T10:00:00"), render)


def test_the_day_is_the_one_of_the_trigger_zone():
    # 23:30 on Sunday in UTC is already Monday in Paris
    late_sunday_utc = datetime.fromisoformat("2025-03-02T23:30:00+00:00").astimezone(PARIS)
    assert holds({"type": f"{CORE}DayWeek", "dayOfWeek": "MONDAY"}, late_sunday_utc, render)


@pytest.mark.parametrize("day, which, expected", [
    ("2025-03-03", "FIRST", True), ("2025-03-10", "FIRST", False), ("2025-03-10", "SECOND", True),
    ("2025-03-24", "FOURTH", True), ("2025-03-31", "LAST", True), ("2025-03-24", "LAST", False),
])
def test_day_week_in_month(day, which, expected):
    condition = {"type": f"{CORE}DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": which}
    assert holds(condition, on(f"{day}T11:00:00"), render) is expected


def test_date_time_between_has_exclusive_bounds():
    condition = {"type": f"{CORE}DateTimeBetween", "after": "2025-03-01T00:00:00Z", "before": "2025-04-01T00:00:00Z"}
    assert holds(condition, on("2025-03-15T00:00:00"), render)
    assert not holds(condition, on("2025-04-01T02:00:00"), render)
    assert not holds({**condition, "after": "2025-02-28T23:00:00Z"}, on("2025-03-01T00:00:00"), render)


def test_time_between_reads_wall_clock_times_of_the_zone():
    condition = {"type": f"{CORE}TimeBetween", "after": "08:00:00", "before": "18:00:00"}
    assert holds(condition, on("2025-03-15T09:00:00"), render)
    assert not holds(condition, on("2025-03-15T19:00:00"), render)
    with_offset = {"type": f"{CORE}TimeBetween", "after": "08:00:00+00:00"}
    assert not holds(with_offset, on("2025-03-15T08:30:00"), render)  # 07:30 UTC


def test_weekend_not_and_or():
    saturday, monday = on("2025-03-08T10:00:00"), on("2025-03-10T10:00:00")
    weekend = {"type": f"{CORE}Weekend"}
    assert holds(weekend, saturday, render) and not holds(weekend, monday, render)
    assert holds({"type": f"{CORE}Not", "conditions": [weekend]}, monday, render)
    either = {"type": f"{CORE}Or", "conditions": [weekend, {"type": f"{CORE}DayWeek", "dayOfWeek": "MONDAY"}]}
    assert holds(either, monday, render) and not holds(either, on("2025-03-11T10:00:00"), render)
    assert holds_all([], monday, render)


def test_an_explicit_date_is_rendered():
    condition = {"type": f"{CORE}DayWeek", "dayOfWeek": "FRIDAY", "date": "{{ inputs.day }}"}
    assert holds(condition, on("2025-03-03T10:00:00"), lambda value: "2025-03-07T10:00:00Z")


def test_problems_are_found_before_any_date():
    assert problems([{"type": f"{CORE}DayWeek", "dayOfWeek": "MONDAY"}]) == []
    assert "cannot be used on a Schedule" in problems([{"type": f"{CORE}ExecutionFlow"}])[0]
    assert "dayOfWeek" in problems([{"type": f"{CORE}Not", "conditions": [
        {"type": f"{CORE}DayWeek", "dayOfWeek": "MOONDAY"}]}])[0]
    with pytest.raises(ConditionError):
        holds({"type": f"{CORE}ExecutionFlow"}, on("2025-03-03T10:00:00"), render)

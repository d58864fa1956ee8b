"""ScheduleOnDates: its dates read in the trigger's zone, planned like a cron's (each date once,
missed ones by policy), validated at deploy; and Flow triggers' stopAfter rule."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from executor.core.flow_triggers import stops
from orchestrator.flowlang import FlowValidationError, parse_flow
from scheduler.dates import DateList, iso, trigger_variables
from scheduler.planning import plan

DATES = DateList.parse(["2025-03-30T01:30:00", "2025-03-30T03:30:00", "2025-01-01T00:00:00Z",
                        "2025-03-30T03:30:00+02:00"], "Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_dates_without_offset_are_read_in_the_zone_and_duplicates_fire_once():
    assert [iso(d) for d in DATES.dates] == ["2025-01-01T00:00:00.000Z", "2025-03-30T00:30:00.000Z",
                                             "2025-03-30T01:30:00.000Z"]


def test_next_previous_and_between():
    assert iso(DATES.next_after(at("2025-01-01T00:00:00Z"))) == "2025-03-30T00:30:00.000Z"
    assert DATES.next_after(at("2025-03-30T01:30:00Z")) is None
    assert DATES.previous_before(at("2025-01-01T00:00:00Z")) is None
    assert [iso(d) for d in DATES.between(at("2024-12-31T00:00:00Z"), at("2025-03-30T00:30:00Z"), 10)] == [
        "2025-01-01T00:00:00.000Z", "2025-03-30T00:30:00.000Z"]


def test_the_last_date_has_no_next_in_its_variables():
    variables = trigger_variables(DATES, DATES.dates[-1])
    assert variables == {"date": "2025-03-30T01:30:00.000Z", "next": None, "previous": "2025-03-30T00:30:00.000Z"}


@pytest.mark.parametrize("recover, fired", [("ALL", 3), ("LAST", 1), ("NONE", 0)])
def test_missed_dates_follow_the_policy(recover, fired):
    decided = plan(DATES, at("2024-12-01T00:00:00Z"), at("2025-06-01T00:00:00Z"), recover=recover,
                   missed_after=timedelta(seconds=60))
    assert len(decided.fire) == fired
    if fired:
        assert decided.fire[-1] == DATES.dates[-1]


def test_a_date_just_due_fires_whatever_the_policy():
    due = DATES.dates[1] + timedelta(seconds=5)
    decided = plan(DATES, DATES.dates[0], due, recover="NONE", missed_after=timedelta(seconds=60))
    assert decided.fire == [DATES.dates[1]]


FLOW = """
id: on-dates
namespace: tests
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: dates
    type: io.kestra.plugin.core.trigger.ScheduleOnDates
    timezone: {zone}
    dates: {dates}
"""


def test_a_valid_schedule_on_dates_deploys():
    parse_flow(FLOW.format(zone="Europe/Paris", dates='["2025-01-01T09:00:00", "2025-01-02T09:00:00Z"]'))


@pytest.mark.parametrize("zone, dates, path, reason", [
    ("UTC", '["tomorrow"]', "triggers[0].dates", "is not an ISO-8601 date"),
    ("UTC", "[]", "triggers[0].dates", "must not be empty"),
    ("Mars/Olympus", '["2025-01-01T09:00:00Z"]', "triggers[0].timezone", "unknown time zone"),
])
def test_invalid_schedule_on_dates_names_the_property(zone, dates, path, reason):
    with pytest.raises(FlowValidationError) as refused:
        parse_flow(FLOW.format(zone=zone, dates=dates))
    assert any(e.path.startswith(path) and reason in e.message for e in refused.value.errors), refused.value.errors


@pytest.mark.parametrize("stop_after, ended, stopped", [
    (["FAILED"], "FAILED", True), (["FAILED"], "SUCCESS", False), (None, "FAILED", False),
    (["RUNNING"], "RUNNING", False), (["WARNING", "SUCCESS"], "SUCCESS", True),
])
def test_stop_after_applies_to_the_end_states_it_lists(stop_after, ended, stopped):
    assert stops({"stopAfter": stop_after}, ended) is stopped

"""Dates of Schedule triggers: cron fields, nicknames, seconds, time zones and DST changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from scheduler.dates import Cron, iso, trigger_variables
from scheduler.planning import backfill_dates, plan

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def dates(cron: Cron, after: str, until: str, limit: int = 100) -> list[str]:
    return [iso(d) for d in cron.between(at(after), at(until), limit)]


def test_five_fields_in_utc():
    assert dates(Cron("*/15 * * * *"), "2025-01-01T10:07:00Z", "2025-01-01T11:00:00Z") == [
        "2025-01-01T10:15:00.000Z", "2025-01-01T10:30:00.000Z", "2025-01-01T10:45:00.000Z",
        "2025-01-01T11:00:00.000Z"]


def test_with_seconds_puts_seconds_first():
    cron = Cron("*/20 * * * * *", with_seconds=True)
    assert dates(cron, "2025-01-01T10:00:00Z", "2025-01-01T10:01:00Z") == [
        "2025-01-01T10:00:20.000Z", "2025-01-01T10:00:40.000Z", "2025-01-01T10:01:00.000Z"]
    every_second = Cron("* * * * * *", with_seconds=True)
    assert len(every_second.between(at("2025-01-01T10:00:00Z"), at("2025-01-01T10:00:10Z"), 100)) == 10


@pytest.mark.parametrize("nickname, first", [
    ("@hourly", "2025-03-10T11:00:00.000Z"), ("@daily", "2025-03-11T00:00:00.000Z"),
    ("@midnight", "2025-03-11T00:00:00.000Z"), ("@weekly", "2025-03-16T00:00:00.000Z"),
    ("@monthly", "2025-04-01T00:00:00.000Z"), ("@yearly", "2026-01-01T00:00:00.000Z"),
    ("@annually", "2026-01-01T00:00:00.000Z"),
])
def test_nicknames(nickname, first):
    assert iso(Cron(nickname).next_after(at("2025-03-10T10:30:00Z"))) == first


def test_a_time_zone_keeps_the_wall_clock_time_across_seasons():
    cron = Cron("0 9 * * *", zone_name="Europe/Paris")
    assert iso(cron.next_after(at("2025-01-15T12:00:00Z"))) == "2025-01-16T08:00:00.000Z"  # CET
    assert iso(cron.next_after(at("2025-07-15T12:00:00Z"))) == "2025-07-16T07:00:00.000Z"  # CEST


def test_spring_forward_in_paris():
    # 2025-03-30: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that night.
    daily = Cron("30 2 * * *", zone_name="Europe/Paris")
    assert dates(daily, "2025-03-28T12:00:00Z", "2025-04-01T12:00:00Z") == [
        "2025-03-29T01:30:00.000Z",  # 02:30 CET
        "2025-03-30T01:00:00.000Z",  # the skipped time fires at the change, 03:00 CEST
        "2025-03-31T00:30:00.000Z",  # 02:30 CEST
        "2025-04-01T00:30:00.000Z"]
    hourly = Cron("0 * * * *", zone_name="Europe/Paris")
    assert dates(hourly, "2025-03-29T23:30:00Z", "2025-03-30T02:00:00Z") == [
        "2025-03-30T00:00:00.000Z", "2025-03-30T01:00:00.000Z", "2025-03-30T02:00:00.000Z"]  # 01:00, 03:00, 04:00


def test_fall_back_in_paris():
    # 2025-10-26: 03:00 CEST becomes 02:00 CET; 02:00–02:59 happens twice.
    daily = Cron("30 2 * * *", zone_name="Europe/Paris")
    assert dates(daily, "2025-10-24T12:00:00Z", "2025-10-28T12:00:00Z") == [
        "2025-10-25T00:30:00.000Z", "2025-10-26T00:30:00.000Z",  # once that night, at the first 02:30
        "2025-10-27T01:30:00.000Z", "2025-10-28T01:30:00.000Z"]
    hourly = Cron("0 * * * *", zone_name="Europe/Paris")
    assert dates(hourly, "2025-10-25T22:30:00Z", "2025-10-26T02:00:00Z") == [
        "2025-10-25T23:00:00.000Z", "2025-10-26T00:00:00.000Z", "2025-10-26T01:00:00.000Z",
        "2025-10-26T02:00:00.000Z"]  # 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET: every real hour
    day = hourly.between(at("2025-10-25T22:00:00Z"), at("2025-10-26T23:00:00Z"), 100)
    assert len(day) == 25


def test_fall_back_resumes_inside_the_repeated_hour():
    hourly = Cron("*/30 * * * *", zone_name="Europe/Paris")
    # last fired at 02:30 CEST (00:30Z): next is 02:00 CET (01:00Z)
    assert iso(hourly.next_after(at("2025-10-26T00:30:00Z"))) == "2025-10-26T01:00:00.000Z"
    assert iso(hourly.previous_before(at("2025-10-26T01:00:00Z"))) == "2025-10-26T00:30:00.000Z"


def test_trigger_variables_are_utc_iso_with_milliseconds():
    cron = Cron("0 * * * *", zone_name="Europe/Paris")
    assert trigger_variables(cron, at("2025-01-01T10:00:00Z")) == {
        "date": "2025-01-01T10:00:00.000Z", "next": "2025-01-01T11:00:00.000Z",
        "previous": "2025-01-01T09:00:00.000Z"}


EVERY_MINUTE = Cron("* * * * *")
NOW = at("2025-01-01T12:00:30Z")


def test_plan_lists_the_due_dates_unless_busy():
    decided = plan(EVERY_MINUTE, at("2025-01-01T11:58:00Z"), NOW)
    assert decided.skip_to is None
    assert [iso(d) for d in decided.fire] == ["2025-01-01T11:59:00.000Z", "2025-01-01T12:00:00.000Z"]
    assert plan(EVERY_MINUTE, at("2025-01-01T11:58:00Z"), NOW, busy=True).fire == []


@pytest.mark.parametrize("recover, fired", [
    ("ALL", ["11:50", "11:51", "11:52", "11:53", "11:54", "11:55", "11:56", "11:57", "11:58", "11:59", "12:00"]),
    ("LAST", ["11:57", "11:58", "11:59", "12:00"]),  # the last missed one, then those not yet missed
    ("NONE", ["11:58", "11:59", "12:00"]),
])
def test_missed_schedules(recover, fired):
    last = at("2025-01-01T11:49:00Z")  # down for ten minutes
    decided = plan(EVERY_MINUTE, last, NOW, recover=recover, missed_after=timedelta(seconds=150))
    assert [d.strftime("%H:%M") for d in decided.fire] == fired


def test_late_maximum_delay_passes_over_older_dates():
    decided = plan(EVERY_MINUTE, at("2025-01-01T11:49:00Z"), NOW, late_maximum_delay=timedelta(minutes=2))
    assert iso(decided.skip_to) == "2025-01-01T11:58:00.000Z"
    assert [d.strftime("%H:%M") for d in decided.fire] == ["11:59", "12:00"]


def test_a_busy_trigger_still_passes_over_what_its_policy_drops():
    decided = plan(EVERY_MINUTE, at("2025-01-01T11:49:00Z"), NOW, recover="NONE", busy=True,
                   missed_after=timedelta(seconds=150))
    assert decided.fire == [] and iso(decided.skip_to) == "2025-01-01T11:57:00.000Z"


def test_backfill_dates_stop_at_the_end_and_never_pass_now():
    cron = Cron("0 * * * *")
    assert [d.strftime("%H") for d in backfill_dates(cron, at("2025-01-01T08:59:59Z"), at("2025-01-01T11:00:00Z"),
                                                      NOW, 10)] == ["09", "10", "11"]
    assert len(backfill_dates(cron, at("2025-01-01T08:59:59Z"), None, NOW, 10)) == 4

"""Schedule triggers through the scheduler's service functions, called here as the consumer
calls them, with the real executor and worker running the executions: backfills (started,
paused, resumed), stopAfter, a running execution holding its trigger back, conditions, and
evaluations racing each other."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import close_old_connections

from orchestrator.models import TERMINAL_VALUES, Execution
from orchestrator.repository import deploy, now
from scheduler import service
from scheduler.dates import Cron, parse_iso
from scheduler.models import ScheduledDate, TriggerState
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HOURLY = """
id: hourly
namespace: {namespace}
inputs:
  - id: who
    type: STRING
    defaults: schedule
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.who }}}}"
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
    timezone: Europe/Paris
    inputs:
      who: regular
"""


@pytest.fixture(autouse=True)
def settled(namespace):
    """The database is emptied after each test: wait for the test's executions to end first, so
    that emptying it never meets the executor still writing them."""
    yield
    wait_for(lambda: not Execution.objects.filter(namespace=namespace).exclude(state__in=TERMINAL_VALUES).exists(),
             120, "the test's executions to end")


def state_of(namespace: str) -> TriggerState:
    return TriggerState.objects.get(namespace=namespace)


def test_a_backfill_replays_past_dates_and_can_be_paused(cluster, namespace):
    deploy(HOURLY.format(namespace=namespace))
    start, end = now() - timedelta(hours=5), now() - timedelta(hours=1)
    call_command("schedule", "backfill", namespace, "hourly", "hourly", "--start", start.isoformat(),
                 "--end", end.isoformat(), "--input", "who=backfill", "--label", "replay=yes")
    backfill = state_of(namespace).backfill
    call_command("schedule", "pause", namespace, "hourly", "hourly")
    assert service.fire(namespace, "hourly", "hourly") == 0
    assert state_of(namespace).backfill["cursor"] == backfill["cursor"]  # paused: nothing moved
    call_command("schedule", "resume", namespace, "hourly", "hourly")

    def finished():
        service.fire(namespace, "hourly", "hourly")  # one date per call: each waits for the last execution
        return state_of(namespace).backfill is None

    wait_for(finished, 90, "the backfill to end", interval=0.2)
    expected = Cron("0 * * * *", zone_name="Europe/Paris").between(start - timedelta(microseconds=1), end, 100)
    fired = list(ScheduledDate.objects.filter(namespace=namespace, origin=f"backfill:{backfill['id']}").order_by("date"))
    assert [key.date for key in fired] == expected and len(expected) >= 4
    executions = Execution.objects.filter(id__in=[key.execution_id for key in fired])
    assert {e.inputs["who"] for e in executions} == {"backfill"}
    assert all({"key": "replay", "value": "yes"} in e.labels for e in executions)
    assert sorted(parse_iso(e.trigger["variables"]["date"]) for e in executions) == expected


def test_stop_after_disables_the_trigger_and_a_running_execution_holds_it_back(cluster, namespace):
    source = f"""
id: failing
namespace: {namespace}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT2S
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    stopAfter: [FAILED]
"""
    from django_celery_beat.models import PeriodicTask

    deploy(source)
    wait_for(lambda: service.fire(namespace, "failing", "tick"), 10, "a first date to fire", interval=0.1)
    first = Execution.objects.get(namespace=namespace)
    wait_for(lambda: state_of(namespace).next_date < now() - timedelta(seconds=1), 10, "later dates to be due")
    assert service.fire(namespace, "failing", "tick") == 0  # the first execution still runs
    assert Execution.objects.filter(namespace=namespace).count() == 1
    wait_for(lambda: Execution.objects.get(pk=first.pk).state == "FAILED", 60, "the execution to fail")
    assert service.fire(namespace, "failing", "tick") == 0
    assert state_of(namespace).disabled
    assert not PeriodicTask.objects.get(name=f"harrier schedule {namespace}.failing tick").enabled
    call_command("schedule", "enable", namespace, "failing", "tick")
    assert not state_of(namespace).disabled and state_of(namespace).last_date > first.start_date


def test_dates_whose_conditions_fail_are_passed_over(cluster, namespace):
    today = now()
    weekday = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")[(today.weekday() + 3) % 7]
    deploy(f"""
id: never-today
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hi
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    conditions:
      - type: io.kestra.plugin.core.condition.DayWeek
        dayOfWeek: {weekday}
""")
    TriggerState.objects.filter(namespace=namespace).update(last_date=today - timedelta(seconds=5))
    service.fire(namespace, "never-today", "tick")
    assert state_of(namespace).last_date >= today.replace(microsecond=0)  # every date handled…
    assert not Execution.objects.filter(namespace=namespace).exists()  # …and none fired


def test_racing_evaluations_fire_each_date_once(cluster, namespace):
    deploy(f"""
id: racing
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hi
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    allowConcurrent: true
""")
    since = now().replace(microsecond=0) - timedelta(seconds=30)
    TriggerState.objects.filter(namespace=namespace).update(last_date=since)
    until = since + timedelta(seconds=30)

    def race():
        try:
            for _ in range(20):
                service.fire(namespace, "racing", "tick")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fired = [key.date for key in ScheduledDate.objects.filter(namespace=namespace, date__lte=until).order_by("date")]
    assert fired == [since + timedelta(seconds=n) for n in range(1, 31)]
    assert Execution.objects.filter(namespace=namespace).count() == ScheduledDate.objects.filter(
        namespace=namespace).count()


def test_deleting_or_disabling_a_flow_follows_into_its_periodic_tasks(namespace):
    from django_celery_beat.models import PeriodicTask

    from orchestrator.repository import delete_flow

    source = HOURLY.format(namespace=namespace)
    deploy(source)
    name = f"harrier schedule {namespace}.hourly hourly"
    assert PeriodicTask.objects.get(name=name).crontab.timezone.key == "Europe/Paris"
    deploy(source + "disabled: true\n")
    assert not PeriodicTask.objects.get(name=name).enabled and not state_of(namespace).fires
    deploy(source)
    assert PeriodicTask.objects.get(name=name).enabled and state_of(namespace).fires
    delete_flow(namespace, "hourly")
    assert not PeriodicTask.objects.filter(name=name).exists()
    assert not TriggerState.objects.filter(namespace=namespace).exists()


def test_the_local_loop_fires_what_is_due(cluster, namespace):
    """`server local` has no beat: its thread runs this step every second."""
    from scheduler import loop

    deploy(HOURLY.format(namespace=namespace))
    TriggerState.objects.filter(namespace=namespace).update(last_date=now() - timedelta(hours=1, minutes=1),
                                                             next_date=now() - timedelta(minutes=1))
    loop.step(last_sync=0.0)
    fired = ScheduledDate.objects.get(namespace=namespace, origin="schedule")
    execution = Execution.objects.get(id=fired.execution_id)
    assert execution.inputs == {"who": "regular"}
    assert execution.trigger["variables"]["date"] == fired.date.strftime("%Y-%m-%dT%H:%M:%S.000Z")

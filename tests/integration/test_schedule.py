"""Schedule triggers through real processes: celery beat with the DatabaseScheduler, the
scheduler's consumer, the executor and a worker. Dates are checked as the keys and executions
the scheduler wrote; nothing sleeps a fixed time, every wait polls with a deadline."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings

from orchestrator.models import TERMINAL_VALUES, Execution, Flow
from orchestrator.repository import deploy, now
from scheduler.dates import Cron, parse_iso
from scheduler.models import ScheduledDate, TriggerState
from tests.harness import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVERY_SECOND = """
id: every-second
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.date }}}}"
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
"""

EVERY_MINUTE = """
id: every-minute-{policy}
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.date }}}}"
triggers:
  - id: minute
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * *"
    allowConcurrent: true
    recoverMissedSchedules: {policy}
"""

SCHEDULER_ENV = {"HARRIER_BEAT_MAX_INTERVAL": "1", "HARRIER_SCHEDULE_SWEEP_SECONDS": "1"}
# Without the sweep, only the triggers' own PeriodicTasks wake them: beat alone drives them.
BEAT_ONLY_ENV = {**SCHEDULER_ENV, "HARRIER_SCHEDULE_SWEEP_SECONDS": "3600"}


def settle(namespace: str) -> None:
    """Wait for the test's executions to end: the database is emptied after each test, which must
    not meet the executor still writing them."""
    wait_for(lambda: not Execution.objects.filter(namespace=namespace).exclude(state__in=TERMINAL_VALUES).exists(),
             120, "the test's executions to end")


@pytest.fixture
def scheduler(cluster, request, namespace):
    cluster.start("scheduler", "scheduler", env=getattr(request, "param", SCHEDULER_ENV))
    cluster.wait_ready(["scheduler"])
    yield cluster
    if "scheduler" in cluster.processes:
        cluster.stop("scheduler")
    settle(namespace)


@pytest.fixture
def second_beat(cluster):
    log = open(ROOT / ".harrier" / "test-beat-2.log", "w")  # noqa: SIM115 (closed below)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "orchestrator", "beat", "--loglevel", "INFO",
         "--scheduler", settings.CELERY_BEAT_SCHEDULER, "--max-interval", "1"],
        env={**cluster.env, **BEAT_ONLY_ENV}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    yield beat
    beat.terminate()
    try:
        beat.wait(20)
    except subprocess.TimeoutExpired:
        beat.kill()
        beat.wait(5)
    log.close()


def keys(namespace: str) -> list:
    return list(ScheduledDate.objects.filter(namespace=namespace).order_by("date"))


def assert_one_execution_per_second(namespace: str, seconds: int = 10) -> None:
    wait_for(lambda: len(keys(namespace)) >= seconds + 1, 90, f"{seconds + 1} scheduled dates")
    fired = keys(namespace)[: seconds + 1]
    dates = [key.date for key in fired]
    assert [later - earlier for earlier, later in zip(dates, dates[1:])] == [timedelta(seconds=1)] * seconds
    executions = Execution.objects.filter(id__in=[key.execution_id for key in fired])
    assert executions.count() == seconds + 1
    triggered = sorted(parse_iso(e.trigger["variables"]["date"]) for e in executions)
    assert triggered == dates  # one execution per date, none twice
    every = Execution.objects.filter(namespace=namespace)
    assert every.count() == len(keys(namespace)) == len({e.trigger["variables"]["date"] for e in every})
    wait_for(lambda: all(e.state == "SUCCESS" for e in Execution.objects.filter(id__in=[k.execution_id for k in fired])),
             60, "the executions to succeed")
    for execution in executions:  # `trigger.date` in expressions, as Kestra spells it
        assert execution.task_runs.get(task_id="hello").outputs == {"value": execution.trigger["variables"]["date"]}


def test_a_trigger_is_a_periodic_task_kept_as_its_yaml_says(scheduler, namespace):
    from django_celery_beat.models import PeriodicTask

    flow, _ = deploy(EVERY_SECOND.format(namespace=namespace))
    task = PeriodicTask.objects.get(name=f"harrier schedule {namespace}.every-second tick")
    assert (task.task, task.queue, task.enabled, task.interval.every) == ("harrier.scheduler.fire", "scheduler", True, 1)
    task.enabled = False  # a hand edit: the next firing puts it back
    task.save()
    wait_for(lambda: PeriodicTask.objects.get(pk=task.pk).enabled, 30, "the sweep to re-enable the PeriodicTask")
    deploy(EVERY_SECOND.format(namespace=namespace).replace("withSeconds: true", "withSeconds: true\n    disabled: true"))
    assert not PeriodicTask.objects.get(pk=task.pk).enabled
    deploy(EVERY_SECOND.format(namespace=namespace))
    assert PeriodicTask.objects.get(pk=task.pk).enabled
    Flow.objects.filter(pk=flow.pk).update(deleted=True)  # deleted behind the scheduler's back
    wait_for(lambda: not PeriodicTask.objects.filter(pk=task.pk).exists(), 90, "the sweep to drop the PeriodicTask")
    assert not TriggerState.objects.filter(namespace=namespace).exists()


@pytest.mark.parametrize("scheduler", [BEAT_ONLY_ENV], indirect=True)
def test_every_second_for_ten_seconds(scheduler, namespace):
    deploy(EVERY_SECOND.format(namespace=namespace))
    assert_one_execution_per_second(namespace)


@pytest.mark.parametrize("scheduler", [BEAT_ONLY_ENV], indirect=True)
def test_every_second_with_two_beats(scheduler, second_beat, namespace):
    deploy(EVERY_SECOND.format(namespace=namespace))
    assert_one_execution_per_second(namespace)


def test_missed_schedules_follow_their_policy(scheduler, namespace):
    scheduler.stop("scheduler")
    for policy in ("ALL", "LAST", "NONE"):
        deploy(EVERY_MINUTE.format(namespace=namespace, policy=policy))
    down_since = now() - timedelta(minutes=10)
    TriggerState.objects.filter(namespace=namespace).update(last_date=down_since)  # down for ten minutes
    scheduler.start("scheduler", "scheduler", env=SCHEDULER_ENV)

    def fired(policy: str) -> list:
        return list(ScheduledDate.objects.filter(namespace=namespace, flow_id=f"every-minute-{policy}").order_by("date"))

    wait_for(lambda: all(fired(policy) for policy in ("ALL", "LAST", "NONE")), 90, "the three triggers to fire")
    cron = Cron("* * * * *")

    def all_missed_fired():
        # A trigger creates its dates' executions one after the other: wait for the last of them.
        for policy, expected in (("ALL", None), ("LAST", 2), ("NONE", 1)):
            first = fired(policy)
            evaluated = min(key.created for key in first)
            if expected is None:
                expected = len(cron.between(down_since, evaluated, 1000))
            if len([key for key in first if key.date <= evaluated]) < expected:
                return False
        return True

    wait_for(all_missed_fired, 60, "every date the restart owes to fire")
    for policy, expected in (("ALL", None), ("LAST", 2), ("NONE", 1)):
        first = fired(policy)
        evaluated = min(key.created for key in first)  # the first evaluation after the restart
        upto_then = [key.date for key in first if key.date <= evaluated]
        if expected is None:
            expected = len(cron.between(down_since, evaluated, 1000))
            assert expected >= 10
            assert upto_then[0] == cron.next_after(down_since)
        assert len(upto_then) == expected, policy
        assert all(later - earlier == timedelta(minutes=1) for earlier, later in zip(upto_then, upto_then[1:]))
        assert upto_then[-1] > evaluated - timedelta(seconds=61)  # the current date fires in every policy
        assert Execution.objects.filter(id__in=[key.execution_id for key in first]).count() == len(first)

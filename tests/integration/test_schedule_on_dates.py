"""ScheduleOnDates through real processes: celery beat with the DatabaseScheduler, the
scheduler's consumer, the executor and a worker. Each listed date fires once, in the trigger's
time zone, and beat stops waking the trigger once its last date is past."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import PeriodicTask

from orchestrator.models import Execution
from orchestrator.repository import deploy, now
from scheduler.dates import iso, parse_iso
from scheduler.models import ScheduledDate, TriggerState
from tests.harness import wait_for
from tests.integration.test_schedule import scheduler  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ON_DATES = """
id: on-dates
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.date }}}} then {{{{ trigger.next ?? 'nothing' }}}}"
triggers:
  - id: dates
    type: io.kestra.plugin.core.trigger.ScheduleOnDates
    timezone: Europe/Paris
    allowConcurrent: true
    dates:
{dates}
"""


def test_each_date_fires_once_in_the_triggers_zone(scheduler, namespace):  # noqa: F811
    paris = ZoneInfo("Europe/Paris")
    base = (now() + timedelta(seconds=4)).replace(microsecond=0)
    wanted = [base - timedelta(hours=1), base, base + timedelta(seconds=1), base + timedelta(seconds=3)]
    # Written as Paris wall-clock times without an offset, except the last one; the first is past.
    written = [d.astimezone(paris).replace(tzinfo=None).isoformat() for d in wanted[:3]] + [iso(wanted[3])]
    deploy(ON_DATES.format(namespace=namespace, dates="\n".join(f'      - "{text}"' for text in written)))
    task = PeriodicTask.objects.get(name=f"harrier schedule {namespace}.on-dates dates")
    assert task.enabled and task.interval is not None

    def fired():
        return list(ScheduledDate.objects.filter(namespace=namespace).order_by("date"))

    wait_for(lambda: len(fired()) >= 3, 60, "the three future dates to fire")
    assert [key.date for key in fired()] == wanted[1:]  # a date before the deploy is not owed
    wait_for(lambda: not PeriodicTask.objects.get(pk=task.pk).enabled, 30, "beat to stop waking the trigger")
    assert len(fired()) == 3 and TriggerState.objects.get(namespace=namespace).next_date is None
    executions = wait_for(
        lambda: (runs := list(Execution.objects.filter(namespace=namespace))) and
        all(e.state == "SUCCESS" for e in runs) and len(runs) == 3 and runs, 60, "the executions to succeed")
    by_date = {parse_iso(e.trigger["variables"]["date"]): e for e in executions}
    assert sorted(by_date) == wanted[1:]
    last = by_date[wanted[3]]
    assert last.task_runs.get(task_id="hello").outputs == {"value": f"{iso(wanted[3])} then nothing"}
    first = by_date[wanted[1]]
    assert first.trigger["variables"]["next"] == iso(wanted[2]) and first.trigger["type"].endswith("ScheduleOnDates")

"""A Flow trigger's `stopAfter` with the real executor and worker; Schedule dates whose inputs
are refused are recorded as skipped and never hold the trigger back."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from orchestrator.models import TERMINAL_VALUES, Execution
from orchestrator.repository import create_execution, deploy, now
from scheduler import actions, service
from scheduler.dates import Cron
from scheduler.models import ScheduledDate, TriggerState
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

UPSTREAM = """
id: upstream
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: up
"""

LISTENER = """
id: listener
namespace: {namespace}
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the listener fails
triggers:
  - id: on-upstream
    type: io.kestra.plugin.core.trigger.Flow
    stopAfter: [FAILED]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {namespace}
        flowId: upstream
"""

REFUSED_INPUTS = """
id: refused
namespace: {namespace}
inputs:
  - id: count
    type: INT
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.count }}}}"
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
    inputs:
      count: not a number
"""


@pytest.fixture(autouse=True)
def settled(namespace):
    yield
    wait_for(lambda: not Execution.objects.filter(namespace=namespace).exclude(state__in=TERMINAL_VALUES).exists(),
             120, "the test's executions to end")


def ended(execution_id: str) -> Execution:
    return wait_for(lambda: (e := Execution.objects.get(id=execution_id)).state in TERMINAL_VALUES and e, 60,
                    f"execution {execution_id} to end")


def listeners(namespace: str) -> list[Execution]:
    return list(Execution.objects.filter(namespace=namespace, flow_id="listener").order_by("start_date"))


def test_a_flow_trigger_stops_after_its_execution_fails_and_keeps_its_state(cluster, namespace):
    deploy(UPSTREAM.format(namespace=namespace))
    deploy(LISTENER.format(namespace=namespace))
    create_execution(namespace, "upstream")
    wait_for(lambda: listeners(namespace), 60, "the listener to start")
    failed = ended(listeners(namespace)[0].id)
    assert failed.state == "FAILED"
    stopped = TriggerState.objects.get(namespace=namespace, flow_id="listener", trigger_id="on-upstream")
    assert stopped.disabled and stopped.execution_id == failed.id and stopped.kind == "flow"

    second = create_execution(namespace, "upstream")
    ended(second.id)  # Flow triggers fire in the transaction that ends the upstream
    assert len(listeners(namespace)) == 1

    deploy(LISTENER.format(namespace=namespace) + "\ndescription: redeployed\n")
    assert TriggerState.objects.get(pk=stopped.pk).disabled  # a deploy keeps the state: stopped it stays

    actions.set_disabled(namespace, "listener", "on-upstream", False)
    third = create_execution(namespace, "upstream")
    wait_for(lambda: len(listeners(namespace)) == 2, 60, "the listener to start again")
    assert listeners(namespace)[1].trigger["variables"]["executionId"] == third.id


def test_a_listener_that_succeeds_is_not_stopped(cluster, namespace):
    deploy(UPSTREAM.format(namespace=namespace))
    deploy(LISTENER.format(namespace=namespace).replace("stopAfter: [FAILED]", "stopAfter: [SUCCESS]"))
    create_execution(namespace, "upstream")
    wait_for(lambda: listeners(namespace), 60, "the listener to start")
    assert ended(listeners(namespace)[0].id).state == "FAILED"
    assert not TriggerState.objects.filter(namespace=namespace, flow_id="listener", disabled=True).exists()


def test_dates_whose_inputs_are_refused_are_skipped_on_record(namespace, caplog):
    deploy(REFUSED_INPUTS.format(namespace=namespace))
    hourly = Cron("0 * * * *")
    since = now() - timedelta(hours=3, minutes=30)
    TriggerState.objects.filter(namespace=namespace).update(last_date=since)  # three dates are owed
    owed = hourly.between(since, now(), 10)

    with caplog.at_level(logging.WARNING, logger="harrier.scheduler"):
        assert service.fire(namespace, "refused", "hourly") == 0
    skipped = list(ScheduledDate.objects.filter(namespace=namespace, origin="schedule").order_by("date"))
    assert [key.date for key in skipped] == owed and all(key.execution_id is None for key in skipped)
    assert all("input `count`" in key.skipped for key in skipped)
    assert sum("skips" in r.getMessage() and "input `count`" in r.getMessage() for r in caplog.records) == len(owed)
    state = TriggerState.objects.get(namespace=namespace)
    assert state.last_date == owed[-1] and state.next_date > now()  # the trigger went on, nothing is retried
    assert service.fire(namespace, "refused", "hourly") == 0
    assert ScheduledDate.objects.filter(namespace=namespace).count() == len(owed)
    assert not Execution.objects.filter(namespace=namespace).exists()

    # A backfill with refused inputs runs to its end too, each date skipped on record.
    actions.start_backfill(namespace, "refused", "hourly", start=now() - timedelta(hours=2))
    wait_for(lambda: service.fire(namespace, "refused", "hourly") == 0
             and TriggerState.objects.get(namespace=namespace).backfill is None, 10, "the backfill to end")
    replayed = ScheduledDate.objects.filter(namespace=namespace, origin__startswith="backfill:")
    assert replayed.count() == 2 and all(key.skipped and key.execution_id is None for key in replayed)


FAILING_SCHEDULE = """
id: failing
namespace: {namespace}
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    stopAfter: [FAILED]
"""


def test_a_schedule_stops_as_soon_as_its_execution_fails(cluster, namespace):
    from django_celery_beat.models import PeriodicTask

    deploy(FAILING_SCHEDULE.format(namespace=namespace))
    wait_for(lambda: service.fire(namespace, "failing", "tick"), 10, "a first date to fire", interval=0.1)
    failed = ended(Execution.objects.get(namespace=namespace).id)
    assert failed.state == "FAILED"
    # No evaluation since: the executor step that failed the execution switched the trigger off.
    stopped = TriggerState.objects.get(namespace=namespace)
    assert stopped.disabled and stopped.execution_id == failed.id
    assert not PeriodicTask.objects.get(name=f"harrier schedule {namespace}.failing tick").enabled

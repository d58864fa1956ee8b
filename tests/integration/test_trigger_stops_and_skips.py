"""A Flow trigger's `stopAfter` with the real executor and worker; Schedule dates whose inputs
are refused get an execution FAILED at once, as in Kestra, and never hold the trigger back; Flow
triggers on FAILED fire for executions failed at their creation."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from orchestrator.encryption import is_encrypted
from orchestrator.models import TERMINAL_VALUES, Execution, LogEntry
from orchestrator.repository import create_execution, deploy, now
from scheduler import actions, service
from scheduler.dates import Cron, iso, parse_iso
from scheduler.models import ScheduledDate, TriggerState
from tests.harness import wait_for
from tests.integration.test_schedule import scheduler  # noqa: F401 (the fixture)

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
labels:
  team: data
inputs:
  - id: count
    type: INT
  - id: region
    type: STRING
  - id: token
    type: SECRET
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.count }}}}"
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
    labels:
      origin: schedule
    inputs:
      count: not a number
      region: "{{{{ flow.id }}}}-eu"
      token: hunter2-in-clear
"""

REFUSED_ON_DATES = """
id: refused-on-dates
namespace: {namespace}
inputs:
  - id: count
    type: INT
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.count }}}}"
triggers:
  - id: twice
    type: io.kestra.plugin.core.trigger.ScheduleOnDates
    dates: [{dates}]
    inputs:
      count: "{{{{ trigger.nowhere.count }}}}"
"""

ALERT = """
id: alert
namespace: {namespace}
tasks:
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.executionId }}}} {{{{ trigger.state }}}}"
triggers:
  - id: on-failure
    type: io.kestra.plugin.core.trigger.Flow
    states: [FAILED]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {namespace}
        flowId: {upstream}
"""

CHECKED = """
id: checked
namespace: {namespace}
inputs:
  - id: size
    type: INT
checks:
  - condition: "{{{{ inputs.size < 10 }}}}"
    message: size too large
    behavior: FAIL_EXECUTION
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.size }}}}"
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


def test_dates_whose_inputs_are_refused_fail_at_once_and_the_trigger_goes_on(namespace, caplog):
    deploy(REFUSED_INPUTS.format(namespace=namespace))
    hourly = Cron("0 * * * *")
    since = now() - timedelta(hours=3, minutes=30)
    TriggerState.objects.filter(namespace=namespace).update(last_date=since)  # three dates are owed
    owed = hourly.between(since, now(), 10)

    with caplog.at_level(logging.WARNING, logger="harrier.scheduler"):
        assert service.fire(namespace, "refused", "hourly") == len(owed)  # one ended at once holds nothing back
    keys = list(ScheduledDate.objects.filter(namespace=namespace, origin="schedule").order_by("date"))
    assert [key.date for key in keys] == owed
    executions = {e.id: e for e in Execution.objects.filter(namespace=namespace)}
    assert sorted(executions) == sorted(key.execution_id for key in keys)
    for key in keys:
        failed = executions[key.execution_id]
        assert failed.state == "FAILED" and [h["state"] for h in failed.state_history] == ["CREATED", "FAILED"]
        assert failed.end_date is not None and not failed.task_runs.exists()
        assert failed.trigger["id"] == "hourly" and parse_iso(failed.trigger["variables"]["date"]) == key.date
        assert {"key": "team", "value": "data"} in failed.labels
        assert {"key": "origin", "value": "schedule"} in failed.labels
        # What was read of the inputs is kept: the refused one is not, the SECRET only sealed.
        assert failed.inputs["region"] == "refused-eu" and "count" not in failed.inputs
        assert is_encrypted(failed.inputs["token"])
        [line] = LogEntry.objects.filter(execution_id=failed.id)
        assert line.level == "ERROR" and "hourly" in line.message and iso(key.date) in line.message
        assert "input `count`: 'not a number' is not a whole number" in line.message
    stored = json.dumps(list(Execution.objects.filter(namespace=namespace).values("inputs", "trigger", "labels")))
    stored += " ".join(LogEntry.objects.filter(namespace=namespace).values_list("message", flat=True))
    assert "hunter2" not in stored
    assert sum("input `count`" in r.getMessage() for r in caplog.records) == len(owed)
    state = TriggerState.objects.get(namespace=namespace)
    assert state.last_date == owed[-1] and state.next_date > now() and state.execution_id == keys[-1].execution_id

    # A second beat, or the same dates reached again, create nothing more.
    assert service.fire(namespace, "refused", "hourly") == 0
    TriggerState.objects.filter(namespace=namespace).update(last_date=since)
    assert service.fire(namespace, "refused", "hourly") == 0
    assert Execution.objects.filter(namespace=namespace).count() == len(owed)

    # A backfill with refused inputs runs to its end too, a FAILED execution for each date.
    actions.start_backfill(namespace, "refused", "hourly", start=now() - timedelta(hours=2))
    wait_for(lambda: service.fire(namespace, "refused", "hourly") == 0
             and TriggerState.objects.get(namespace=namespace).backfill is None, 10, "the backfill to end")
    replayed = ScheduledDate.objects.filter(namespace=namespace, origin__startswith="backfill:")
    assert replayed.count() == 2
    assert {Execution.objects.get(id=key.execution_id).state for key in replayed} == {"FAILED"}


def test_a_refused_date_stops_a_schedule_with_stop_after_failed(namespace):
    from django_celery_beat.models import PeriodicTask

    source = REFUSED_INPUTS.format(namespace=namespace)
    deploy(source.replace('cron: "0 * * * *"', 'cron: "0 * * * *"\n    stopAfter: [FAILED]'))
    TriggerState.objects.filter(namespace=namespace).update(last_date=now() - timedelta(hours=3, minutes=30))

    assert service.fire(namespace, "refused", "hourly") == 1  # the dates after it wait: it stopped the trigger
    failed = Execution.objects.get(namespace=namespace)
    stopped = TriggerState.objects.get(namespace=namespace)
    assert failed.state == "FAILED" and stopped.disabled and stopped.execution_id == failed.id
    assert not PeriodicTask.objects.get(name=f"harrier schedule {namespace}.refused hourly").enabled
    assert service.fire(namespace, "refused", "hourly") == 0
    assert Execution.objects.filter(namespace=namespace).count() == 1


def test_a_flow_trigger_on_failed_fires_for_dates_whose_inputs_cannot_be_rendered(
        scheduler, namespace, django_user_model):  # noqa: F811
    deploy(ALERT.format(namespace=namespace, upstream="refused-on-dates"))
    first = (now() + timedelta(seconds=3)).replace(microsecond=0)
    dates = [first, first + timedelta(seconds=1)]
    deploy(REFUSED_ON_DATES.format(namespace=namespace, dates=", ".join(f'"{iso(d)}"' for d in dates)))

    def alerts() -> list[Execution]:
        return list(Execution.objects.filter(namespace=namespace, flow_id="alert", state__in=TERMINAL_VALUES))

    wait_for(lambda: len(alerts()) == 2, 60, "an alert for each date")
    keys = list(ScheduledDate.objects.filter(namespace=namespace).order_by("date"))
    assert [key.date for key in keys] == dates
    failed = [Execution.objects.get(id=key.execution_id) for key in keys]
    assert [e.state for e in failed] == ["FAILED", "FAILED"]
    assert {(a.state, a.trigger["variables"]["executionId"], a.trigger["variables"]["state"]) for a in alerts()} == {
        ("SUCCESS", e.id, "FAILED") for e in failed}
    assert TriggerState.objects.get(namespace=namespace, trigger_id="twice").next_date is None  # it went on to the end

    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("ops", password="ops-password-1", is_staff=True))
    logs = client.get(f"/api/v1/logs/{failed[0].id}").json()
    assert [line["level"] for line in logs] == ["ERROR"]
    assert "input `count`: cannot be rendered" in logs[0]["message"] and "nowhere" in logs[0]["message"]
    assert Execution.objects.filter(namespace=namespace).count() == 4  # nothing fired twice


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


def test_a_flow_trigger_on_failed_fires_for_an_execution_its_checks_fail(cluster, namespace):
    deploy(ALERT.format(namespace=namespace, upstream="checked"))
    deploy(CHECKED.format(namespace=namespace))
    failed = create_execution(namespace, "checked", inputs={"size": 12})
    assert failed.state == "FAILED"
    alert = wait_for(lambda: Execution.objects.filter(namespace=namespace, flow_id="alert").first(), 30, "the alert")
    assert alert.trigger["variables"]["executionId"] == failed.id and ended(alert.id).state == "SUCCESS"
    assert list(LogEntry.objects.filter(execution_id=failed.id).values_list("level", "message")) == [
        ("ERROR", "Check failed: size too large")]


ECHO = """
id: {flow}
namespace: {namespace}
checks:
  - condition: "{{{{ false }}}}"
    message: never starts
    behavior: FAIL_EXECUTION
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: unreachable
triggers:
  - id: on-failure
    type: io.kestra.plugin.core.trigger.Flow
    states: [FAILED]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {namespace}
        flowId: {other}
"""


def test_flows_that_fail_at_creation_and_trigger_each_other_stop_after_a_bounded_chain(namespace):
    from orchestrator.repository import MAX_FAILED_AT_CREATION_CHAIN

    deploy(ECHO.format(namespace=namespace, flow="ping", other="pong"))
    deploy(ECHO.format(namespace=namespace, flow="pong", other="ping"))
    first = create_execution(namespace, "ping")
    executions = Execution.objects.filter(namespace=namespace)
    assert first.state == "FAILED" and executions.count() == MAX_FAILED_AT_CREATION_CHAIN + 1
    assert set(executions.values_list("state", flat=True)) == {"FAILED"}
    stopped = LogEntry.objects.filter(namespace=namespace, message__startswith="Flow triggers not fired")
    assert stopped.count() == 1

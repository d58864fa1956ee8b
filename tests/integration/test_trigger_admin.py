"""The trigger states' admin actions, through Django's test client as a staff user: each one
changes what the scheduler then does (its service called as the consumer calls it, executions
run by the real executor and worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django_celery_beat.models import PeriodicTask

from orchestrator.models import TERMINAL_VALUES, Execution
from orchestrator.repository import deploy, now
from scheduler import service
from scheduler.models import ScheduledDate, TriggerState
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHANGELIST = "/admin/scheduler/triggerstate/"

TICKING = """
id: ticking
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
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
"""


@pytest.fixture
def admin_client(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-password-1")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ticking(cluster, namespace):
    deploy(TICKING.format(namespace=namespace))
    yield TriggerState.objects.get(namespace=namespace)
    wait_for(lambda: not Execution.objects.filter(namespace=namespace).exclude(state__in=TERMINAL_VALUES).exists(),
             120, "the test's executions to end")


def act(client: Client, action: str, state: TriggerState, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [state.pk], **extra}, follow=True)


def reload(state: TriggerState) -> TriggerState:
    return TriggerState.objects.get(pk=state.pk)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_admin_lists_trigger_states_beside_beats_periodic_tasks(admin_client, ticking):
    listing = admin_client.get(CHANGELIST)
    assert listing.status_code == 200 and ticking.flow_id in listing.content.decode()
    assert admin_client.get("/admin/django_celery_beat/periodictask/").status_code == 200
    assert admin_client.get("/admin/scheduler/scheduleddate/").status_code == 200


def test_disable_and_enable_change_what_the_scheduler_fires(admin_client, ticking):
    namespace = ticking.namespace
    response = act(admin_client, "disable", ticking)
    assert "Disabled. (1)" in messages_of(response)
    assert reload(ticking).disabled
    assert not PeriodicTask.objects.get(name=f"harrier schedule {namespace}.ticking tick").enabled
    wait_for(lambda: reload(ticking).next_date and reload(ticking).next_date < now(), 10, "a date to be due")
    assert service.fire(namespace, "ticking", "tick") == 0 and not Execution.objects.filter(namespace=namespace).exists()

    act(admin_client, "enable", ticking)
    assert not reload(ticking).disabled
    assert PeriodicTask.objects.get(name=f"harrier schedule {namespace}.ticking tick").enabled
    wait_for(lambda: service.fire(namespace, "ticking", "tick"), 10, "the trigger to fire again", interval=0.1)
    assert Execution.objects.filter(namespace=namespace).count() == 1


def test_unlock_and_restart_free_a_trigger_a_crashed_evaluation_held(admin_client, ticking):
    namespace = ticking.namespace
    TriggerState.objects.filter(pk=ticking.pk).update(locked_until=now() + timedelta(minutes=5), locked_by="crashed")
    wait_for(lambda: reload(ticking).next_date < now(), 10, "a date to be due")
    assert service.fire(namespace, "ticking", "tick") == 0  # held by the lock
    assert "Unlocked. (1)" in messages_of(act(admin_client, "unlock", ticking))
    again = act(admin_client, "unlock", ticking)
    assert any("is not locked" in m for m in messages_of(again))
    wait_for(lambda: service.fire(namespace, "ticking", "tick"), 10, "the trigger to fire", interval=0.1)

    TriggerState.objects.filter(pk=ticking.pk).update(locked_until=now() + timedelta(minutes=5))
    assert "Restarted. (1)" in messages_of(act(admin_client, "restart", ticking))
    assert reload(ticking).locked_until is None and reload(ticking).execution_id is None


def test_a_backfill_started_paused_resumed_and_deleted_in_the_admin(admin_client, ticking):
    namespace = ticking.namespace
    form = act(admin_client, "start_backfill", ticking)
    assert form.status_code == 200 and b"Start the backfill" in form.content

    refused = act(admin_client, "start_backfill", ticking, apply="1", start="last week")
    assert any("is not an ISO-8601 date" in m for m in messages_of(refused))
    assert reload(ticking).backfill is None
    bad_json = act(admin_client, "start_backfill", ticking, apply="1", start="2025-01-01T00:00:00Z", inputs="{x")
    assert b"not JSON" in bad_json.content and reload(ticking).backfill is None

    start = (now() - timedelta(seconds=30)).replace(microsecond=0)
    end = start + timedelta(seconds=2)
    started = act(admin_client, "start_backfill", ticking, apply="1", start=start.isoformat(), end=end.isoformat(),
                  inputs='{"who": "admin"}', labels='{"origin": "admin"}')
    assert "Backfill started. (1)" in messages_of(started)
    backfill = reload(ticking).backfill
    assert backfill["inputs"] == {"who": "admin"} and not backfill["paused"]
    twice = act(admin_client, "start_backfill", ticking, apply="1", start=start.isoformat())
    assert any("already has a backfill" in m for m in messages_of(twice))

    act(admin_client, "pause_backfill", ticking)
    assert reload(ticking).backfill["paused"]
    # The regular dates are put an hour ahead: only the backfill may fire below.
    TriggerState.objects.filter(pk=ticking.pk).update(last_date=now() + timedelta(hours=1))
    assert service.fire(namespace, "ticking", "tick") == 0  # paused: nothing replayed
    act(admin_client, "resume_backfill", ticking)

    def replayed():
        service.fire(namespace, "ticking", "tick")
        return reload(ticking).backfill is None

    wait_for(replayed, 60, "the backfill to end", interval=0.2)
    keys = ScheduledDate.objects.filter(namespace=namespace, origin=f"backfill:{backfill['id']}").order_by("date")
    assert [key.date for key in keys] == [start, start + timedelta(seconds=1), end]
    executions = Execution.objects.filter(id__in=[key.execution_id for key in keys])
    assert {e.inputs["who"] for e in executions} == {"admin"}
    assert all({"key": "origin", "value": "admin"} in e.labels for e in executions)

    act(admin_client, "start_backfill", ticking, apply="1", start=start.isoformat())
    assert "Backfill deleted. (1)" in messages_of(act(admin_client, "delete_backfill", ticking))
    assert reload(ticking).backfill is None


def test_the_admin_refuses_a_user_who_is_not_staff(django_user_model, ticking):
    user = django_user_model.objects.create_user("viewer", password="viewer-password-1")
    client = Client()
    client.force_login(user)
    response = client.post(CHANGELIST, {"action": "disable", "_selected_action": [ticking.pk]})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not reload(ticking).disabled

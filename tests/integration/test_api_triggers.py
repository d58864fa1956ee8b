"""Kestra's /api/v1/triggers over HTTP: every endpoint with an anonymous client (401), a reader
(403 for changes) and a staff user; backfills started over HTTP are run by the scheduler's
service and the real executor and worker processes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from orchestrator.models import TERMINAL_VALUES, Execution
from orchestrator.repository import deploy, now
from scheduler import service
from scheduler.dates import iso
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
    stopAfter: [FAILED]
  - id: after-upstream
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {namespace}
        flowId: upstream
"""

DAILY = """
id: daily
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
"""

UPSTREAM = """
id: upstream
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: up
"""

KEY = "/api/v1/triggers/ns/f/t"
ENDPOINTS = [
    ("get", "/api/v1/triggers/search"), ("get", "/api/v1/triggers/ns/f"), ("put", "/api/v1/triggers"),
    ("post", f"{KEY}/unlock"), ("post", f"{KEY}/restart"),
    ("put", "/api/v1/triggers/backfill/pause"), ("put", "/api/v1/triggers/backfill/unpause"),
    ("post", "/api/v1/triggers/backfill/delete"),
    *[("post", f"/api/v1/triggers/{what}/{by}") for what in ("backfill/pause", "backfill/unpause", "backfill/delete",
                                                            "set-disabled", "unlock")
      for by in ("by-triggers", "by-query")],
]
CHANGES = [(method, path) for method, path in ENDPOINTS if method != "get"]


@pytest.fixture
def flows(namespace):
    for source in (HOURLY, DAILY, UPSTREAM):
        deploy(source.format(namespace=namespace))
    return namespace


@pytest.fixture
def settled(namespace):
    """Wait for the test's executions to end before the tables are emptied."""
    yield
    wait_for(lambda: not Execution.objects.filter(namespace=namespace).exclude(state__in=TERMINAL_VALUES).exists(),
             120, "the test's executions to end")


def key(namespace: str, flow_id: str = "hourly", trigger_id: str = "hourly") -> dict:
    return {"namespace": namespace, "flowId": flow_id, "triggerId": trigger_id}


def state(namespace: str, flow_id: str = "hourly", trigger_id: str = "hourly") -> TriggerState:
    return TriggerState.objects.get(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id)


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_every_trigger_endpoint_refuses_an_anonymous_client(method, path):
    response = getattr(APIClient(), method)(path, {}, format="json")
    assert response.status_code == 401
    assert response.json()["message"]


@pytest.mark.parametrize("method, path", CHANGES)
def test_a_user_without_a_write_grant_may_not_change_triggers(reader, method, path):
    one = {"namespace": "ns", "flowId": "f", "triggerId": "t"}
    body = [one] if path.endswith("by-triggers") and "set-disabled" not in path else \
        {"triggers": [one], "disabled": True} if "set-disabled/by-triggers" in path else {**one, "disabled": True}
    response = getattr(reader, method)(f"{path}?namespace=ns", body, format="json")
    assert response.status_code == 403
    assert "may not change flows or namespace data in namespace 'ns'" in response.json()["message"]


def test_search_answers_each_trigger_with_its_declaration_and_state(staff, flows):
    namespace, reader = flows, staff
    body = reader.get("/api/v1/triggers/search", {"namespace": namespace}).json()
    assert body["total"] == 2  # the two Schedule triggers; the Flow trigger has no state yet
    first = body["results"][0]
    assert first["abstractTrigger"]["type"] == "io.kestra.plugin.core.trigger.Schedule"
    assert first["abstractTrigger"]["cron"] == "0 3 * * *"
    context = first["triggerContext"]
    assert context["namespace"] == namespace and context["flowId"] == "daily" and context["triggerId"] == "daily"
    assert context["disabled"] is False and context["backfill"] is None
    assert context["nextExecutionDate"].endswith(":00.000Z") and context["date"]

    by_flow = reader.get("/api/v1/triggers/search", {"namespace": namespace, "flowId": "hourly"}).json()
    assert [r["triggerContext"]["triggerId"] for r in by_flow["results"]] == ["hourly"]
    assert by_flow["results"][0]["triggerContext"]["stopAfter"] == ["FAILED"]
    found = reader.get("/api/v1/triggers/search", {"namespace": namespace, "q": "dail"}).json()
    assert [r["triggerContext"]["flowId"] for r in found["results"]] == ["daily"]
    ordered = reader.get("/api/v1/triggers/search", {"namespace": namespace, "sort": "flowId:desc"}).json()
    assert [r["triggerContext"]["flowId"] for r in ordered["results"]] == ["hourly", "daily"]
    paged = reader.get("/api/v1/triggers/search", {"namespace": namespace, "size": 1, "page": 2}).json()
    assert paged["total"] == 2 and [r["triggerContext"]["flowId"] for r in paged["results"]] == ["hourly"]


@pytest.mark.parametrize("params, path", [({"sort": "cron:asc"}, "sort"), ({"size": "0"}, "size"),
                                          ({"page": "x"}, "page")])
def test_search_refuses_bad_parameters_by_name(reader, params, path):  # reader: any authenticated user
    response = reader.get("/api/v1/triggers/search", params)
    assert response.status_code == 400
    assert response.json()["details"][0]["path"] == path


def test_a_reader_sees_only_the_namespaces_granted_to_them(reader, flows):
    assert reader.get("/api/v1/triggers/search", {"namespace": flows}).json()["total"] == 0
    refused = reader.get(f"/api/v1/triggers/{flows}/hourly")
    assert refused.status_code == 403 and "may not read" in refused.json()["message"]


def test_a_flows_triggers_include_those_without_a_state(staff, flows):
    reader = staff
    body = reader.get(f"/api/v1/triggers/{flows}/hourly").json()
    assert body["total"] == 2
    schedule, listener = body["results"]
    assert schedule["triggerContext"]["triggerId"] == "hourly"
    assert listener["abstractTrigger"]["id"] == "after-upstream" and listener["triggerContext"] is None
    missing = reader.get(f"/api/v1/triggers/{flows}/nope")
    assert missing.status_code == 404 and "does not exist" in missing.json()["message"]


def test_disabling_and_enabling_a_schedule_trigger_follows_into_beat(staff, flows):
    namespace = flows
    task = f"harrier schedule {namespace}.hourly hourly"
    response = staff.put("/api/v1/triggers", {**key(namespace), "disabled": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["disabled"] is True
    assert state(namespace).disabled and not PeriodicTask.objects.get(name=task).enabled

    before = now()
    TriggerState.objects.filter(namespace=namespace, flow_id="hourly").update(last_date=before - timedelta(hours=5))
    response = staff.put("/api/v1/triggers", {**key(namespace), "disabled": False}, format="json")
    assert response.json()["disabled"] is False
    assert PeriodicTask.objects.get(name=task).enabled
    assert state(namespace).last_date >= before  # switched on, it fires from now: the hours it was off are not owed


def test_update_refuses_unknown_triggers_and_bad_bodies(staff, flows):
    unknown = staff.put("/api/v1/triggers", {**key(flows, trigger_id="nope"), "disabled": True}, format="json")
    assert unknown.status_code == 404 and "nope" in unknown.json()["message"]
    missing = staff.put("/api/v1/triggers", {"namespace": flows, "disabled": True}, format="json")
    assert missing.status_code == 400
    assert {d["path"] for d in missing.json()["details"]} == {"flowId", "triggerId"}
    nothing = staff.put("/api/v1/triggers", key(flows), format="json")
    assert nothing.status_code == 400 and "disabled" in nothing.json()["message"]
    wrong = staff.put("/api/v1/triggers", {**key(flows), "disabled": "maybe"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["details"][0]["path"] == "disabled"
    not_json = staff.put("/api/v1/triggers", "[1,", content_type="application/json")
    assert not_json.status_code == 400
    form = staff.put("/api/v1/triggers", "namespace=a&flowId=b&triggerId=c",
                     content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and form.json()["message"]


def test_a_flow_trigger_can_be_switched_off_over_http(staff, flows, cluster, settled):
    from orchestrator.repository import create_execution

    namespace = flows
    response = staff.put("/api/v1/triggers", {**key(namespace, "hourly", "after-upstream"), "disabled": True},
                         format="json")
    assert response.status_code == 200, response.content
    assert state(namespace, "hourly", "after-upstream").disabled
    listed = staff.get(f"/api/v1/triggers/{namespace}/hourly").json()["results"][1]
    assert listed["triggerContext"]["disabled"] is True
    upstream = create_execution(namespace, "upstream")
    wait_for(lambda: Execution.objects.get(id=upstream.id).state in TERMINAL_VALUES, 60, "the upstream to end")
    # Flow triggers fire in the transaction that ends the upstream: none started.
    assert not Execution.objects.filter(namespace=namespace, flow_id="hourly").exists()

    staff.put("/api/v1/triggers", {**key(namespace, "hourly", "after-upstream"), "disabled": False}, format="json")
    again = create_execution(namespace, "upstream")
    wait_for(lambda: Execution.objects.filter(namespace=namespace, flow_id="hourly").exists(), 60,
             "the listener to start")
    started = Execution.objects.get(namespace=namespace, flow_id="hourly")
    assert started.trigger["variables"]["executionId"] == again.id


def test_a_backfill_over_http_runs_pauses_and_cannot_be_started_twice(staff, flows, cluster, settled):
    namespace = flows
    start, end = now() - timedelta(hours=4), now() - timedelta(hours=1)
    body = {**key(namespace), "backfill": {"start": iso(start), "end": iso(end), "inputs": {"who": "backfill"},
                                           "labels": {"replay": "yes"}}}
    response = staff.put("/api/v1/triggers", body, format="json")
    assert response.status_code == 200, response.content
    backfill = response.json()["backfill"]
    assert backfill["paused"] is False and backfill["inputs"] == {"who": "backfill"}
    assert backfill["currentDate"] > iso(start)[:13]  # the first whole hour from the start

    twice = staff.put("/api/v1/triggers", body, format="json")
    assert twice.status_code == 409 and "already has a backfill" in twice.json()["message"]

    paused = staff.put("/api/v1/triggers/backfill/pause", key(namespace), format="json")
    assert paused.status_code == 200 and paused.json()["backfill"]["paused"] is True
    assert service.fire(namespace, "hourly", "hourly") == 0  # a paused backfill starts nothing
    resumed = staff.put("/api/v1/triggers/backfill/unpause", key(namespace), format="json")
    assert resumed.json()["backfill"]["paused"] is False

    def done():
        service.fire(namespace, "hourly", "hourly")  # one date per call: each waits for the last execution
        return state(namespace).backfill is None

    wait_for(done, 90, "the backfill to end", interval=0.2)
    replayed = Execution.objects.filter(namespace=namespace, flow_id="hourly")
    assert replayed.count() == 3 and {e.inputs["who"] for e in replayed} == {"backfill"}
    assert all({"key": "replay", "value": "yes"} in e.labels for e in replayed)
    for path, method in (("pause", "put"), ("unpause", "put"), ("delete", "post")):
        response = getattr(staff, method)(f"/api/v1/triggers/backfill/{path}", key(namespace), format="json")
        assert response.status_code == 409 and "has no backfill" in response.json()["message"]


def test_a_backfill_can_be_deleted_and_bad_ones_are_refused_by_property(staff, flows):
    namespace = flows
    start = iso(now() - timedelta(days=2))
    staff.put("/api/v1/triggers", {**key(namespace), "backfill": {"start": start}}, format="json")
    deleted = staff.post("/api/v1/triggers/backfill/delete", key(namespace), format="json")
    assert deleted.status_code == 200 and deleted.json()["backfill"] is None
    assert not ScheduledDate.objects.filter(namespace=namespace).exists()

    for backfill, path in (({"start": "yesterday"}, "backfill.start"), ({}, "backfill.start"),
                           ({"start": start, "end": iso(now() - timedelta(days=3))}, "backfill.end")):
        response = staff.put("/api/v1/triggers", {**key(namespace), "backfill": backfill}, format="json")
        assert response.status_code == 400, backfill
        assert response.json()["details"][0]["path"] == path
    flow_trigger = staff.put("/api/v1/triggers", {**key(namespace, "hourly", "after-upstream"),
                                                  "backfill": {"start": start}}, format="json")
    assert flow_trigger.status_code == 400 and "not a Schedule trigger" in flow_trigger.json()["message"]
    assert state(namespace).backfill is None
    unknown = staff.put("/api/v1/triggers/backfill/pause", key(namespace, trigger_id="nope"), format="json")
    assert unknown.status_code == 404


def test_unlock_releases_a_held_lock_and_restart_forgets_the_last_execution(staff, flows):
    namespace = flows
    TriggerState.objects.filter(namespace=namespace, flow_id="hourly").update(
        locked_until=now() + timedelta(minutes=5), locked_by="crashed", execution_id="gone")
    held = staff.get("/api/v1/triggers/search", {"namespace": namespace, "flowId": "hourly"}).json()
    assert held["results"][0]["triggerContext"]["lockedUntil"]
    unlocked = staff.post(f"/api/v1/triggers/{namespace}/hourly/hourly/unlock")
    assert unlocked.status_code == 200 and unlocked.json()["lockedUntil"] is None
    assert state(namespace).locked_by == ""
    again = staff.post(f"/api/v1/triggers/{namespace}/hourly/hourly/unlock")
    assert again.status_code == 409 and "not locked" in again.json()["message"]

    restarted = staff.post(f"/api/v1/triggers/{namespace}/hourly/hourly/restart")
    assert restarted.status_code == 200 and restarted.json()["executionId"] is None
    for word in ("unlock", "restart"):
        assert staff.post(f"/api/v1/triggers/{namespace}/hourly/nope/{word}").status_code == 404


def test_bulk_actions_by_triggers_and_by_query_count_what_changed(staff, flows):
    namespace = flows
    both = [key(namespace), key(namespace, "daily", "daily"), key(namespace, "daily", "nope")]
    response = staff.post("/api/v1/triggers/set-disabled/by-triggers", {"triggers": both, "disabled": True},
                          format="json")
    assert response.status_code == 200 and response.json() == {"count": 2}
    assert TriggerState.objects.filter(namespace=namespace, disabled=True).count() == 2
    enabled = staff.post(f"/api/v1/triggers/set-disabled/by-query?namespace={namespace}&disabled=false")
    assert enabled.json() == {"count": 2}
    assert not TriggerState.objects.filter(namespace=namespace, disabled=True).exists()
    bad = staff.post(f"/api/v1/triggers/set-disabled/by-query?namespace={namespace}&disabled=perhaps")
    assert bad.status_code == 400 and bad.json()["details"][0]["path"] == "disabled"
    empty = staff.post("/api/v1/triggers/set-disabled/by-triggers", {"triggers": [], "disabled": True}, format="json")
    assert empty.status_code == 400 and empty.json()["details"][0]["path"] == "triggers"

    start = iso(now() - timedelta(days=1))
    staff.put("/api/v1/triggers", {**key(namespace, "daily", "daily"), "backfill": {"start": start}}, format="json")
    paused = staff.post("/api/v1/triggers/backfill/pause/by-triggers", both, format="json")
    assert paused.json() == {"count": 1}  # only one has a backfill
    assert state(namespace, "daily", "daily").backfill["paused"] is True
    resumed = staff.post(f"/api/v1/triggers/backfill/unpause/by-query?namespace={namespace}&q=daily")
    assert resumed.json() == {"count": 1} and state(namespace, "daily", "daily").backfill["paused"] is False
    deleted = staff.post(f"/api/v1/triggers/backfill/delete/by-query?namespace={namespace}")
    assert deleted.json() == {"count": 1} and state(namespace, "daily", "daily").backfill is None
    TriggerState.objects.filter(namespace=namespace).update(locked_until=now() + timedelta(minutes=1))
    assert staff.post("/api/v1/triggers/unlock/by-triggers", both, format="json").json() == {"count": 2}
    TriggerState.objects.filter(namespace=namespace, flow_id="daily").update(locked_until=now() + timedelta(minutes=1))
    assert staff.post(f"/api/v1/triggers/unlock/by-query?namespace={namespace}").json() == {"count": 1}
    assert staff.post("/api/v1/triggers/unlock/by-triggers", {"not": "a list"}, format="json").status_code == 400
    incomplete = staff.post("/api/v1/triggers/backfill/delete/by-triggers", [{"namespace": namespace}], format="json")
    assert {d["path"] for d in incomplete.json()["details"]} == {"0.flowId", "0.triggerId"}


WEBHOOK = """
id: hooked
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hooked
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: a-long-secret-key
"""


def test_a_webhook_switched_off_over_http_answers_the_uniform_404(staff, namespace, cluster, settled):
    deploy(WEBHOOK.format(namespace=namespace))
    url = f"/api/v1/executions/webhook/{namespace}/hooked/a-long-secret-key"
    wrong = APIClient().post(f"/api/v1/executions/webhook/{namespace}/hooked/wrong-key")
    switched = staff.put("/api/v1/triggers", {**key(namespace, "hooked", "hook"), "disabled": True}, format="json")
    assert switched.status_code == 200 and switched.json()["disabled"] is True
    refused = APIClient().post(url)
    assert refused.status_code == 404 and refused.json() == wrong.json()
    staff.put("/api/v1/triggers", {**key(namespace, "hooked", "hook"), "disabled": False}, format="json")
    accepted = APIClient().post(url)
    assert accepted.status_code == 200 and accepted.json()["flowId"] == "hooked"


def test_a_write_grant_lets_a_user_change_the_triggers_of_its_namespaces_only(django_user_model, flows):
    from django.contrib.auth.models import Group

    from orchestrator.models import NamespaceGrant

    namespace = flows
    other = f"{namespace}x"
    deploy(DAILY.format(namespace=other))
    group = Group.objects.create(name="schedulers")
    NamespaceGrant.objects.create(group=group, namespace=namespace, write=True)
    user = django_user_model.objects.create_user("planner", password="planner-password-1")
    user.groups.add(group)
    client = APIClient()
    client.force_authenticate(user)

    listed = client.get("/api/v1/triggers/search", {"q": "daily"}).json()
    assert {r["triggerContext"]["namespace"] for r in listed["results"]} == {namespace}  # not `other`
    assert client.put("/api/v1/triggers", {**key(namespace), "disabled": True}, format="json").status_code == 200
    refused = client.put("/api/v1/triggers", {**key(other, "daily", "daily"), "disabled": True}, format="json")
    assert refused.status_code == 403 and other in refused.json()["message"]
    # By query, only the namespaces one may write are touched, whatever the filters say.
    everywhere = client.post("/api/v1/triggers/set-disabled/by-query?q=daily&disabled=true")
    assert everywhere.json() == {"count": 1}
    assert not state(other, "daily", "daily").disabled and state(namespace, "daily", "daily").disabled

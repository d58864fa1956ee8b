"""The Django admin as a person uses it (Django's test client): staff edit flows as YAML, deployed
through the repository; executions are read and acted on with the executor's own actions; the
KV store, namespace grants, tokens and beat's schedules have their pages; anyone else is sent to
the login page and changes nothing."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from orchestrator.kv import KVStore
from orchestrator.models import Execution, Flow, FlowRevision, LogEntry, NamespaceGrant
from scheduler.models import TriggerState
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCHEDULED = """
id: nightly
namespace: tests
triggers:
  - id: every-hour
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello
"""

PAUSED = """
id: approval
namespace: tests
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    timeout: PT1H
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: approved
"""

FAILING = """
id: broken
namespace: tests
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: broken on purpose
"""

WIDE = """
id: wide
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 120) | json }}"
    concurrencyLimit: 0
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "v{{ taskrun.value }}"
"""

NO_INLINE_FORMS = {"revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0",
                   "revisions-MIN_NUM_FORMS": "0", "revisions-MAX_NUM_FORMS": "1000"}


@pytest.fixture
def staff(django_user_model) -> Client:
    django_user_model.objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.login(username="root", password="root-password-1")
    return client


def page(response) -> str:
    """The text of a page as a person reads it."""
    return html.unescape(response.content.decode())


def add_flow(client: Client, source: str):
    return client.post("/admin/orchestrator/flow/add/", {"source": source}, follow=True)


def edit_flow(client: Client, flow: Flow, source: str):
    return client.post(f"/admin/orchestrator/flow/{flow.pk}/change/", {"source": source, **NO_INLINE_FORMS},
                       follow=True)


def act(client: Client, action: str, execution: Execution) -> str:
    response = client.post("/admin/orchestrator/execution/", {"action": action, "_selected_action": [execution.id]},
                           follow=True)
    assert response.status_code == 200
    return page(response)


# --- who may come in -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin/", "/admin/orchestrator/flow/", "/admin/orchestrator/flow/add/",
                                  "/admin/orchestrator/execution/", "/admin/orchestrator/kvstoreentry/"])
def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(django_user_model, path):
    django_user_model.objects.create_user("plain", password="plain-password-1")
    member = Client()
    member.login(username="plain", password="plain-password-1")
    for client in (Client(), member):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_user_who_is_not_staff_cannot_deploy_or_set_keys(django_user_model, namespace):
    django_user_model.objects.create_user("plain", password="plain-password-1")
    client = Client()
    client.login(username="plain", password="plain-password-1")
    response = add_flow(client, with_namespace(SCHEDULED, namespace))
    assert "/admin/login/" in response.redirect_chain[-1][0]
    client.post("/admin/orchestrator/kvstoreentry/", {"namespace": namespace, "key": "k", "type": "STRING",
                                                      "value": "v"})
    assert not Flow.objects.filter(namespace=namespace).exists()
    assert KVStore(namespace).get("k") is None


# --- flows -----------------------------------------------------------------------------------

def test_a_flow_added_and_edited_in_the_admin_is_deployed_with_its_revisions_and_schedules(staff, namespace):
    source = with_namespace(SCHEDULED, namespace)
    response = add_flow(staff, source)
    assert response.status_code == 200
    flow = Flow.objects.get(namespace=namespace, flow_id="nightly")
    assert (flow.revision, flow.source) == (1, source)
    assert TriggerState.objects.filter(namespace=namespace, flow_id="nightly", trigger_id="every-hour").exists()

    # A browser sends CRLF line ends: the same YAML saved again is no new revision.
    response = edit_flow(staff, flow, source.replace("\n", "\r\n"))
    assert "the source is unchanged, no new revision was made" in page(response)
    changed = source.replace("id: every-hour", "id: every-day").replace('"0 * * * *"', '"0 3 * * *"')
    response = edit_flow(staff, flow, changed)
    assert response.status_code == 200
    flow.refresh_from_db()
    assert (flow.revision, flow.source) == (2, changed)
    assert list(FlowRevision.objects.filter(head=flow).order_by("revision").values_list("source", flat=True)) == [
        source, changed]
    triggers = TriggerState.objects.filter(namespace=namespace, flow_id="nightly")
    assert list(triggers.values_list("trigger_id", flat=True)) == ["every-day"]

    shown = page(staff.get(f"/admin/orchestrator/flow/{flow.pk}/change/"))
    assert 'cron: "0 3 * * *"' in shown
    revision = FlowRevision.objects.get(head=flow, revision=1)
    shown = page(staff.get(f"/admin/orchestrator/flowrevision/{revision.pk}/change/"))
    assert 'cron: "0 * * * *"' in shown and 'name="_save"' not in shown  # read only


def test_an_invalid_flow_is_refused_with_its_problems_and_nothing_changes(staff, namespace):
    source = with_namespace(SCHEDULED, namespace)
    add_flow(staff, source)
    flow = Flow.objects.get(namespace=namespace, flow_id="nightly")

    broken = source.replace("type: io.kestra.plugin.core.log.Log", "type: io.kestra.plugin.core.log.Nope")
    shown = page(edit_flow(staff, flow, broken))
    assert "The flow is invalid" in shown
    assert "tasks[0].type (line 10): unknown task type 'io.kestra.plugin.core.log.Nope'" in shown
    shown = page(edit_flow(staff, flow, "id: [unclosed"))
    assert "The flow is invalid" in shown and "line 2: invalid YAML" in shown
    shown = page(edit_flow(staff, flow, source.replace(f"namespace: {namespace}", "namespace: elsewhere")))
    assert "The flow's id and namespace cannot change: create a new flow instead" in shown
    assert f"namespace: is 'elsewhere', this flow's is '{namespace}'" in shown
    shown = page(add_flow(staff, source))
    assert f"flow {namespace}.nightly already exists: edit it instead" in shown

    flow.refresh_from_db()
    assert (flow.revision, flow.source) == (1, source)
    assert FlowRevision.objects.filter(head=flow).count() == 1
    assert not Flow.objects.filter(namespace="elsewhere").exists()


def test_what_users_wrote_is_shown_as_text_never_as_markup(staff, namespace):
    hostile = "<script>alert(1)</script>"
    source = with_namespace(SCHEDULED, namespace) + f'description: "{hostile}"\n'
    add_flow(staff, source)
    flow = Flow.objects.get(namespace=namespace, flow_id="nightly")
    revision = FlowRevision.objects.get(head=flow)
    staff.post("/admin/orchestrator/kvstoreentry/", {"namespace": namespace, "key": "k", "type": "STRING",
                                                     "value": hostile, "description": hostile})
    for url in (f"/admin/orchestrator/flow/{flow.pk}/change/", f"/admin/orchestrator/flowrevision/{revision.pk}/change/",
                f"/admin/orchestrator/kvstoreentry/?namespace={namespace}&key=k"):
        raw = staff.get(url).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw and hostile not in raw


def test_deleting_a_flow_in_the_admin_marks_it_deleted_and_keeps_its_revisions(staff, namespace):
    add_flow(staff, with_namespace(SCHEDULED, namespace))
    flow = Flow.objects.get(namespace=namespace, flow_id="nightly")
    confirm = page(staff.get(f"/admin/orchestrator/flow/{flow.pk}/delete/"))
    assert f"{namespace}.nightly" in confirm
    staff.post(f"/admin/orchestrator/flow/{flow.pk}/delete/", {"post": "yes"}, follow=True)
    flow.refresh_from_db()
    assert flow.deleted
    assert FlowRevision.objects.filter(head=flow).count() == 1
    assert not TriggerState.objects.filter(namespace=namespace, flow_id="nightly").exists()
    # Deleted already: no second deletion is offered.
    assert staff.get(f"/admin/orchestrator/flow/{flow.pk}/delete/").status_code == 403
    # Added again, it is the same flow's next revision.
    add_flow(staff, with_namespace(SCHEDULED, namespace))
    flow.refresh_from_db()
    assert (flow.deleted, flow.revision) == (False, 2)
    assert TriggerState.objects.filter(namespace=namespace, flow_id="nightly").exists()


# --- executions ------------------------------------------------------------------------------

def start(namespace: str, source: str) -> Execution:
    from orchestrator.repository import create_execution, deploy

    flow, _ = deploy(with_namespace(source, namespace))
    return create_execution(flow.namespace, flow.flow_id)


def in_state(execution_id: str, state: str) -> Execution:
    return wait_for(lambda: Execution.objects.filter(id=execution_id, state=state).first(), 30,
                    f"execution {execution_id} to be {state}")


def test_an_execution_page_shows_its_state_task_runs_and_logs(cluster, staff, namespace):
    execution = start(namespace, PAUSED)
    in_state(execution.id, "PAUSED")
    shown = page(staff.get(f"/admin/orchestrator/execution/{execution.id}/change/"))
    assert "PAUSED" in shown and "approve" in shown
    assert f"/admin/orchestrator/logentry/?execution_id={execution.id}" in shown
    assert 'name="_save"' not in shown  # an execution changes only through its actions
    buttons = f"/admin/orchestrator/execution/{execution.id}/act/"
    assert f"{buttons}kill/" in shown and f"{buttons}resume/" in shown and f"{buttons}restart/" not in shown

    response = staff.post(f"{buttons}resume/", follow=True)
    assert response.redirect_chain[-1][0] == f"/admin/orchestrator/execution/{execution.id}/change/"
    assert f"{execution.id}: resumed" in page(response)
    ended = wait_for(lambda: finished(execution.id, expect_logs=1), 30, "the resumed execution")
    assert ended.state == "SUCCESS"
    logs = page(staff.get(f"/admin/orchestrator/logentry/?execution_id={execution.id}"))
    assert "approved" in logs
    assert LogEntry.objects.filter(execution_id=execution.id, message="approved").exists()


def test_executions_are_found_by_id_or_namespace(cluster, staff, namespace):
    here, below, elsewhere = (start(where, FAILING) for where in (namespace, f"{namespace}.team", f"{namespace}x"))
    for execution in (here, below, elsewhere):
        in_state(execution.id, "FAILED")
    for query in ({"q": namespace}, {"namespace": namespace}):
        listed = page(staff.get("/admin/orchestrator/execution/", query))
        assert here.id in listed and below.id in listed and elsewhere.id not in listed
    listed = page(staff.get("/admin/orchestrator/execution/", {"q": below.id}))
    assert below.id in listed and here.id not in listed


def test_a_wide_execution_lists_its_first_task_runs_and_says_how_many_it_has(cluster, staff, namespace):
    from orchestrator.admin import TASK_RUNS_SHOWN

    execution = start(namespace, WIDE)
    in_state(execution.id, "SUCCESS")
    total = execution.task_runs.count()
    assert total > TASK_RUNS_SHOWN
    shown = page(staff.get(f"/admin/orchestrator/execution/{execution.id}/change/"))
    assert f"{total}: the first {TASK_RUNS_SHOWN} are listed below" in shown
    assert shown.count('class="field-attempt_states"') == TASK_RUNS_SHOWN


def test_refused_actions_are_messages_and_change_nothing(cluster, staff, namespace):
    execution = start(namespace, FAILING)
    in_state(execution.id, "FAILED")
    shown = page(staff.get(f"/admin/orchestrator/execution/{execution.id}/change/"))
    assert "1: FAILED" in shown  # the task run's attempts
    shown = act(staff, "kill", execution)
    assert f"{execution.id}: " in shown and "FAILED" in shown
    shown = act(staff, "resume", execution)
    assert f"execution {execution.id} is FAILED, not PAUSED: only a paused execution resumes" in shown
    assert Execution.objects.get(id=execution.id).state == "FAILED"


def test_kill_restart_and_replay_act_as_the_api_does(cluster, staff, namespace):
    paused = start(namespace, PAUSED)
    in_state(paused.id, "PAUSED")
    assert f"{paused.id}: kill asked" in act(staff, "kill", paused)
    in_state(paused.id, "KILLED")

    failed = start(namespace, FAILING)
    in_state(failed.id, "FAILED")
    assert f"{failed.id}: restarted" in act(staff, "restart", failed)
    wait_for(lambda: any(entry["state"] == "RESTARTED" for entry in Execution.objects.get(id=failed.id).state_history),
             30, "the restart")
    shown = act(staff, "replay", paused)
    replay = Execution.objects.get(original_id=paused.id)
    assert f"{paused.id}: replayed: new execution {replay.id}" in shown


def test_a_staff_user_who_may_only_view_executions_cannot_act_on_them(cluster, django_user_model, namespace):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("watcher", password="watcher-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_execution"))
    client = Client()
    client.login(username="watcher", password="watcher-password-1")
    execution = start(namespace, PAUSED)
    in_state(execution.id, "PAUSED")
    listed = page(client.get("/admin/orchestrator/execution/"))
    assert execution.id in listed and "Kill the selected executions" not in listed
    shown = act(client, "kill", execution)
    assert "kill asked" not in shown
    assert "/act/kill/" not in page(client.get(f"/admin/orchestrator/execution/{execution.id}/change/"))
    assert client.post(f"/admin/orchestrator/execution/{execution.id}/act/kill/").status_code == 403
    assert Execution.objects.get(id=execution.id).state == "PAUSED"


def test_only_ended_executions_can_be_deleted_and_their_logs_go_with_them(cluster, staff, namespace):
    paused = start(namespace, PAUSED)
    in_state(paused.id, "PAUSED")
    assert staff.get(f"/admin/orchestrator/execution/{paused.id}/delete/").status_code == 403
    failed = start(namespace, FAILING)
    in_state(failed.id, "FAILED")
    wait_for(lambda: LogEntry.objects.filter(execution_id=failed.id).exists(), 30, "the failure's log line")
    staff.post(f"/admin/orchestrator/execution/{failed.id}/delete/", {"post": "yes"})
    assert not Execution.objects.filter(id=failed.id).exists()
    assert not LogEntry.objects.filter(execution_id=failed.id).exists()
    assert Execution.objects.filter(id=paused.id).exists()


# --- KV store, grants, tokens, schedules ------------------------------------------------------

def test_the_kv_store_page_lists_sets_shows_and_deletes_keys(staff, namespace):
    url = "/admin/orchestrator/kvstoreentry/"
    assert "KV store" in page(staff.get("/admin/"))
    staff.post(url, {"namespace": namespace, "key": "region", "type": "STRING", "value": "eu-west-1",
                     "description": "where we run"})
    staff.post(url, {"namespace": namespace, "key": "limits", "type": "JSON", "value": '{"cpu": 2}', "ttl": "PT1H"})
    assert KVStore(namespace).get("region").value == "eu-west-1"
    assert KVStore(namespace).get("limits").value == {"cpu": 2}

    shown = page(staff.get(url, {"namespace": namespace}))
    assert "region" in shown and "where we run" in shown and "limits" in shown
    assert '{"cpu": 2}' in page(staff.get(url, {"namespace": namespace, "key": "limits"}))

    refused = page(staff.post(url, {"namespace": namespace, "key": "count", "type": "NUMBER", "value": "many"}))
    assert "The value is not a NUMBER" in refused
    refused = page(staff.post(url, {"namespace": namespace, "key": "../escape", "type": "STRING", "value": "x"}))
    assert "'../escape'" in refused
    assert [entry.key for entry in KVStore(namespace).list()] == ["limits", "region"]

    shown = page(staff.post(url, {"namespace": namespace, "delete": "region"}, follow=True))
    assert f"'region' is deleted from '{namespace}'" in shown
    assert KVStore(namespace).get("region") is None
    assert "is not a namespace" in page(staff.get(url, {"namespace": "Not A Namespace"}))


def test_namespace_grants_are_edited_in_the_admin(staff, namespace):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="analysts")
    staff.post("/admin/orchestrator/namespacegrant/add/", {"group": group.pk, "namespace": namespace,
                                                           "read": "on", "execute": "on"})
    grant = NamespaceGrant.objects.get(group=group)
    assert (grant.namespace, grant.read, grant.write, grant.execute) == (namespace, True, False, True)
    refused = page(staff.post("/admin/orchestrator/namespacegrant/add/", {"group": group.pk,
                                                                          "namespace": "Bad Namespace"}))
    assert "a namespace: lowercase letters" in refused
    assert NamespaceGrant.objects.count() == 1
    assert namespace in page(staff.get(f"/admin/auth/group/{group.pk}/change/"))


def test_tokens_and_beat_schedules_have_their_pages(staff):
    index = page(staff.get("/admin/"))
    for path in ("/admin/authtoken/tokenproxy/", "/admin/django_celery_beat/periodictask/",
                 "/admin/django_celery_beat/crontabschedule/", "/admin/orchestrator/namespacegrant/"):
        assert path in index
        assert staff.get(path).status_code == 200

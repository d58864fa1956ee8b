"""The REST API over HTTP (DRF's APIClient), executions run by real executor and worker processes.

Every endpoint is called by an anonymous client (401) and an authenticated one; writes by a
user who is not staff are refused (403). Every endpoint's anonymous refusal is also checked from
the URL resolver (test_api_anonymous.py), and every operation against the OpenAPI document by
schemathesis (test_openapi_contract.py)."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from orchestrator.models import Execution, LogEntry, TaskRun
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

YAML = "application/x-yaml"

HELLO = """
id: hello
namespace: tests
labels:
  team: data
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }}"
  - id: answer
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}!"
"""

UPLOAD = """
id: upload
namespace: tests
inputs:
  - id: data
    type: FILE
  - id: count
    type: INT
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.data) }} x{{ inputs.count }}"
"""

FLAKY = """
id: flaky
namespace: tests
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: broken
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: broken
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.value }} done"
"""

APPROVAL = """
id: approval
namespace: tests
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    timeout: PT1H
    onResume:
      - id: reason
        type: STRING
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "approved: {{ outputs.approve.onResume.reason }}"
"""


def deploy(client, source: str, namespace: str) -> dict:
    response = client.post("/api/v1/flows", with_namespace(source, namespace), content_type=YAML)
    assert response.status_code == 200, response.content
    return response.json()


def ended(execution_id: str, history: int = 0) -> Execution:
    def check():
        execution = finished(execution_id)
        return execution if execution and len(execution.state_history) > history else None
    return wait_for(check, 30, f"execution {execution_id} to end")


def state_of(execution_id: str) -> str:
    return Execution.objects.get(id=execution_id).state


# --- authentication --------------------------------------------------------------------------

ENDPOINTS = [
    ("post", "/api/v1/flows"), ("get", "/api/v1/flows/search"), ("post", "/api/v1/flows/validate"),
    ("get", "/api/v1/flows/ns"), ("get", "/api/v1/flows/ns/f"), ("put", "/api/v1/flows/ns/f"),
    ("delete", "/api/v1/flows/ns/f"), ("get", "/api/v1/flows/ns/f/revisions"), ("get", "/api/v1/plugins/schemas/flow"),
    ("post", "/api/v1/executions/ns/f"), ("get", "/api/v1/executions/search"), ("get", "/api/v1/executions/e1"),
    ("delete", "/api/v1/executions/e1"), ("delete", "/api/v1/executions/e1/kill"),
    ("post", "/api/v1/executions/e1/restart"), ("post", "/api/v1/executions/e1/replay"),
    ("post", "/api/v1/executions/e1/resume"), ("post", "/api/v1/executions/e1/state"),
    ("get", "/api/v1/logs/e1"), ("get", "/api/v1/logs/e1/download"), ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/swagger-ui"), ("get", "/api/v1/redoc"), ("get", "/api/v1/workers"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_an_anonymous_client(method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    if response["Content-Type"] == "application/json":  # the documentation pages answer in HTML
        assert response.json() == {"message": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"].startswith("Basic")


def test_health_and_version_need_no_authentication():
    client = APIClient()
    assert client.get("/api/v1/health").json()["status"] == "UP"
    assert client.get("/api/v1/version").json()["version"]


def test_wrong_credentials_are_refused(staff):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.get("/api/v1/flows/search").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Basic b3BzOndyb25n")  # ops:wrong
    assert client.get("/api/v1/flows/search").status_code == 401


def test_a_user_who_is_not_staff_and_has_no_namespace_grant_sees_and_changes_nothing(reader, staff, namespace):
    # What namespace grants give is tested in test_namespace_permissions.py.
    deploy(staff, HELLO, namespace)
    response = reader.get(f"/api/v1/flows/{namespace}/hello")
    assert response.status_code == 403
    assert response.json()["message"] == (f"viewer may not read in namespace '{namespace}': "
                                           "no namespace grant of their groups gives read there")
    assert reader.get(f"/api/v1/flows/search?namespace={namespace}").json()["total"] == 0
    assert reader.delete(f"/api/v1/flows/{namespace}/hello").status_code == 403
    assert reader.post(f"/api/v1/executions/{namespace}/hello").status_code == 403


def test_a_session_writes_only_with_its_csrf_token(django_user_model, namespace):
    django_user_model.objects.create_user("web", password="web-password-1", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="web", password="web-password-1")
    assert client.get("/api/v1/flows/search").status_code == 200
    response = client.post("/api/v1/flows", with_namespace(HELLO, namespace), content_type=YAML)
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]


def test_the_token_command_prints_a_token_that_authenticates(django_user_model):
    django_user_model.objects.create_user("ci", is_staff=True)
    out = io.StringIO()
    call_command("token", "create", "ci", stdout=out)
    key = out.getvalue().strip()
    again = io.StringIO()
    call_command("token", "create", "ci", stdout=again)
    assert again.getvalue().strip() == key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/flows/search").status_code == 200
    call_command("token", "create", "ci", "--rotate", stdout=io.StringIO())
    assert client.get("/api/v1/flows/search").status_code == 401


# --- flows -----------------------------------------------------------------------------------

def test_flows_are_created_read_updated_listed_and_deleted_as_yaml(staff, namespace):
    created = deploy(staff, HELLO, namespace)
    assert (created["id"], created["namespace"], created["revision"]) == ("hello", namespace, 1)
    assert created["source"].startswith("\nid: hello") and created["tasks"][0]["id"] == "greet"
    assert created["disabled"] is False and created["deleted"] is False

    again = staff.post("/api/v1/flows", with_namespace(HELLO, namespace), content_type=YAML)
    assert again.status_code == 409 and "already exists" in again.json()["message"]

    got = staff.get(f"/api/v1/flows/{namespace}/hello").json()
    assert "source" not in got and got["labels"] == {"team": "data"}
    assert staff.get(f"/api/v1/flows/{namespace}/hello?source=true").json()["source"] == created["source"]

    changed = with_namespace(HELLO.replace("Hello", "Hi"), namespace)
    updated = staff.put(f"/api/v1/flows/{namespace}/hello", changed, content_type=YAML).json()
    assert updated["revision"] == 2 and "Hi {{" in updated["source"]
    old = staff.get(f"/api/v1/flows/{namespace}/hello?revision=1&source=true").json()
    assert old["revision"] == 1 and "Hello {{" in old["source"]
    revisions = staff.get(f"/api/v1/flows/{namespace}/hello/revisions").json()
    assert [r["revision"] for r in revisions] == [1, 2]

    renamed = staff.put(f"/api/v1/flows/{namespace}/hello", changed.replace("id: hello", "id: other"),
                        content_type=YAML)
    assert renamed.status_code == 400
    assert renamed.json()["details"][0]["path"] == "id"
    assert staff.put(f"/api/v1/flows/{namespace}/missing", changed, content_type=YAML).status_code == 404

    deploy(staff, HELLO.replace("id: hello", "id: second"), namespace)
    assert [f["id"] for f in staff.get(f"/api/v1/flows/{namespace}").json()] == ["hello", "second"]
    first = staff.get(f"/api/v1/flows/search?namespace={namespace}&size=1&sort=id:desc").json()
    assert first["total"] == 2 and [f["id"] for f in first["results"]] == ["second"]
    second = staff.get(f"/api/v1/flows/search?namespace={namespace}&size=1&page=2&sort=id:desc").json()
    assert [f["id"] for f in second["results"]] == ["hello"]
    assert staff.get(f"/api/v1/flows/search?q={namespace[-8:]}&q=sec").json()["total"] >= 1

    assert staff.delete(f"/api/v1/flows/{namespace}/second").status_code == 204
    assert staff.get(f"/api/v1/flows/{namespace}/second").status_code == 404
    assert staff.delete(f"/api/v1/flows/{namespace}/second").status_code == 404
    assert staff.get(f"/api/v1/flows/search?namespace={namespace}").json()["total"] == 1


def test_an_invalid_flow_is_refused_with_each_problem_its_path_and_line(staff, namespace):
    source = with_namespace(HELLO.replace("    type: io.kestra.plugin.core.log.Log\n", ""), namespace)
    response = staff.post("/api/v1/flows", source, content_type=YAML)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "The flow is invalid"
    assert any(d["path"].startswith("tasks[0]") and d["line"] for d in body["details"]), body

    broken = staff.post("/api/v1/flows", "id: [unclosed\n", content_type=YAML)
    assert broken.status_code == 400 and broken.json()["details"][0]["line"] in (1, 2)
    assert staff.post("/api/v1/flows", {"id": "x"}, format="json").status_code == 400
    assert staff.post("/api/v1/flows", "", content_type=YAML).status_code == 400
    assert staff.post("/api/v1/flows", "a", content_type="text/csv").status_code == 415


def test_an_oversized_flow_is_refused_with_413(staff, namespace, settings):
    settings.HARRIER_MAX_FLOW_BYTES = 200
    response = staff.post("/api/v1/flows", with_namespace(HELLO, namespace) + "#" * 300, content_type=YAML)
    assert response.status_code == 413
    assert "larger than 200 bytes" in response.json()["message"]


def test_validate_answers_each_flow_of_a_multi_document_body(staff, namespace):
    bad = HELLO.replace("id: hello", "id: bad").replace("type: io.kestra.plugin.core.debug.Return",
                                                          "type: io.kestra.plugin.core.debug.Nope")
    body = with_namespace(HELLO, namespace) + "---\n" + with_namespace(bad, namespace)
    results = staff.post("/api/v1/flows/validate", body, content_type=YAML).json()
    assert [(r["index"], r["flow"], r["namespace"]) for r in results] == [(0, "hello", namespace), (1, "bad", namespace)]
    assert results[0]["constraints"] is None and results[0]["details"] == []
    assert "Nope" in results[1]["constraints"]
    assert results[1]["details"][0]["path"].startswith("tasks[1]")
    assert not staff.get(f"/api/v1/flows/{namespace}/hello").status_code == 200  # nothing stored


def test_the_flow_json_schema_is_served(staff):
    schema = staff.get("/api/v1/plugins/schemas/flow").json()
    assert "tasks" in schema["properties"]


# --- executions ------------------------------------------------------------------------------

def test_an_execution_is_created_with_inputs_labels_and_a_file_and_waited_for(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    response = staff.post(f"/api/v1/executions/{namespace}/hello?labels=env:prod&labels=team:ops&wait=true",
                          {"name": "Ada"}, format="multipart")
    assert response.status_code == 200, response.content
    execution = response.json()
    assert execution["state"]["current"] == "SUCCESS"
    assert execution["state"]["endDate"] and execution["state"]["duration"].startswith("PT")
    assert [h["state"] for h in execution["state"]["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
    assert execution["inputs"] == {"name": "Ada"}
    assert {"key": "env", "value": "prod"} in execution["labels"]
    assert {"key": "team", "value": "ops"} in execution["labels"]  # the request's label wins over the flow's
    assert [run["taskId"] for run in execution["taskRunList"]] == ["greet", "answer"]
    assert execution["taskRunList"][1]["outputs"] == {"value": "Ada!"}
    assert execution["taskRunList"][1]["attempts"][0]["state"]["current"] == "SUCCESS"
    assert (execution["flowId"], execution["namespace"], execution["flowRevision"]) == ("hello", namespace, 1)
    assert execution["originalId"] == execution["id"] and execution["parentId"] is None

    got = staff.get(f"/api/v1/executions/{execution['id']}").json()
    assert got["id"] == execution["id"] and got["state"]["current"] == "SUCCESS"

    deploy(staff, UPLOAD, namespace)
    upload = SimpleUploadedFile("rows.csv", b"a,b", content_type="text/csv")
    response = staff.post(f"/api/v1/executions/{namespace}/upload?wait=true", {"data": upload, "count": "2"},
                          format="multipart")
    assert response.status_code == 200, response.content
    with_file = response.json()
    assert with_file["state"]["current"] == "SUCCESS"
    assert with_file["inputs"]["data"].endswith("/rows.csv")
    assert with_file["taskRunList"][0]["outputs"] == {"value": "a,b x2"}


def test_refused_executions_say_why(cluster, staff, namespace):
    deploy(staff, UPLOAD, namespace)
    response = staff.post(f"/api/v1/executions/{namespace}/upload", {"count": "many"}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert {d["path"] for d in body["details"]} == {"inputs.data", "inputs.count"}
    assert "data" in body["message"] and "count" in body["message"]
    assert staff.post(f"/api/v1/executions/{namespace}/missing").status_code == 404
    assert staff.post(f"/api/v1/executions/{namespace}/upload?labels=nocolon").status_code == 400
    assert staff.post(f"/api/v1/executions/{namespace}/upload?revision=x").status_code == 400
    assert staff.post(f"/api/v1/executions/{namespace}/upload?revision=99999999999").status_code == 400
    assert staff.post(f"/api/v1/executions/{namespace}/upload?revision=7", {"count": "1"}).status_code == 404
    staff.put(f"/api/v1/flows/{namespace}/upload", with_namespace(UPLOAD + "disabled: true\n", namespace),
              content_type=YAML)
    disabled = staff.post(f"/api/v1/executions/{namespace}/upload", {"count": "1"}, format="multipart")
    assert disabled.status_code == 409 and "disabled" in disabled.json()["message"]
    assert staff.get("/api/v1/executions/nope").status_code == 404


def test_an_oversized_execution_request_is_refused_with_413(cluster, staff, namespace, settings):
    settings.HARRIER_MAX_UPLOAD_BYTES = 1000
    deploy(staff, UPLOAD, namespace)
    upload = SimpleUploadedFile("rows.csv", b"x" * 5000)
    response = staff.post(f"/api/v1/executions/{namespace}/upload", {"data": upload, "count": "1"},
                          format="multipart")
    assert response.status_code == 413


def test_restart_replay_and_a_new_task_run_state_over_http(cluster, staff, namespace):
    deploy(staff, FLAKY, namespace)
    failed = staff.post(f"/api/v1/executions/{namespace}/flaky?wait=true").json()
    assert failed["state"]["current"] == "FAILED"
    execution_id = failed["id"]
    before = len(failed["state"]["histories"])

    restarted = staff.post(f"/api/v1/executions/{execution_id}/restart")
    assert restarted.status_code == 200 and restarted.json()["id"] == execution_id
    again = ended(execution_id, before + 2)
    broken = TaskRun.objects.get(execution=again, task_id="broken")
    assert len(broken.attempts) == 2

    replay = staff.post(f"/api/v1/executions/{execution_id}/replay?taskRunId={broken.id}")
    assert replay.status_code == 200
    assert replay.json()["originalId"] == execution_id and replay.json()["id"] != execution_id
    ended(replay.json()["id"])
    assert staff.post(f"/api/v1/executions/{execution_id}/replay?taskRunId=nope").status_code == 409

    assert staff.post(f"/api/v1/executions/{execution_id}/state", {"taskRunId": broken.id, "state": "RUNNING"},
                      format="json").status_code == 400
    changed = staff.post(f"/api/v1/executions/{execution_id}/state", {"taskRunId": broken.id, "state": "SUCCESS"},
                         format="json")
    assert changed.status_code == 200
    done = ended(execution_id, len(again.state_history))
    assert done.state == "SUCCESS"

    killed = staff.delete(f"/api/v1/executions/{execution_id}/kill")
    assert killed.status_code == 409 and "ended" in killed.json()["message"] or killed.json()["message"]
    assert staff.post(f"/api/v1/executions/{execution_id}/restart").status_code == 409
    assert staff.post("/api/v1/executions/nope/restart").status_code == 404


def test_pause_resume_kill_and_delete_over_http(cluster, staff, namespace):
    deploy(staff, APPROVAL, namespace)
    paused = staff.post(f"/api/v1/executions/{namespace}/approval").json()
    wait_for(lambda: state_of(paused["id"]) == "PAUSED", 30, "the execution to pause")
    assert staff.delete(f"/api/v1/executions/{paused['id']}").status_code == 409  # still running
    assert staff.post(f"/api/v1/executions/{paused['id']}/resume", {}, format="multipart").status_code == 400
    resumed = staff.post(f"/api/v1/executions/{paused['id']}/resume", {"reason": "fine"}, format="multipart")
    assert resumed.status_code == 204
    done = ended(paused["id"])
    assert TaskRun.objects.get(execution=done, task_id="after").outputs == {"value": "approved: fine"}
    again = staff.post(f"/api/v1/executions/{paused['id']}/resume", {"reason": "x"}, format="multipart")
    assert again.status_code == 409 and "not PAUSED" in again.json()["message"]

    second = staff.post(f"/api/v1/executions/{namespace}/approval").json()
    wait_for(lambda: state_of(second["id"]) == "PAUSED", 30, "the execution to pause")
    assert staff.delete(f"/api/v1/executions/{second['id']}/kill").status_code == 202
    assert ended(second["id"]).state == "KILLED"
    assert staff.delete(f"/api/v1/executions/{second['id']}/kill").status_code == 409

    assert staff.delete(f"/api/v1/executions/{second['id']}").status_code == 204
    assert staff.get(f"/api/v1/executions/{second['id']}").status_code == 404
    assert staff.delete(f"/api/v1/executions/{second['id']}").status_code == 404
    assert not LogEntry.objects.filter(execution_id=second["id"]).exists()


def test_a_flow_named_like_an_action_is_still_executed(cluster, staff, namespace):
    deploy(staff, HELLO.replace("id: hello", "id: restart"), namespace)
    response = staff.post(f"/api/v1/executions/{namespace}/restart?wait=true", {"name": "x"}, format="multipart")
    assert response.status_code == 200 and response.json()["flowId"] == "restart"


@pytest.mark.parametrize("path", ["/api/v1/executions/search", "/api/v1/logs/search"])
def test_search_dates_are_read_in_utc_whatever_their_offset(staff, path):
    # PostgreSQL holds offsets up to 15:59 only; ISO-8601 and Python go further.
    assert staff.get(path, {"startDate": "2024-01-31T12:00:00+18:30"}).status_code == 200
    # 00:10 at +18:00 on the first day of year 1 has no UTC date.
    response = staff.get(path, {"endDate": "0001-01-01T00:10:00+18:00"})
    assert response.status_code == 400
    assert response.json()["details"][0]["path"] == "endDate"


def test_search_filters_sorts_and_pages_executions(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    deploy(staff, FLAKY, namespace)
    ids = [staff.post(f"/api/v1/executions/{namespace}/hello?wait=true&labels=run:{n}").json()["id"]
           for n in range(3)]
    failed = staff.post(f"/api/v1/executions/{namespace}/flaky?wait=true").json()["id"]

    everything = staff.get(f"/api/v1/executions/search?namespace={namespace}").json()
    assert everything["total"] == 4 and everything["totalIsExact"] is True
    assert [e["id"] for e in everything["results"]] == [failed, *reversed(ids)]  # newest first
    assert everything["results"][0]["taskRunList"]

    page = staff.get(f"/api/v1/executions/search?namespace={namespace}&size=2&page=2&sort=state.startDate:asc").json()
    assert page["total"] == 4 and [e["id"] for e in page["results"]] == ids[2:] + [failed]
    by_state = staff.get(f"/api/v1/executions/search?namespace={namespace}&state=FAILED").json()
    assert [e["id"] for e in by_state["results"]] == [failed]
    by_label = staff.get(f"/api/v1/executions/search?namespace={namespace}&labels=run:1").json()
    assert [e["id"] for e in by_label["results"]] == [ids[1]]
    by_flow = staff.get(f"/api/v1/executions/search?namespace={namespace}&flowId=hello&size=1").json()
    assert by_flow["total"] == 3 and len(by_flow["results"]) == 1
    start = Execution.objects.get(id=ids[2]).start_date.isoformat()
    since = staff.get("/api/v1/executions/search", {"namespace": namespace, "startDate": start}).json()
    assert {e["id"] for e in since["results"]} == {ids[2], failed}

    for bad in ("state=DONE", "sort=color:asc", "startDate=yesterday", "startDate=2024-13-45T00:00:00Z", "size=501",
                "page=0", "page=1000&size=500", "flowId=a%00b"):
        response = staff.get(f"/api/v1/executions/search?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["message"]


def test_the_logs_of_an_execution_are_listed_and_downloaded(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    execution = staff.post(f"/api/v1/executions/{namespace}/hello?wait=true", {"name": "Ada"}).json()
    wait_for(lambda: LogEntry.objects.filter(execution_id=execution["id"], task_id="greet").exists(), 30, "the log")
    logs = staff.get(f"/api/v1/logs/{execution['id']}?taskId=greet").json()
    assert [(line["level"], line["message"]) for line in logs] == [("INFO", "Hello Ada")]
    assert logs[0]["namespace"] == namespace and logs[0]["flowId"] == "hello"
    assert staff.get(f"/api/v1/logs/{execution['id']}?minLevel=ERROR").json() == []
    assert staff.get(f"/api/v1/logs/{execution['id']}?minLevel=LOUD").status_code == 400
    download = staff.get(f"/api/v1/logs/{execution['id']}/download")
    assert download.status_code == 200 and download["Content-Type"].startswith("text/plain")
    text = b"".join(download.streaming_content).decode()
    assert "INFO [greet] Hello Ada" in text
    assert staff.get("/api/v1/logs/nope").status_code == 404


# --- the OpenAPI document --------------------------------------------------------------------

def test_the_openapi_document_is_valid_and_describes_every_endpoint(staff):
    from drf_spectacular.validation import validate_schema

    response = staff.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate_schema(document)
    try:
        from openapi_spec_validator import validate
    except ImportError:
        pass
    else:
        validate(document)
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()
                  if isinstance(op, dict) and "operationId" in op}
    assert {"createFlow", "searchFlows", "validateFlows", "createExecution", "searchExecutions", "killExecution",
            "resumeExecution", "replayExecution", "restartExecution", "changeTaskRunState",
            "listExecutionLogs"} <= operations
    assert staff.get("/api/v1/swagger-ui").status_code == 200
    assert staff.get("/api/v1/redoc").status_code == 200


def test_workers_says_who_serves_a_group_and_why_its_jobs_wait(cluster, staff):
    everyone = staff.get("/api/v1/workers").json()["workers"]
    assert any("default" in worker["groups"] for worker in everyone)
    served = staff.get("/api/v1/workers", {"group": "default"}).json()
    assert served["workers"] and served["waiting"] is None
    nobody = staff.get("/api/v1/workers", {"group": "unstaffed"}).json()  # a group no test worker serves
    assert nobody["workers"] == []
    assert "no live worker serves worker group 'unstaffed'" in nobody["waiting"]

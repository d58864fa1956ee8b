"""Following an execution and its logs over server-sent events (DRF's test client reading the
stream), executions run by real executor and worker processes."""

from __future__ import annotations

import orjson
import pytest
from rest_framework.test import APIClient

from orchestrator.api import follow
from tests.harness import wait_for
from tests.integration.test_api import deploy, ended

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLOW = """
id: slow
namespace: tests
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: "step one"
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1.5S
  - id: second
    type: io.kestra.plugin.core.log.Log
    message: "step two"
  - id: last
    type: io.kestra.plugin.core.log.Log
    message: "step three"
"""

PAUSED = """
id: paused
namespace: tests
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
"""


def parse(stream: bytes) -> list[tuple[str, object]]:
    """Server-sent events as (id, data) pairs; comments as ("comment", text)."""
    events = []
    for block in stream.decode().split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            events.append(("comment", block[1:].strip()))
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["id"], orjson.loads(fields["data"])))
    return events


def read_stream(response) -> list[tuple[str, object]]:
    try:
        return parse(b"".join(response.streaming_content))
    finally:
        response.close()


@pytest.fixture
def quick_streams(settings):
    settings.HARRIER_FOLLOW_KEEPALIVE_SECONDS = 0.2
    settings.HARRIER_FOLLOW_LOG_GRACE_SECONDS = 1.0
    settings.HARRIER_FOLLOW_POLL_SECONDS = 0.1


def start(client, namespace: str, flow: str) -> str:
    response = client.post(f"/api/v1/executions/{namespace}/{flow}")
    assert response.status_code == 200, response.content
    return response.json()["id"]


@pytest.mark.parametrize("path", ["/api/v1/executions/e1/follow", "/api/v1/logs/e1/follow",
                                  "/api/v1/logs/search"])
def test_following_and_searching_refuse_an_anonymous_client(path):
    assert APIClient().get(path).status_code == 401


def test_an_execution_is_followed_from_its_start_to_its_end(cluster, staff, namespace, quick_streams):
    deploy(staff, SLOW, namespace)
    execution_id = start(staff, namespace, "slow")
    response = staff.get(f"/api/v1/executions/{execution_id}/follow", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    events = [(name, data) for name, data in read_stream(response) if name != "comment"]

    names = [name for name, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"progress"}
    final = events[-1][1]
    assert final == staff.get(f"/api/v1/executions/{execution_id}").json()
    assert final["state"]["current"] == "SUCCESS"
    # the sleeping task was seen running before the end
    seen = [{run["taskId"]: run["state"]["current"] for run in data["taskRunList"]} for _, data in events]
    assert any(runs.get("wait") == "RUNNING" for runs in seen)


def test_the_logs_of_an_execution_are_followed_to_its_end(cluster, staff, namespace, quick_streams):
    deploy(staff, SLOW, namespace)
    execution_id = start(staff, namespace, "slow")
    response = staff.get(f"/api/v1/logs/{execution_id}/follow")
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    lines = [data for name, data in read_stream(response) if name == "progress"]
    assert ended(execution_id).state == "SUCCESS"
    messages = [line["message"] for line in lines]
    assert [m for m in messages if m.startswith("step")] == ["step one", "step two", "step three"]
    assert messages == [line["message"] for line in staff.get(f"/api/v1/logs/{execution_id}").json()]
    assert {line["executionId"] for line in lines} == {execution_id}


def test_a_quiet_stream_sends_keep_alives_and_ends_at_its_lifetime(cluster, staff, namespace, quick_streams,
                                                                   settings):
    settings.HARRIER_FOLLOW_MAX_SECONDS = 1.0
    deploy(staff, PAUSED, namespace)
    execution_id = start(staff, namespace, "paused")
    wait_for(lambda: staff.get(f"/api/v1/executions/{execution_id}").json()["state"]["current"] == "PAUSED", 30,
             "the execution to pause")
    events = read_stream(staff.get(f"/api/v1/executions/{execution_id}/follow"))
    assert events[0][0] == "progress" and events[0][1]["state"]["current"] == "PAUSED"
    assert ("comment", "keep-alive") in events
    assert "end" not in [name for name, _ in events]
    logs = read_stream(staff.get(f"/api/v1/logs/{execution_id}/follow"))
    assert ("comment", "keep-alive") in logs
    staff.delete(f"/api/v1/executions/{execution_id}/kill")


def test_streams_over_the_bound_are_refused_until_one_closes(cluster, staff, namespace, settings):
    deploy(staff, PAUSED, namespace)
    execution_id = start(staff, namespace, "paused")
    limit = settings.HARRIER_FOLLOW_MAX_STREAMS
    open_streams = [staff.get(f"/api/v1/executions/{execution_id}/follow") for _ in range(limit)]
    try:
        assert [response.status_code for response in open_streams] == [200] * limit
        refused = staff.get(f"/api/v1/logs/{execution_id}/follow")
        assert refused.status_code == 503
        assert "HARRIER_FOLLOW_MAX_STREAMS" in refused.json()["message"]
        assert refused["Retry-After"]
        open_streams.pop().close()
        again = staff.get(f"/api/v1/logs/{execution_id}/follow")
        assert again.status_code == 200
        again.close()
    finally:
        for response in open_streams:
            response.close()
        staff.delete(f"/api/v1/executions/{execution_id}/kill")


def test_following_an_unknown_or_hidden_execution_is_a_404(cluster, staff, reader, namespace):
    for path in ("/api/v1/executions/nosuch/follow", "/api/v1/logs/nosuch/follow"):
        response = staff.get(path, HTTP_ACCEPT="text/event-stream")
        assert response.status_code == 404
        assert response.json() == {"message": "execution nosuch does not exist"}
    deploy(staff, PAUSED, namespace)
    execution_id = start(staff, namespace, "paused")
    assert reader.get(f"/api/v1/executions/{execution_id}/follow").status_code == 404
    staff.delete(f"/api/v1/executions/{execution_id}/kill")


def test_one_look_serves_every_stream_of_the_process(cluster, staff, namespace):
    """The watch asks the repository about all followed executions at once, whatever their number."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orchestrator.models import Execution

    deploy(staff, PAUSED, namespace)
    ids = [start(staff, namespace, "paused") for _ in range(3)]
    # Once paused, nothing more happens to them: a second look must find nothing changed.
    wait_for(lambda: Execution.objects.filter(id__in=ids, state="PAUSED").count() == 3, 30, "three paused executions")
    watch = follow.ChangeWatch(interval=60, run_thread=False)
    for execution_id in ids:
        watch.follow(execution_id, logs=True)
    with CaptureQueriesContext(connection) as queries:
        assert watch.tick() == set(ids)
    assert len(queries) == 3
    assert watch.tick() == set()
    for execution_id in ids:
        staff.delete(f"/api/v1/executions/{execution_id}/kill")
        watch.unfollow(execution_id, logs=True)


def test_change_notices_of_the_executor_and_indexer_processes_wake_the_watch(cluster, staff, namespace):
    """A watch polling every 30 s still sees an execution move within seconds: the executor and
    the indexer, other processes, send change notices over Redis once their changes are committed."""
    from orchestrator import notify

    watch = follow.ChangeWatch(interval=30)
    watch.follow("none-yet", logs=True)  # starts the watch and its subscription
    client = notify.redis_client()
    wait_for(lambda: client.pubsub_numsub(notify.channel(client))[0][1] >= 1, 10, "the watch to subscribe")
    deploy(staff, SLOW, namespace)
    execution_id = start(staff, namespace, "slow")
    watch.follow(execution_id, logs=True)
    try:
        versions = wait_for(lambda: watch.wait(execution_id, 0, 0) >= 3 and watch.wait(execution_id, 0, 0), 15,
                            "three looks at the execution, each brought by a notice")
        assert versions >= 3
        assert ended(execution_id).state == "SUCCESS"
    finally:
        watch.unfollow(execution_id, logs=True)
        watch.unfollow("none-yet", logs=True)


def test_a_flow_named_follow_or_file_is_still_executed(cluster, staff, namespace):
    """`POST /executions/{namespace}/follow` has the shape of the follow path, and creates an execution."""
    for name in ("follow", "file"):
        deploy(staff, PAUSED.replace("id: paused", f"id: {name}"), namespace)
        response = staff.post(f"/api/v1/executions/{namespace}/{name}")
        assert response.status_code == 200, response.content
        assert response.json()["flowId"] == name
        staff.delete(f"/api/v1/executions/{response.json()['id']}/kill")


def test_the_logs_of_an_ended_execution_with_many_lines_are_all_sent_in_order(staff, namespace, quick_streams):
    from datetime import timedelta

    from orchestrator.models import Execution, LogEntry
    from orchestrator.repository import now

    moment = now()
    execution = Execution.objects.create(namespace=namespace, flow_id="many", flow_revision=1, state="SUCCESS",
                                         start_date=moment, updated=moment)
    count = 5 * follow.LINES_PER_READ // 2
    LogEntry.objects.bulk_create([
        LogEntry(execution_id=execution.id, namespace=namespace, flow_id="many", level="INFO", message=f"line {i}",
                 timestamp=moment + timedelta(milliseconds=i))
        for i in range(count)
    ])
    lines = [data["message"] for name, data in read_stream(staff.get(f"/api/v1/logs/{execution.id}/follow"))
             if name == "progress"]
    assert lines == [f"line {i}" for i in range(count)]

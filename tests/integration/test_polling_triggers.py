"""Polling triggers through real processes: the scheduler (its dispatch thread and its
consumer), the executor, workers of the default group and, when a test starts one, of another
group. The HTTP trigger polls a local test server that records each call; nothing sleeps a
fixed time, every wait polls with a deadline."""

from __future__ import annotations

import pytest

from orchestrator.flowlang.errors import FlowValidationError
from orchestrator.models import TERMINAL_VALUES, Execution
from orchestrator.repository import deploy
from scheduler.models import TriggerState
from tests.harness import wait_for
from tests.httpserver import LocalServer
from tests.integration.test_schedule import settle

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


@pytest.fixture
def scheduler(cluster, namespace):
    cluster.start("scheduler", "scheduler")
    cluster.wait_ready(["scheduler"])
    yield cluster
    for name in ("scheduler", "scheduler-2"):
        if name in cluster.processes:
            cluster.stop(name)
    settle(namespace)


def http_flow(namespace: str, url: str, *, flow_id: str = "poller", interval: str = "PT1S",
              condition: str = "{{ (response.body | fromJson).ready }}", task: str | None = None,
              extra: str = "") -> str:
    task = task or """  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.code }} {{ (trigger.body | fromJson).ready }} {{ trigger.headers['Content-Type'][0] }}\""""
    return f"""
id: {flow_id}
namespace: {namespace}
tasks:
{task}
triggers:
  - id: watch
    type: io.kestra.plugin.core.http.Trigger
    uri: "{url}"
    interval: {interval}
    responseCondition: "{condition}"
{extra}"""


def executions(namespace: str, flow_id: str | None = None) -> list[Execution]:
    found = Execution.objects.filter(namespace=namespace)
    if flow_id:
        found = found.filter(flow_id=flow_id)
    return list(found.order_by("start_date"))


def state_of(namespace: str, flow_id: str = "poller") -> TriggerState:
    return TriggerState.objects.get(namespace=namespace, flow_id=flow_id, trigger_id="watch")


def results_applied(namespace: str, server: LocalServer, name: str, count: int, flow_id: str = "poller") -> bool:
    """At least `count` calls were made, and the scheduler has taken the result of the last."""
    return len(server.polls(name)) >= count and not state_of(namespace, flow_id).locked_by


def gaps(calls: list[dict]) -> list[float]:
    starts = [call["start"] for call in calls]
    return [later - earlier for earlier, later in zip(starts, starts[1:])]


def test_fires_only_when_the_response_condition_holds(scheduler, namespace, server):
    deploy(http_flow(namespace, server.url("/poll/ready"), extra="    stopAfter: [SUCCESS]\n"))
    wait_for(lambda: results_applied(namespace, server, "ready", 3), 60, "three evaluations")
    assert executions(namespace) == []  # {"ready": false}: nothing fired
    server.answer("ready", 200, {"ready": True})
    wait_for(lambda: executions(namespace), 30, "an execution once the condition holds")
    execution = wait_for(lambda: Execution.objects.filter(namespace=namespace, state__in=TERMINAL_VALUES).first(),
                         60, "the execution to end")
    assert execution.state == "SUCCESS"
    assert execution.trigger["id"] == "watch"
    assert execution.trigger["variables"]["code"] == 200
    assert execution.task_runs.get(task_id="show").outputs == {"value": "200 true application/json"}
    # stopAfter: [SUCCESS] switched it off; it started that one execution only.
    wait_for(lambda: state_of(namespace).disabled, 30, "stopAfter to disable the trigger")
    assert len(executions(namespace)) == 1


def test_interval_is_honoured_within_a_second(scheduler, namespace, server):
    deploy(http_flow(namespace, server.url("/poll/spacing"), interval="PT2S"))
    wait_for(lambda: len(server.polls("spacing")) >= 6, 60, "six evaluations")
    measured = gaps(server.polls("spacing")[:6])
    print("HTTP trigger, interval PT2S: gaps between calls", [round(gap, 3) for gap in measured])
    assert all(abs(gap - 2.0) < 1.0 for gap in measured), measured
    assert executions(namespace) == []


def test_evaluations_never_overlap_even_with_two_schedulers(scheduler, namespace, server):
    scheduler.start("scheduler-2", "scheduler")
    # Each call takes 2.5 s, longer than the interval: the next waits for the last one's result.
    deploy(http_flow(namespace, server.url("/poll/slow?sleep=2.5"), interval="PT1S"))
    wait_for(lambda: len(server.polls("slow")) >= 4 and server.polls("slow")[3]["end"], 90, "four evaluations")
    calls = server.polls("slow")[:4]
    for earlier, later in zip(calls, calls[1:]):
        assert later["start"] >= earlier["end"], calls


def test_no_evaluation_while_its_execution_runs(scheduler, namespace, server):
    server.answer("busy", 200, {"ready": True})
    sleeping = """  - id: work
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT3S"""
    deploy(http_flow(namespace, server.url("/poll/busy"), task=sleeping))
    wait_for(lambda: len(executions(namespace)) >= 2, 90, "a second execution")
    first = Execution.objects.get(pk=executions(namespace)[0].pk)
    assert first.state == "SUCCESS" and first.end_date is not None
    running = (first.start_date.timestamp(), first.end_date.timestamp())
    during = [call for call in server.polls("busy") if running[0] < call["start"] < running[1]]
    assert during == [], (running, server.polls("busy"))
    assert len(server.polls("busy")) >= 2


def test_a_worker_group_without_worker_is_not_evaluated(scheduler, namespace, server):
    deploy(http_flow(namespace, server.url("/poll/gpu"), flow_id="on-gpu",
                     extra="    workerGroup:\n      key: gpu\n"))
    deploy(http_flow(namespace, server.url("/poll/default"), flow_id="on-default"))
    # While the default group's trigger is evaluated three times, the gpu one is not once.
    wait_for(lambda: results_applied(namespace, server, "default", 3, "on-default"), 60, "three evaluations")
    assert server.polls("gpu") == []
    assert state_of(namespace, "on-gpu").evaluated_at is None
    scheduler.start("worker-gpu", "worker", "--worker-group", "gpu", "--concurrency", "1")
    try:
        scheduler.wait_ready(["worker.gpu"])
        wait_for(lambda: results_applied(namespace, server, "gpu", 2, "on-gpu"), 60, "evaluations on the gpu worker")
    finally:
        scheduler.stop("worker-gpu")


@pytest.mark.parametrize("trigger, problem", [
    ("type: io.kestra.plugin.core.http.Trigger\n    uri: http://example.com\n    interval: PT0.2S",
     "triggers[0].interval (line 11): an interval of 'PT0.2S' is too short: at least PT1S"),
    ("type: io.kestra.plugin.core.http.Trigger\n    uri: http://example.com\n    method: FETCH",
     "triggers[0].method (line 11): expected one of 'GET', 'POST'"),
    ("type: io.kestra.plugin.core.http.Trigger\n    interval: PT5S",
     "triggers[0].uri"),
    ("type: io.kestra.plugin.aws.s3.Trigger\n    bucket: in\n    action: MOVE",
     "action MOVE needs `moveTo`"),
    ("type: io.kestra.plugin.minio.Trigger\n    endpoint: http://minio:9000\n    bucket: in\n    action: NONE\n"
     "    regexp: '(['", "triggers[0].regexp (line 13): not a valid regular expression"),
    ("type: io.kestra.plugin.jdbc.postgresql.Trigger\n    url: jdbc:mysql://db/x\n    sql: SELECT 1",
     "triggers[0].url (line 10): expected a PostgreSQL JDBC URL starting with jdbc:postgresql://"),
    ("type: io.kestra.plugin.jdbc.postgresql.Trigger\n    url: jdbc:postgresql://db/x\n    sql: SELECT 1\n"
     "    fetchType: EVERYTHING", "triggers[0].fetchType (line 12): expected one of 'STORE', 'FETCH'"),
])
def test_bad_properties_are_refused_at_deploy(namespace, trigger, problem):
    source = f"""id: refused
namespace: {namespace}
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: watch
    {trigger}
"""
    with pytest.raises(FlowValidationError) as refused:
        deploy(source)
    assert problem in str(refused.value)
    assert not TriggerState.objects.filter(namespace=namespace).exists()

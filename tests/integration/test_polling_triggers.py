"""Polling triggers through real processes: the scheduler (its dispatch thread and its
consumer), the executor, workers of the default group and, when a test starts one, of another
group. The HTTP trigger polls a local test server that records each call; nothing sleeps a
fixed time, every wait polls with a deadline."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.flowlang.errors import FlowValidationError
from orchestrator.models import TERMINAL_VALUES, Execution
from orchestrator.repository import deploy
from scheduler.models import TriggerState
from tests.harness import ROOT, wait_for
from tests.httpserver import LocalServer
from tests.integration.test_local import free_port, local_env, manage
from tests.integration.test_schedule import settle
from tests.integration.test_storage import s3_endpoint  # noqa: F401 (the moto S3 server, a fixture)

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


def test_conditions_are_judged_on_what_the_evaluation_found(scheduler, namespace, server):
    server.answer("judged", 200, {"ready": True})
    condition = ("    conditions:\n      - type: io.kestra.plugin.core.condition.Expression\n"
                 "        expression: \"{{ trigger.code == 201 }}\"\n")
    deploy(http_flow(namespace, server.url("/poll/judged"), condition="{{ response.statusCode < 400 }}",
                     extra=condition))
    wait_for(lambda: results_applied(namespace, server, "judged", 3), 60, "three evaluations")
    assert executions(namespace) == []  # the response condition holds, the trigger's condition does not
    server.answer("judged", 201, {"ready": True})
    execution = wait_for(lambda: ended(namespace, 1), 60, "an execution once the condition holds")[0]
    assert execution.trigger["variables"]["code"] == 201


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
    scheduler.start("worker-gpu", "worker", "--worker-group", "gpu", "--concurrency", "1")
    try:
        wait_for(lambda: results_applied(namespace, server, "gpu", 2, "on-gpu"), 120, "evaluations on the gpu worker")
    finally:
        scheduler.stop("worker-gpu")


@pytest.fixture
def short_lease_scheduler(cluster, namespace):
    cluster.start("scheduler", "scheduler", env={"HARRIER_POLL_LEASE_SECONDS": "6"})
    cluster.wait_ready(["scheduler"])
    yield cluster
    for name in ("scheduler", "worker-gpu", "worker-gpu-2"):
        if name in cluster.processes:
            cluster.stop(name)
    settle(namespace)


def test_the_lease_of_a_dead_workers_evaluation_expires(short_lease_scheduler, namespace, server):
    cluster = short_lease_scheduler
    # One process, its jobs in threads: killing it kills the evaluation.
    cluster.start("worker-gpu", "worker", "--worker-group", "gpu", "--pool", "threads", "--concurrency", "1")
    deploy(http_flow(namespace, server.url("/poll/hang?sleep=60"), extra="    workerGroup:\n      key: gpu\n"))
    first = wait_for(lambda: server.polls("hang"), 120, "the first evaluation, once the gpu worker is up")[0]
    cluster.stop("worker-gpu", kill=True)
    cluster.start("worker-gpu-2", "worker", "--worker-group", "gpu", "--pool", "threads", "--concurrency", "1")
    second = wait_for(lambda: server.polls("hang")[1:], 120, "an evaluation once the lease expired")[0]
    waited = second["start"] - first["start"]
    print(f"a dead worker's evaluation was taken over after {waited:.2f} s (lease 6 s)")
    assert waited >= 6 - 1.5, waited  # not before its lease ended (counted from the dispatch, a little earlier)


@pytest.mark.parametrize("trigger, problem", [
    ("type: io.kestra.plugin.core.http.Trigger\n    uri: http://example.com\n    interval: PT0.2S",
     "triggers[0].interval (line 11): an interval of 'PT0.2S' is too short: at least PT1S"),
    ("type: io.kestra.plugin.core.http.Trigger\n    uri: http://example.com\n    method: FETCH",
     "triggers[0].method (line 11): expected one of 'GET', 'POST'"),
    ("type: io.kestra.plugin.core.http.Trigger\n    interval: PT5S",
     "triggers[0].uri"),
    ("type: io.kestra.plugin.core.http.Trigger\n    uri: http://example.com\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: a\n        flowId: b",
     "cannot be used on a polling trigger; use one of"),
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


def wait_evaluations(namespace: str, flow_id: str, count: int, timeout: float = 60) -> None:
    """Until `count` more evaluations of the flow's trigger have had their result applied."""
    seen: set = set()

    def applied() -> bool:
        state = state_of(namespace, flow_id)
        if state.evaluated_at is not None and not state.locked_by:
            seen.add(state.last_date)
        return len(seen) > count  # the first one seen may be from before the call

    wait_for(applied, timeout, f"{count} evaluations of {flow_id}")


def ended(namespace: str, count: int) -> list[Execution]:
    done = list(Execution.objects.filter(namespace=namespace, state__in=TERMINAL_VALUES).order_by("start_date"))
    return done if len(done) >= count else []


# --- PostgreSQL ---------------------------------------------------------------------------------

@pytest.fixture
def source_database():
    """A database of the test's own, outside Harrier's, with an `orders` table."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    name = f"{db['NAME']}_source"
    admin = dict(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=name, autocommit=True) as source:
        source.execute("CREATE TABLE orders (id serial PRIMARY KEY, name text, amount numeric(10, 2), "
                       "placed timestamptz DEFAULT '2025-03-01T10:00:00Z', processed boolean DEFAULT false)")
        yield source, f"jdbc:postgresql://{db['HOST']}:{db['PORT']}/{name}"
    with psycopg.connect(**admin) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_postgresql_query_fires_when_it_returns_rows(scheduler, namespace, source_database):
    source, url = source_database
    deploy(f"""
id: orders
namespace: {namespace}
tasks:
  - id: count
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.size }}}} orders"
triggers:
  - id: watch
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    url: {url}
    username: postgres
    sql: UPDATE orders SET processed = true WHERE NOT processed RETURNING id, name, amount, placed
    fetchType: FETCH
    interval: PT1S
""")
    wait_evaluations(namespace, "orders", 2)
    assert executions(namespace) == []  # no rows: nothing fired
    source.execute("INSERT INTO orders (name, amount) VALUES ('tea', 3.50), ('cake', 12)")
    first = wait_for(lambda: ended(namespace, 1), 60, "the execution of the new rows")[0]
    assert first.state == "SUCCESS"
    assert first.task_runs.get(task_id="count").outputs == {"value": "2 orders"}
    variables = first.trigger["variables"]
    assert variables["size"] == 2
    assert sorted(variables["rows"], key=lambda row: row["id"]) == [
        {"id": 1, "name": "tea", "amount": 3.5, "placed": "2025-03-01T10:00:00+00:00"},
        {"id": 2, "name": "cake", "amount": 12, "placed": "2025-03-01T10:00:00+00:00"},
    ]
    wait_evaluations(namespace, "orders", 2)  # the rows are processed: the query returns none
    assert len(executions(namespace)) == 1
    source.execute("INSERT INTO orders (name, amount) VALUES ('pie', 4)")
    second = wait_for(lambda: ended(namespace, 2), 60, "the execution of the third row")[1]
    assert [row["name"] for row in second.trigger["variables"]["rows"]] == ["pie"]


def test_a_query_can_give_its_first_row_or_store_its_rows(scheduler, namespace, source_database):
    source, url = source_database
    template = """
id: {flow_id}
namespace: {namespace}
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{format}"
triggers:
  - id: watch
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    url: {url}
    username: postgres
    sql: UPDATE orders SET processed = true WHERE NOT processed AND name LIKE '{prefix}%' RETURNING id, name
    fetchType: {fetch_type}
    interval: PT1S
"""
    deploy(template.format(flow_id="first-row", namespace=namespace, url=url, prefix="one-", fetch_type="FETCH_ONE",
                           format="{{ trigger.size }} {{ trigger.row.name }}"))
    deploy(template.format(flow_id="stored", namespace=namespace, url=url, prefix="store-", fetch_type="STORE",
                           format="{{ read(trigger.uri) | trim }}"))
    source.execute("INSERT INTO orders (name) VALUES ('one-a'), ('store-b'), ('store-c')")
    done = wait_for(lambda: ended(namespace, 2), 60, "both executions")
    outputs = {e.flow_id: e.task_runs.get(task_id="show").outputs["value"] for e in done}
    assert outputs["first-row"] == "1 one-a"
    lines = sorted(outputs["stored"].splitlines())
    assert lines == ['{"id":2,"name":"store-b"}', '{"id":3,"name":"store-c"}']


# --- S3 / MinIO ---------------------------------------------------------------------------------

@pytest.fixture
def bucket(s3_endpoint):  # noqa: F811
    import uuid

    from minio import Minio

    client = Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1")
    name = f"inbox-{uuid.uuid4().hex[:10]}"
    client.make_bucket(name)
    return client, name


def put(client, bucket_name: str, key: str, text: str) -> None:
    import io

    data = text.encode()
    client.put_object(bucket_name, key, io.BytesIO(data), length=len(data))


def keys(client, bucket_name: str) -> list[str]:
    return sorted(item.object_name for item in client.list_objects(bucket_name, recursive=True))


def objects_flow(namespace: str, endpoint: str, bucket_name: str, action: str) -> str:
    move = "\n    moveTo:\n      key: archive" if action == "MOVE" else ""
    return f"""
id: objects
namespace: {namespace}
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{% for object in trigger.objects %}}{{{{ object.key }}}}={{{{ read(object.uri) }}}};{{% endfor %}}"
triggers:
  - id: watch
    type: io.kestra.plugin.minio.Trigger
    endpoint: http://{endpoint}
    accessKeyId: testing
    secretKeyId: "{{{{ 'test' ~ 'ing' }}}}"
    region: us-east-1
    bucket: {bucket_name}
    prefix: in/
    action: {action}{move}
    interval: PT1S
"""


def test_an_s3_object_fires_once(scheduler, namespace, s3_endpoint, bucket):  # noqa: F811
    client, name = bucket
    put(client, name, "in/a.csv", "alpha")
    put(client, name, "in/b.csv", "beta")
    put(client, name, "elsewhere/c.csv", "not under the prefix")
    deploy(objects_flow(namespace, s3_endpoint, name, "NONE"))
    first = wait_for(lambda: ended(namespace, 1), 60, "the execution of the first objects")[0]
    assert first.state == "SUCCESS"
    assert first.task_runs.get(task_id="read").outputs == {"value": "in/a.csv=alpha;in/b.csv=beta;"}
    fired = first.trigger["variables"]["objects"]
    assert [(o["key"], o["size"]) for o in fired] == [("in/a.csv", 5), ("in/b.csv", 4)]
    # Downloaded into the internal storage, among the execution's own files.
    assert all(f"/executions/{first.id}/trigger/watch/in/" in o["uri"] for o in fired)
    wait_evaluations(namespace, "objects", 3)
    assert len(executions(namespace)) == 1  # action NONE: the objects stay, and fire no more
    put(client, name, "in/d.csv", "delta")
    second = wait_for(lambda: ended(namespace, 2), 60, "the execution of the new object")[1]
    assert second.task_runs.get(task_id="read").outputs == {"value": "in/d.csv=delta;"}
    assert keys(client, name) == ["elsewhere/c.csv", "in/a.csv", "in/b.csv", "in/d.csv"]


def test_moved_objects_leave_the_prefix(scheduler, namespace, s3_endpoint, bucket):  # noqa: F811
    client, name = bucket
    put(client, name, "in/report.csv", "q1")
    deploy(objects_flow(namespace, s3_endpoint, name, "MOVE"))
    execution = wait_for(lambda: ended(namespace, 1), 60, "the execution of the object")[0]
    assert execution.task_runs.get(task_id="read").outputs == {"value": "in/report.csv=q1;"}
    assert keys(client, name) == ["archive/report.csv"]
    wait_evaluations(namespace, "objects", 2)
    assert len(executions(namespace)) == 1


# --- server local -------------------------------------------------------------------------------

def test_server_local_evaluates_polling_triggers(tmp_path, server):
    flow = tmp_path / "local-poll.yaml"
    flow.write_text(f"""id: local-poll
namespace: tests
tasks:
  - id: report
    type: io.kestra.plugin.core.http.Request
    uri: "{server.url('/poll/ran')}?code={{{{ trigger.code }}}}"
triggers:
  - id: watch
    type: io.kestra.plugin.core.http.Trigger
    uri: "{server.url('/poll/local')}"
    interval: PT1S
    stopAfter: [SUCCESS]
""")
    deployed = manage(tmp_path, "flow", "deploy", str(flow))
    assert deployed.returncode == 0, deployed.stderr
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "server", "local", "--no-example", "--port", str(free_port())],
        env=local_env(tmp_path / "home"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        wait_for(lambda: server.polls("ran"), 90, "the execution the trigger started to call back")
    finally:
        process.terminate()
        process.wait(20)
    assert server.polls("local")  # the trigger's call came first
    assert [path for _, path, _ in server.requests if path.startswith("/poll/ran")] == ["/poll/ran?code=200"]


def test_a_trigger_id_that_changes_kind_follows_its_new_type(namespace):
    from django_celery_beat.models import PeriodicTask

    schedule = f"""id: switching
namespace: {namespace}
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: watch
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
"""
    polling = schedule.replace("type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 3 * * *\"",
                               "type: io.kestra.plugin.core.http.Trigger\n    uri: http://example.com")
    beat_task = PeriodicTask.objects.filter(name=f"harrier schedule {namespace}.switching watch")
    deploy(schedule)
    assert state_of(namespace, "switching").kind == "schedule" and beat_task.exists()
    deploy(polling)
    assert state_of(namespace, "switching").kind == "polling" and not beat_task.exists()
    deploy(schedule)
    assert state_of(namespace, "switching").kind == "schedule" and beat_task.exists()

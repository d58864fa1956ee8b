"""Executions created with a `scheduleDate` (the API's query parameter, the Subflow task's
property): stored in CREATED with the date, started by the executor's delay loop at that date —
also after an executor restart — and killable before it. Real executor and worker processes."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.models import Delay, Execution
from orchestrator.repository import iso
from orchestrator.storage import get_storage, namespace_file_uri
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HELLO = """
id: hello
namespace: tests
tasks:
  - id: answer
    type: io.kestra.plugin.core.debug.Return
    format: hello
"""

# One execution at a time; the others queue.
ONE_AT_A_TIME = """
id: single
namespace: tests
concurrency:
  limit: 1
tasks:
  - id: answer
    type: io.kestra.plugin.core.debug.Return
    format: hello
"""

# Fails when it runs 2 s: counted from its scheduleDate, not from its creation.
WITH_SLA = """
id: bounded
namespace: tests
sla:
  - id: quick
    type: MAX_DURATION
    behavior: FAIL
    duration: PT2S
tasks:
  - id: answer
    type: io.kestra.plugin.core.debug.Return
    format: hello
"""

PARENT = """
id: parent
namespace: tests
tasks:
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: "{{ flow.namespace }}"
    flowId: hello
    scheduleDate: "{{ now() | dateAdd(2, 'SECONDS') }}"
"""

BAD_PARENT = """
id: parent
namespace: tests
tasks:
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: "{{ flow.namespace }}"
    flowId: hello
    scheduleDate: "next tuesday"
"""

FAN = """
id: fan
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ namespace_file }}"
    batch:
      rows: 2
    namespace: "{{ flow.namespace }}"
    flowId: hello
    scheduleDate: "{{ now() | dateAdd(2, 'SECONDS') }}"
"""

# The delay loop looks at the repository at least twice a second.
LATENESS = timedelta(seconds=1.5)


def deploy(client, source: str, namespace: str) -> None:
    response = client.post("/api/v1/flows", with_namespace(source, namespace), content_type="application/x-yaml")
    assert response.status_code == 200, response.content


def in_seconds(seconds: float) -> datetime:
    """A moment from now, to the millisecond (what Kestra's dates keep)."""
    return milliseconds(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def milliseconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def create(client, namespace: str, flow_id: str, at: datetime) -> dict:
    response = client.post(f"/api/v1/executions/{namespace}/{flow_id}?scheduleDate={iso(at)}")
    assert response.status_code == 200, response.content
    return response.json()


def started_at(execution: Execution) -> datetime:
    """When it went RUNNING, from its state history."""
    stamp = next(entry["date"] for entry in execution.state_history if entry["state"] == "RUNNING")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def ended(execution_id: str, timeout: float = 30) -> Execution:
    return wait_for(lambda: finished(execution_id), timeout, f"execution {execution_id} to end")


def stays_created_until(execution_id: str, moment: datetime) -> None:
    """Poll until shortly before `moment`, failing as soon as the execution has left CREATED."""
    def reached():
        state = Execution.objects.get(id=execution_id).state
        assert state == "CREATED", f"execution {execution_id} is {state} before its scheduleDate"
        return datetime.now(timezone.utc) >= moment - timedelta(seconds=0.2)
    wait_for(reached, 30, "the scheduleDate to come near")


def assert_started_on_time(execution: Execution, scheduled: datetime) -> None:
    assert execution.state == "SUCCESS"
    scheduled = milliseconds(scheduled)
    started = started_at(execution)
    assert started >= scheduled
    assert started - scheduled < LATENESS, f"started {started - scheduled} after its scheduleDate"


def test_an_execution_waits_in_created_until_its_schedule_date(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    scheduled = in_seconds(3)
    created = create(staff, namespace, "hello", scheduled)
    assert created["state"]["current"] == "CREATED"
    assert created["scheduleDate"] == iso(scheduled)
    assert staff.get(f"/api/v1/executions/{created['id']}").json()["scheduleDate"] == iso(scheduled)
    stays_created_until(created["id"], scheduled)
    done = ended(created["id"])
    assert_started_on_time(done, scheduled)
    assert not Delay.objects.filter(execution_id=created["id"]).exists()


def test_a_scheduled_execution_starts_after_an_executor_restart(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    scheduled = in_seconds(4)
    created = create(staff, namespace, "hello", scheduled)
    cluster.processes["executor"].send_signal(signal.SIGKILL)
    cluster.processes.pop("executor").wait(10)
    cluster.start("executor", "executor", "--concurrency", "2")
    cluster.wait_ready(["executor"])
    done = ended(created["id"])
    assert done.state == "SUCCESS"
    assert started_at(done) >= scheduled


def test_a_past_schedule_date_starts_now(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    scheduled = in_seconds(-3600)
    created = create(staff, namespace, "hello", scheduled)
    done = ended(created["id"])
    assert done.state == "SUCCESS"
    assert done.schedule_date == scheduled


def test_a_scheduled_execution_is_killed_before_its_date(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    created = create(staff, namespace, "hello", in_seconds(600))
    assert Delay.objects.filter(execution_id=created["id"], kind=Delay.START).exists()
    assert staff.delete(f"/api/v1/executions/{created['id']}/kill").status_code == 202
    killed = Execution.objects.get(id=created["id"])
    assert killed.state == "KILLED"
    assert "RUNNING" not in [entry["state"] for entry in killed.state_history]
    assert not Delay.objects.filter(execution_id=created["id"]).exists()


def test_a_scheduled_execution_does_not_hold_back_the_flows_queue(cluster, staff, namespace):
    """With a concurrency limit, an execution waiting for its date is not first in line: one
    created after it starts at once; the scheduled one still starts at its date."""
    deploy(staff, ONE_AT_A_TIME, namespace)
    scheduled = in_seconds(3)
    later = create(staff, namespace, "single", scheduled)
    now_ = staff.post(f"/api/v1/executions/{namespace}/single").json()
    assert ended(now_["id"]).state == "SUCCESS"
    assert Execution.objects.get(id=later["id"]).state == "CREATED"
    assert_started_on_time(ended(later["id"]), scheduled)


def test_a_max_duration_sla_counts_from_the_schedule_date(cluster, staff, namespace):
    deploy(staff, WITH_SLA, namespace)
    scheduled = in_seconds(3)
    created = create(staff, namespace, "bounded", scheduled)
    assert_started_on_time(ended(created["id"]), scheduled)


@pytest.mark.parametrize("value, reason", [
    ("tomorrow", "not an ISO-8601 date-time"),
    ("2024-13-40T10:00:00Z", "not an ISO-8601 date-time"),
])
def test_a_bad_schedule_date_is_refused(cluster, staff, namespace, value, reason):
    deploy(staff, HELLO, namespace)
    response = staff.post(f"/api/v1/executions/{namespace}/hello?scheduleDate={value}")
    assert response.status_code == 400
    body = response.json()
    assert "scheduleDate" in body["message"] and reason in body["message"]
    assert not Execution.objects.filter(namespace=namespace).exists()


def test_a_subflow_starts_its_child_at_its_schedule_date(cluster, staff, namespace):
    deploy(staff, HELLO, namespace)
    deploy(staff, PARENT, namespace)
    parent = staff.post(f"/api/v1/executions/{namespace}/parent").json()
    child = wait_for(lambda: Execution.objects.filter(parent_id=parent["id"]).first(), 30, "the child execution")
    assert child.schedule_date is not None and child.schedule_date > child.start_date
    assert ended(parent["id"]).state == "SUCCESS"
    assert_started_on_time(Execution.objects.get(id=child.id), child.schedule_date)


def test_for_each_item_starts_each_batch_at_its_schedule_date(cluster, staff, namespace):
    uri = namespace_file_uri(namespace, "items.txt")
    get_storage().put(uri, b"a\nb\nc\nd\n")
    deploy(staff, HELLO, namespace)
    deploy(staff, FAN.replace("{{ namespace_file }}", uri), namespace)
    parent = staff.post(f"/api/v1/executions/{namespace}/fan").json()
    assert ended(parent["id"]).state == "SUCCESS"
    children = list(Execution.objects.filter(parent_id=parent["id"]))
    assert len(children) == 2
    for child in children:
        assert child.schedule_date is not None and child.schedule_date > child.start_date
        assert_started_on_time(child, child.schedule_date)


def test_a_subflow_with_a_bad_schedule_date_fails_with_the_reason(cluster, staff, namespace):
    from orchestrator.models import LogEntry

    deploy(staff, HELLO, namespace)
    deploy(staff, BAD_PARENT, namespace)
    parent = staff.post(f"/api/v1/executions/{namespace}/parent").json()
    assert ended(parent["id"]).state == "FAILED"
    messages = list(LogEntry.objects.filter(execution_id=parent["id"], level="ERROR").values_list("message", flat=True))
    assert any("scheduleDate" in message and "next tuesday" in message for message in messages), messages
    assert not Execution.objects.filter(parent_id=parent["id"]).exists()


def test_flow_run_starts_at_its_schedule_date(tmp_path):
    from tests.integration.test_local import flow_run

    scheduled = in_seconds(3)
    completed = flow_run(tmp_path, HELLO, "--json", "--schedule-date", iso(scheduled))
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["scheduleDate"] == iso(scheduled)
    running = next(entry["date"] for entry in document["state"]["histories"] if entry["state"] == "RUNNING")
    started = datetime.fromisoformat(running.replace("Z", "+00:00"))
    assert scheduled <= started < scheduled + LATENESS


def test_flow_run_refuses_a_bad_schedule_date(tmp_path):
    from tests.integration.test_local import flow_run

    completed = flow_run(tmp_path, HELLO, "--schedule-date", "2030-01-31T12:00:00")
    assert completed.returncode != 0
    assert "--schedule-date" in completed.stderr and "no time zone" in completed.stderr
    assert "Traceback" not in completed.stderr

"""Lost and duplicated messages: PostgreSQL is the truth, the broker only transport."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest

from orchestrator import bus, messages
from orchestrator.models import TaskRun
from orchestrator.repository import create_execution, deploy, now
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLOW = """
id: recover
namespace: tests
tasks:
  - id: one
    type: io.kestra.plugin.core.debug.Return
    format: "1"
  - id: two
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.one.value }}2"
"""


class RecordingBus:
    """Keeps messages instead of sending them: what a crash between commit and publish loses."""

    def __init__(self):
        self.sent = []

    def publish(self, queue_name, task_name, payload):
        self.sent.append((queue_name, task_name, payload))


@pytest.fixture
def lost_messages():
    recording = RecordingBus()
    bus.set_bus(recording)
    yield recording
    bus.set_bus(None)


def test_an_execution_whose_first_message_was_lost_still_runs(cluster, namespace, lost_messages):
    flow, _ = deploy(with_namespace(FLOW, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    assert [m[0] for m in lost_messages.sent] == ["executor"]  # published, and then lost
    done = wait_for(lambda: finished(execution.id), 30, "the reconciler to recover the execution")
    assert done.state == "SUCCESS"
    assert TaskRun.objects.get(execution=done, task_id="two").outputs == {"value": "12"}


def test_a_job_lost_on_its_way_to_the_worker_is_sent_again(cluster, namespace, lost_messages):
    from executor.service import handle_message

    flow, _ = deploy(with_namespace(FLOW, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    handle_message(messages.evaluate(execution.id))  # the executor step runs here; its job is lost
    assert [m[0] for m in lost_messages.sent] == ["executor", "worker.default"]
    run = TaskRun.objects.get(execution_id=execution.id, task_id="one")
    assert run.state == "CREATED"
    done = wait_for(lambda: finished(execution.id), 30, "the lost job to be sent again")
    assert done.state == "SUCCESS"
    # sent again, run once
    assert len(TaskRun.objects.get(id=run.id).attempts) == 1


def test_a_message_that_finds_the_database_connection_closed_is_handled_on_a_new_one(cluster, namespace,
                                                                                    lost_messages):
    """The executor sends no health check before each message: a connection the server closed
    meanwhile costs the message a second try, not the message."""
    import psycopg
    from django.db import connection

    from executor.tasks import process
    from tests.harness import database_url

    flow, _ = deploy(with_namespace(FLOW, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    connection.ensure_connection()
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    process(messages.evaluate(execution.id))  # the step runs here; its job is lost
    assert TaskRun.objects.get(execution_id=execution.id, task_id="one").state == "CREATED"
    assert [m[0] for m in lost_messages.sent] == ["executor", "worker.default"]


def test_killing_the_executor_mid_execution_loses_nothing(cluster, namespace):
    source = """
id: slow
namespace: tests
tasks:
  - id: first
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: second
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: done
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id).exists(), 30, "the first task run")
    cluster.processes["executor"].send_signal(signal.SIGKILL)
    cluster.processes.pop("executor").wait(10)
    cluster.start("executor", "executor", "--concurrency", "2")
    done = wait_for(lambda: finished(execution.id), 60, "the execution to end after the executor restart")
    assert done.state == "SUCCESS"
    runs = TaskRun.objects.filter(execution=done)
    assert sorted(run.task_id for run in runs) == ["first", "last", "second"]
    assert all(len(run.attempts) == 1 for run in runs)


def test_a_duplicate_and_a_stale_result_change_nothing(cluster, namespace, lost_messages):
    """Drive one step by hand, then deliver the worker's result three ways."""
    from executor.service import handle_message
    from workers.runtime import run_job

    # Group `gpu` has no worker in this cluster: should the reconciler send the jobs again
    # meanwhile, nobody runs them.
    source = FLOW.replace('format: "1"', 'format: "1"\n    workerGroup: {key: gpu}')
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    handle_message(messages.evaluate(execution.id))
    job = next(m[2] for m in lost_messages.sent if m[0] == "worker.gpu")
    result = run_job(job)

    handle_message(messages.result(execution.id, result))
    first = TaskRun.objects.get(id=job["taskRunId"])
    snapshot = (first.state, first.state_history, first.attempts, first.outputs)
    runs_after_first = TaskRun.objects.filter(execution_id=execution.id).count()

    handle_message(messages.result(execution.id, result))  # the same result again
    handle_message(messages.result(execution.id, {**result, "attempt": 7, "state": "FAILED"}))  # stale
    again = TaskRun.objects.get(id=job["taskRunId"])
    assert (again.state, again.state_history, again.attempts, again.outputs) == snapshot
    assert snapshot[0] == "SUCCESS"
    assert TaskRun.objects.filter(execution_id=execution.id).count() == runs_after_first == 2


def test_the_reconciler_leaves_running_work_alone(cluster, namespace):
    """A job a worker has claimed is not sent again, however long it runs."""
    source = """
id: long
namespace: tests
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT4S
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    done = wait_for(lambda: finished(execution.id), 30, "the execution")
    assert done.state == "SUCCESS"
    run = TaskRun.objects.get(execution=done)
    assert len(run.attempts) == 1
    assert done.end_date - done.start_date >= timedelta(seconds=4)
    assert done.end_date <= now()

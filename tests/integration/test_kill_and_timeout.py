"""Killing an execution and task timeouts, through real executor and worker processes."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from executor.service import NotKillable, kill_execution
from orchestrator.models import Execution, LogEntry, TaskRun
from orchestrator.repository import create_execution, deploy
from tests.harness import wait_for, with_namespace
from workers.claims import claim_key, get_claims

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LONG = """
id: long
namespace: tests
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: sleep
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT60S
      - id: wait
        type: io.kestra.plugin.core.flow.Pause
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
"""


def _worker_stopped(execution_id):
    return LogEntry.objects.filter(execution_id=execution_id, task_id="sleep",
                                   message__contains="the task stopped").exists()


def test_killing_an_execution_kills_its_task_runs_and_stops_the_worker(cluster, namespace):
    flow, _ = deploy(with_namespace(LONG, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: Execution.objects.get(id=execution.id).state == "PAUSED", 30, "the execution to pause")
    sleep = wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id, task_id="sleep").first(), 30,
                     "the sleep")
    # Killed once a worker runs it (a job still waiting is dropped without running: no log).
    wait_for(lambda: get_claims().is_claimed(claim_key(sleep.id, 1)), 30, "a worker to start the sleep")
    kill_execution(execution.id)
    done = Execution.objects.get(id=execution.id)
    assert done.state == "KILLED"
    assert [h["state"] for h in done.state_history][-2:] == ["KILLING", "KILLED"]
    assert set(TaskRun.objects.filter(execution=done).values_list("state", flat=True)) == {"KILLED"}
    assert not TaskRun.objects.filter(execution=done, task_id="never").exists()
    # The worker sees the kill within a second and stops its Sleep of a minute.
    wait_for(lambda: _worker_stopped(execution.id), 10, "the worker to stop the task")
    with pytest.raises(NotKillable):
        kill_execution(execution.id)


def test_killing_a_parent_kills_the_subflow_it_waits_for(cluster, namespace):
    child_source = """
id: sleepy
namespace: tests
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""
    parent_source = f"""
id: caller
namespace: tests
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {namespace}
    flowId: sleepy
"""
    deploy(with_namespace(child_source, namespace))
    flow, _ = deploy(with_namespace(parent_source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    child = wait_for(lambda: Execution.objects.filter(parent_id=execution.id).first(), 30, "the child execution")
    out = io.StringIO()
    call_command("execution", "kill", execution.id, stdout=out)  # as an operator would
    assert out.getvalue().strip() == f"Execution {execution.id} is KILLED"
    assert Execution.objects.get(id=execution.id).state == "KILLED"
    assert Execution.objects.get(id=child.id).state == "KILLED"


def test_a_task_running_longer_than_its_timeout_fails_and_can_be_retried(run_flow):
    source = """
id: slow
namespace: tests
tasks:
  - id: slow
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
    timeout: PT0.5S
    retry: {type: constant, interval: PT0.1S, maxAttempt: 2}
errors:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "{{ errorLogs()[0].message }}"
"""
    outcome = run_flow(source, timeout=20, expect_logs=3)
    assert outcome.state == "FAILED"
    slow = outcome.run("slow")
    assert [attempt["state"]["current"] for attempt in slow.attempts] == ["FAILED", "FAILED"]
    assert "Timeout: the task ran longer than PT0.5S" in slow.attempts[-1]["error"]
    assert any("Timeout" in line for line in outcome.logs_of("report"))


def test_the_execution_command_names_what_is_wrong(cluster):
    with pytest.raises(CommandError, match="execution nope does not exist"):
        call_command("execution", "kill", "nope")

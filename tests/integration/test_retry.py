"""Retries through real executor and worker processes: attempts on one task run, delays kept in
the repository, and an executor killed while a retry waits."""

from __future__ import annotations

import signal

import pytest

from orchestrator.models import Delay, TaskRun
from orchestrator.repository import create_execution, deploy
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLAKY = """
id: flaky
namespace: tests
tasks:
  - id: flaky
    type: io.kestra.plugin.core.log.Log
    message: "{{ taskrun.attemptsCount >= 2 ? 'third time lucky' : undefinedOnPurpose }}"
    retry:
      type: constant
      interval: PT0.2S
      maxAttempt: 5
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.flaky is defined }}"
"""


def test_a_failing_task_is_retried_on_the_same_task_run_until_it_succeeds(run_flow):
    outcome = run_flow(FLAKY, expect_logs=3)
    assert outcome.state == "SUCCESS"
    flaky = outcome.run("flaky")
    assert [attempt["state"]["current"] for attempt in flaky.attempts] == ["FAILED", "FAILED", "SUCCESS"]
    states = [h["state"] for h in flaky.state_history]
    assert states == ["CREATED", "RUNNING", "RETRYING", "CREATED", "RUNNING", "RETRYING", "CREATED", "RUNNING",
                      "SUCCESS"]
    assert outcome.logs_of("flaky")[-1] == "third time lucky"
    assert any("attempt 2 starts at" in line for line in outcome.logs_of("flaky"))
    assert [run.task_id for run in outcome.runs] == ["flaky", "after"]
    assert not Delay.objects.filter(execution_id=outcome.execution.id).exists()


def test_success_at_the_first_attempt_is_neither_retried_nor_a_warning(run_flow):
    source = """
id: first-attempt
namespace: tests
tasks:
  - id: fine
    type: io.kestra.plugin.core.log.Log
    message: foo
    retry: {type: constant, interval: PT0.25S, maxAttempt: 5, maxDuration: PT15S, warningOnRetry: true}
"""
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "SUCCESS"
    assert len(outcome.run("fine").attempts) == 1


def test_the_flow_retry_applies_to_tasks_without_their_own(run_flow):
    source = """
id: flow-retry
namespace: tests
retry:
  type: constant
  interval: PT0.1S
  maxAttempt: 2
tasks:
  - id: always
    type: io.kestra.plugin.core.execution.Fail
  - id: own
    type: io.kestra.plugin.core.execution.Fail
    retry: {type: constant, interval: PT0.1S, maxAttempt: 3}
"""
    outcome = run_flow(source)
    assert outcome.state == "FAILED"
    assert len(outcome.run("always").attempts) == 2
    assert "own" not in [run.task_id for run in outcome.runs]


def test_a_retry_waiting_while_the_executor_is_killed_runs_once_after_restart(cluster, namespace):
    source = """
id: retry-across-restart
namespace: tests
tasks:
  - id: fails
    type: io.kestra.plugin.core.execution.Fail
    retry: {type: constant, interval: PT3S, maxAttempt: 2}
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: Delay.objects.filter(execution_id=execution.id).exists(), 30, "the retry to be scheduled")
    cluster.processes["executor"].send_signal(signal.SIGKILL)
    cluster.processes.pop("executor").wait(10)
    cluster.start("executor", "executor", "--concurrency", "2")
    done = wait_for(lambda: finished(execution.id), 60, "the execution to end after the executor restart")
    assert done.state == "FAILED"
    run = TaskRun.objects.get(execution=done)
    assert len(run.attempts) == 2
    assert not Delay.objects.filter(execution_id=execution.id).exists()

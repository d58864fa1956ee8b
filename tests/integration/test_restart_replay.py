"""Restart, change of a task run's state and replay through real executor and worker processes."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from executor.service import NotApplicable, change_task_run_state, replay_execution, restart_execution
from orchestrator.models import TaskRun
from orchestrator.repository import deploy
from orchestrator.states import State
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# `broken` fails on every attempt: a restart shows new attempts on the same task runs, while
# `set-state` and a replay on a fixed revision are what let the execution finish.
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
errors:
  - id: alert
    type: io.kestra.plugin.core.log.Log
    message: alert
"""

FIXED = FLAKY.replace("""    type: io.kestra.plugin.core.execution.Fail
    errorMessage: broken""", """    type: io.kestra.plugin.core.debug.Return
    format: fixed""")


def _end(execution_id, history_length=0):
    def ended():
        execution = finished(execution_id)
        return execution if execution and len(execution.state_history) > history_length else None
    return wait_for(ended, 30, f"execution {execution_id} to end")


def test_restart_runs_the_failed_task_again_under_the_same_execution(run_flow):
    outcome = run_flow(FLAKY)
    assert outcome.state == "FAILED"
    before = len(outcome.execution.state_history)
    restart_execution(outcome.execution.id)
    again = _end(outcome.execution.id, before + 2)
    assert again.state == "FAILED"
    assert [h["state"] for h in again.state_history][-4:] == ["FAILED", "RESTARTED", "RUNNING", "FAILED"]
    broken = TaskRun.objects.get(execution=again, task_id="broken")
    assert len(broken.attempts) == 2
    assert TaskRun.objects.filter(execution=again, task_id="alert").count() == 1  # ran again, once
    with pytest.raises(NotApplicable, match="can be set to FAILED, SUCCESS, WARNING, not KILLED"):
        change_task_run_state(outcome.execution.id, broken.id, State.KILLED)


def test_marking_the_failed_task_successful_lets_the_execution_finish(run_flow):
    outcome = run_flow(FLAKY)
    broken = outcome.run("broken")
    before = len(outcome.execution.state_history)
    out = io.StringIO()
    call_command("execution", "set-state", outcome.execution.id, broken.id, "SUCCESS", stdout=out)
    done = _end(outcome.execution.id, before + 2)
    assert done.state == "SUCCESS"
    assert TaskRun.objects.get(execution=done, task_id="last").outputs == {"value": "one done"}
    assert not TaskRun.objects.filter(execution=done, task_id="alert").exists()


def test_replay_on_a_fixed_revision_keeps_what_ran_before(run_flow, namespace):
    outcome = run_flow(FLAKY)
    deploy(with_namespace(FIXED, namespace))
    replay = replay_execution(outcome.execution.id, outcome.run("broken").id, revision=2)
    done = _end(replay.id)
    assert done.state == "SUCCESS" and done.original_id == outcome.execution.id and done.flow_revision == 2
    runs = {run.task_id: run for run in TaskRun.objects.filter(execution=done)}
    assert sorted(runs) == ["broken", "first", "last"]
    assert runs["first"].outputs == {"value": "one"} and runs["first"].attempts == outcome.run("first").attempts
    assert runs["last"].outputs == {"value": "one done"}


def test_the_execution_command_refuses_what_does_not_apply(run_flow):
    outcome = run_flow(FIXED)
    assert outcome.state == "SUCCESS"
    with pytest.raises(CommandError, match="only a FAILED or KILLED execution can be restarted"):
        call_command("execution", "restart", outcome.execution.id)
    with pytest.raises(CommandError, match="has no task run nope"):
        call_command("execution", "replay", outcome.execution.id, "--from", "nope")


def test_restart_on_another_revision_is_a_new_execution_from_the_failed_task(run_flow, namespace):
    outcome = run_flow(FLAKY)
    deploy(with_namespace(FIXED, namespace))
    out = io.StringIO()
    call_command("execution", "restart", outcome.execution.id, "--revision", "2", stdout=out)
    new_id = out.getvalue().split()[1]
    done = _end(new_id)
    assert done.state == "SUCCESS" and done.original_id == outcome.execution.id and done.flow_revision == 2
    assert TaskRun.objects.get(execution=done, task_id="first").outputs == {"value": "one"}

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


CHILD = """
id: child
namespace: tests
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ read('mode.txt') == 'fail' }}"
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('mode.txt') }}"
outputs:
  - id: mode
    type: STRING
    value: "{{ outputs.say.value }}"
"""

PARENT = """
id: parent
namespace: tests
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {namespace}
    flowId: child{behavior}
"""


@pytest.mark.parametrize("behavior", ["RETRY_FAILED", "NEW_EXECUTION"])
def test_restarting_a_parent_restarts_its_failed_subflow_or_starts_a_new_one(cluster, namespace, behavior):
    from orchestrator.models import Execution
    from orchestrator.repository import create_execution
    from orchestrator.storage import get_storage, namespace_file_uri

    mode = namespace_file_uri(namespace, "mode.txt")
    get_storage().put(mode, b"fail")
    deploy(with_namespace(CHILD, namespace))
    flow, _ = deploy(with_namespace(PARENT.format(namespace=namespace, behavior=(
        "" if behavior == "RETRY_FAILED" else f"\n    restartBehavior: {behavior}")), namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    execution = wait_for(lambda: finished(execution.id), 60, "the parent to fail")
    assert execution.state == "FAILED"
    first = Execution.objects.get(parent_id=execution.id)
    assert first.state == "FAILED"

    get_storage().put(mode, b"pass")
    restart_execution(execution.id)
    execution = _end(execution.id, len(execution.state_history) + 2)
    assert execution.state == "SUCCESS"
    call = TaskRun.objects.get(execution=execution, task_id="call")
    children = list(Execution.objects.filter(parent_id=execution.id).order_by("start_date"))
    if behavior == "RETRY_FAILED":
        assert [child.id for child in children] == [first.id]
        assert [h["state"] for h in children[0].state_history][-3:] == ["RESTARTED", "RUNNING", "SUCCESS"]
    else:
        assert [child.id for child in children][0] == first.id and len(children) == 2
        assert children[0].state == "FAILED" and children[1].state == "SUCCESS"
    assert call.outputs == {"executionId": children[-1].id, "state": "SUCCESS", "outputs": {"mode": "pass"}}

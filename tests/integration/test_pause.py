"""Pause and resume through real executor and worker processes."""

from __future__ import annotations

import pytest

from executor.service import NotPaused, resume_execution
from orchestrator.models import Delay, Execution, LogEntry, TaskRun
from orchestrator.repository import create_execution, deploy
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

APPROVAL = """
id: approval
namespace: tests
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: asking
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    timeout: PT1H
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "approved: {{ outputs.approve.onResume.reason }}"
"""


def test_a_paused_execution_waits_for_resume_and_its_tasks_see_the_resume_inputs(cluster, namespace):
    flow, _ = deploy(with_namespace(APPROVAL, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: Execution.objects.get(id=execution.id).state == "PAUSED", 30, "the execution to pause")
    assert Delay.objects.filter(execution_id=execution.id, kind="timeout").count() == 1
    resume_execution(execution.id, {"reason": "looks good"})
    done = wait_for(lambda: finished(execution.id, expect_logs=2), 30, "the execution to end")
    assert done.state == "SUCCESS"
    assert [h["state"] for h in done.state_history] == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    messages = list(LogEntry.objects.filter(execution_id=execution.id, task_id="after").values_list("message", flat=True))
    assert messages == ["approved: looks good"]
    assert not Delay.objects.filter(execution_id=execution.id).exists()  # the timeout went with the pause
    with pytest.raises(NotPaused):
        resume_execution(execution.id)


def test_resume_inputs_are_typed_and_checked_by_on_resume(cluster, namespace):
    from orchestrator.inputs import InvalidInputs

    source = """
id: typed-resume
namespace: tests
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
      - id: budget
        type: INT
        required: false
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.approve.onResume.approved }} {{ outputs.approve.onResume.budget }}"
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: Execution.objects.get(id=execution.id).state == "PAUSED", 30, "the execution to pause")
    with pytest.raises(InvalidInputs) as refused:
        resume_execution(execution.id, {"budget": "lots"})
    assert "input `approved`" in str(refused.value) and "input `budget`" in str(refused.value)
    assert Execution.objects.get(id=execution.id).state == "PAUSED"  # nothing changed
    resume_execution(execution.id, {"approved": "true", "budget": "12"})
    wait_for(lambda: finished(execution.id, expect_logs=1), 30, "the execution to end")
    messages = list(LogEntry.objects.filter(execution_id=execution.id, task_id="after").values_list("message", flat=True))
    assert messages == ["true 12"]


def test_the_resume_task_resumes_its_own_execution_or_another(cluster, namespace):
    waiting = """
id: waiting
namespace: tests
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "resumed by {{ outputs.wait.onResume.by }}"
"""
    flow, _ = deploy(with_namespace(waiting, namespace))
    paused = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: Execution.objects.get(id=paused.id).state == "PAUSED", 30, "the execution to pause")
    resumer = f"""
id: resumer
namespace: tests
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: own-pause
        type: io.kestra.plugin.core.flow.Pause
      - id: resume-self
        type: io.kestra.plugin.core.execution.Resume
  - id: resume-other
    type: io.kestra.plugin.core.execution.Resume
    executionId: {paused.id}
    inputs:
      by: resumer
  - id: resume-missing
    type: io.kestra.plugin.core.execution.Resume
    executionId: nope
"""
    flow, _ = deploy(with_namespace(resumer, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    done = wait_for(lambda: finished(execution.id, expect_logs=1), 30, "the resumer to end")
    assert done.state == "FAILED"  # resume-missing
    states = dict(TaskRun.objects.filter(execution=done).values_list("task_id", "state"))
    assert states["own-pause"] == "SUCCESS" and states["resume-other"] == "SUCCESS"
    assert states["resume-missing"] == "FAILED"
    assert LogEntry.objects.filter(execution_id=execution.id, message__contains="execution nope does not exist").exists()
    wait_for(lambda: finished(paused.id, expect_logs=1), 30, "the other execution to end")
    assert list(LogEntry.objects.filter(execution_id=paused.id).values_list("message", flat=True)) == [
        "resumed by resumer"]

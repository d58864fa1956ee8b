"""Execution actions decided by the pure core: kill and resume."""

from __future__ import annotations

import pytest

from executor.core import ExecutionView, SetExecutionState, SetTaskRunState, TaskRunView
from executor.core.control import kill, resume
from executor.core.decide import apply_to_view
from orchestrator.states import State


def view(state, *runs):
    return ExecutionView(id="e", namespace="n", flow_id="f", flow_revision=1, state=state,
                         start_date="2026-01-01T00:00:00.000Z",
                         task_runs=tuple(TaskRunView(id=f"r{i}", task_id=f"t{i}", parent_id=None, state=s, seq=i)
                                         for i, s in enumerate(runs)))


def test_kill_goes_through_killing_and_kills_every_active_task_run_only():
    before = view(State.RUNNING, State.SUCCESS, State.CREATED, State.RUNNING, State.PAUSED, State.RETRYING,
                  State.FAILED)
    actions = kill(before)
    assert actions[0] == SetExecutionState(State.KILLING) and actions[-1] == SetExecutionState(State.KILLED)
    killed = {action.task_run_id for action in actions if isinstance(action, SetTaskRunState)}
    assert killed == {"r1", "r2", "r3", "r4"}
    after = apply_to_view(before, actions)
    assert [run.state for run in after.task_runs] == [State.SUCCESS, *[State.KILLED] * 4, State.FAILED]


@pytest.mark.parametrize("state", [State.CREATED, State.QUEUED, State.PAUSED])
def test_an_execution_not_yet_running_or_paused_can_be_killed(state):
    assert apply_to_view(view(state), kill(view(state))).state is State.KILLED


@pytest.mark.parametrize("state", [State.SUCCESS, State.FAILED, State.KILLED, State.CANCELLED])
def test_an_ended_execution_cannot_be_killed(state):
    with pytest.raises(ValueError, match="already ended"):
        kill(view(state))


def test_resume_runs_the_paused_task_runs_with_the_inputs_given():
    actions = resume(view(State.PAUSED, State.PAUSED, State.RUNNING), {"ok": True})
    assert actions == [SetTaskRunState("r0", State.RUNNING, outputs={"onResume": {"ok": True}}),
                       SetExecutionState(State.RUNNING)]

"""Restart, change of a task run's state and replay, decided by the pure core."""

from __future__ import annotations

import pytest

from executor.core import build_graph
from executor.core.control import change_state, replay_runs, restart
from executor.core.decide import apply_to_view
from orchestrator.states import State
from tests.unit.test_flowables_harness import FAIL, LOG, SEQ, Simulator, flow, task


def failing_flow():
    return flow(
        [task("a"), {"id": "seq", "type": SEQ, "tasks": [task("b", LOG, message="m")],
                     "errors": [task("seq-err", LOG, message="m")]}, task("c")],
        errors=[task("on-error", LOG, message="m")], finally_=[task("always", LOG, message="m")],
    )


def run_failed():
    sim = Simulator(failing_flow(), outcomes={"b": State.FAILED})
    sim.run_to_end()
    assert sim.view.state is State.FAILED
    return sim


def test_restart_runs_the_failed_task_again_as_a_new_attempt_and_removes_the_error_branches():
    sim = run_failed()
    actions = restart(sim.graph, sim.view)
    sim.view = apply_to_view(sim.view, actions)
    assert sim.view.state is State.RUNNING
    assert sorted(run.task_id for run in sim.view.task_runs) == ["a", "b", "seq"]  # errors and finally removed
    b = sim.run_of("b")
    assert b.state is State.CREATED
    changes = [a.state for a in actions if getattr(a, "task_run_id", None) == b.id and hasattr(a, "state")]
    assert changes == [State.RESTARTED, State.CREATED]
    assert [(a.task_run_id, a.attempt) for a in actions if type(a).__name__ == "Dispatch"] == [(b.id, 2)]
    sim.outcomes["b"] = State.SUCCESS
    sim.run_to_end()
    assert sim.view.state is State.SUCCESS
    assert sim.order() == ["a", "seq", "b", "c", "always"]


def test_only_a_failed_or_killed_execution_restarts():
    sim = Simulator(failing_flow())
    sim.run_to_end()
    with pytest.raises(ValueError, match="only a FAILED or KILLED execution"):
        restart(sim.graph, sim.view)


def test_a_failure_inside_an_errors_branch_is_not_restarted_itself():
    graph = flow([task("boom", FAIL)], errors=[task("handler", FAIL)])
    sim = Simulator(graph)
    sim.run_to_end()
    actions = restart(sim.graph, sim.view)
    sim.view = apply_to_view(sim.view, actions)
    assert [run.task_id for run in sim.view.task_runs] == ["boom"]


def test_marking_a_failed_task_successful_lets_the_execution_go_on():
    sim = run_failed()
    actions = change_state(sim.graph, sim.view, sim.run_of("b").id, State.SUCCESS)
    sim.view = apply_to_view(sim.view, actions)
    sim.run_to_end()
    assert sim.view.state is State.SUCCESS
    assert sim.run_of("b").state is State.SUCCESS and sim.run_of("c").state is State.SUCCESS


def test_marking_a_successful_task_failed_runs_the_error_branches():
    sim = Simulator(failing_flow())
    sim.run_to_end()
    actions = change_state(sim.graph, sim.view, sim.run_of("b").id, State.FAILED)
    sim.view = apply_to_view(sim.view, actions)
    sim.run_to_end()
    assert sim.view.state is State.FAILED
    assert sim.run_of("seq-err").state is State.SUCCESS and sim.run_of("on-error").state is State.SUCCESS


@pytest.mark.parametrize("state", [State.RUNNING, State.KILLED, State.SKIPPED])
def test_a_task_run_can_only_be_set_to_an_outcome(state):
    sim = run_failed()
    with pytest.raises(ValueError, match="can be set to"):
        change_state(sim.graph, sim.view, sim.run_of("b").id, state)


def test_a_running_task_run_cannot_change_state():
    sim = Simulator(failing_flow())
    sim.decide()
    with pytest.raises(ValueError, match="only an ended task run"):
        change_state(sim.graph, sim.view, sim.run_of("a").id, State.SUCCESS)


def test_replay_keeps_what_ran_before_the_task_run_and_reopens_its_flowables():
    sim = run_failed()
    kept = replay_runs(sim.graph, sim.view, sim.run_of("b").id)
    assert [(run.task_id, run.state) for run in kept] == [("a", State.SUCCESS), ("seq", State.RUNNING)]
    assert replay_runs(sim.graph, sim.view, None) == []


def test_only_an_ended_execution_is_replayed():
    sim = Simulator(failing_flow())
    sim.decide()
    with pytest.raises(ValueError, match="only an ended execution"):
        replay_runs(sim.graph, sim.view, sim.run_of("a").id)


def test_after_execution_tasks_run_once_the_outcome_is_known_and_do_not_change_it():
    data = {"id": "f", "namespace": "tests", "tasks": [task("boom", FAIL)],
            "errors": [task("handler", LOG, message="m")],
            "afterExecution": [task("notify", FAIL), task("cleanup", LOG, message="m")]}
    sim = Simulator(build_graph(data, 1))
    sim.run_to_end()
    assert sim.order() == ["boom", "handler", "notify", "cleanup"]
    assert sim.view.state is State.FAILED
    ok = Simulator(build_graph({**data, "tasks": [task("fine")]}, 1))
    ok.run_to_end()
    assert ok.view.state is State.SUCCESS  # the failing afterExecution task does not change it
    restarted = apply_to_view(sim.view, restart(sim.graph, sim.view))
    assert [run.task_id for run in restarted.task_runs] == ["boom"]  # afterExecution runs again later

"""Restart, change of a task run's state and replay, decided by the pure core."""

from __future__ import annotations

from dataclasses import replace

import pytest

from executor.core import ExecutionView, TaskRunView, build_graph
from executor.core.control import change_state, replay_runs, restart, restarted_subflows
from executor.core.decide import apply_to_view
from orchestrator.states import State
from tests.unit.test_flowables_harness import FAIL, LOG, SEQ, Simulator, fail, flow, task


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


SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
FOR_EACH_ITEM = "io.kestra.plugin.core.flow.ForEachItem"


def _failed_view(graph, *runs):
    """An execution FAILED with these (task id, parent index or None, state) task runs."""
    views = tuple(TaskRunView(id=f"r{i}", task_id=task_id, parent_id=None if parent is None else f"r{parent}",
                              state=state, seq=i, attempts=1)
                  for i, (task_id, parent, state) in enumerate(runs))
    return ExecutionView(id="e", namespace="tests", flow_id="f", flow_revision=1, state=State.FAILED,
                         start_date="2026-01-01T00:00:00.000Z", task_runs=views)


def _subflow(**extra):
    return task("child", SUBFLOW, namespace="tests", flowId="other", **extra)


def test_a_failed_subflow_that_waited_restarts_its_child_and_keeps_its_id():
    graph = flow([task("a"), _subflow()])
    before = _failed_view(graph, ("a", None, State.SUCCESS), ("child", None, State.FAILED))
    assert [run.id for run in restarted_subflows(graph, before)] == ["r1"]
    after = apply_to_view(before, restart(graph, before))
    assert after.run("r1").state is State.RUNNING and after.run("r1").outputs is None  # executionId kept
    assert after.run("r0").state is State.SUCCESS


def test_a_subflow_with_restart_behavior_new_execution_forgets_its_child():
    graph = flow([_subflow(restartBehavior="NEW_EXECUTION")])
    before = _failed_view(graph, ("child", None, State.FAILED))
    assert restarted_subflows(graph, before) == []
    after = apply_to_view(before, restart(graph, before))
    assert after.run("r0").state is State.RUNNING and after.run("r0").outputs == {}


def test_a_subflow_that_did_not_wait_has_no_child_to_restart():
    graph = flow([_subflow(wait=False), fail("boom")])
    before = _failed_view(graph, ("child", None, State.SUCCESS), ("boom", None, State.FAILED))
    assert restarted_subflows(graph, before) == []


def test_a_failed_for_each_item_restarts_the_subflows_of_its_batches_not_the_split():
    graph = flow([task("each", FOR_EACH_ITEM, items="kestra:///f.txt", namespace="tests", flowId="other")])
    before = _failed_view(graph, ("each", None, State.FAILED), ("each_split", 0, State.SUCCESS),
                          ("each_items", 0, State.FAILED))
    assert [run.task_id for run in restarted_subflows(graph, before)] == ["each_items"]
    after = apply_to_view(before, restart(graph, before))
    assert [run.state for run in after.task_runs] == [State.RUNNING, State.SUCCESS, State.RUNNING]


def test_a_running_execution_has_no_subflow_to_restart():
    graph = flow([_subflow()])
    running = _failed_view(graph, ("child", None, State.FAILED))
    assert restarted_subflows(graph, replace(running, state=State.RUNNING)) == []

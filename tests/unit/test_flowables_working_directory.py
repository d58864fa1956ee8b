"""The WorkingDirectory in the pure core: dispatched as one job, its children judged from the
worker's report, and restart, replay and change of state keeping its tasks together."""

from __future__ import annotations

from dataclasses import replace

import pytest

from executor.core import CreateTaskRun, Dispatch, TaskRunView, build_graph
from executor.core.actions import DeleteTaskRun, SetTaskRunState
from executor.core.control import change_state, replay_runs, restart
from executor.core.flowables.working_directory import ChildAttempt, accepted_children, outcome
from orchestrator.states import State
from tests.unit.test_flowables_harness import LOG, SEQ, Simulator, fail, flow, task

WD = "io.kestra.plugin.core.flow.WorkingDirectory"
SHELL = "io.kestra.plugin.scripts.shell.Commands"


def wd(tasks, **extra):
    return {"id": "wd", "type": WD, "tasks": tasks, **extra}


def child(task_id, state="SUCCESS", run_id=None, **extra):
    return {"taskRunId": run_id or f"c-{task_id}", "taskId": task_id, "state": state, "outputs": {"value": task_id},
            "startDate": "2024-01-01T00:00:01.000Z", "endDate": "2024-01-01T00:00:02.000Z", **extra}


def test_the_working_directory_is_one_job_and_its_tasks_are_not_dispatched():
    sim = Simulator(flow([wd([task("a", SHELL, commands=["true"]), task("b")]), task("after")]))
    sim.decide()
    [run] = sim.view.task_runs
    assert run.task_id == "wd" and run.state is State.CREATED
    assert [a for a in sim.actions if isinstance(a, Dispatch)] == [Dispatch(run.id, 1)]


def test_nothing_is_decided_while_its_job_runs_even_once_a_worker_says_it_runs():
    sim = Simulator(flow([wd([task("a"), task("b")])]))
    sim.decide()
    running = replace(sim.view.task_runs[0], state=State.RUNNING)
    sim.view = sim.view.replace_runs([running])
    assert sim.decide() == []


def test_the_next_task_starts_once_the_working_directory_has_ended():
    sim = Simulator(flow([wd([task("a")]), task("after")]))
    sim.decide()
    sim.finish(sim.run_of("wd").id, State.SUCCESS)
    assert sim.order() == ["wd", "after"]
    assert sim.run_of("after").state is State.CREATED


def test_a_working_directory_inside_a_sequential_is_dispatched_too():
    sim = Simulator(flow([{"id": "seq", "type": SEQ, "tasks": [wd([task("a")])]}]))
    sim.decide()
    assert sim.run_of("wd").state is State.CREATED
    assert Dispatch(sim.run_of("wd").id, 1) in sim.actions


def test_a_disabled_working_directory_does_not_run():
    sim = Simulator(flow([wd([task("a")], disabled=True), task("after")]))
    sim.decide()
    assert sim.order() == ["after"]


def test_runif_false_skips_it_without_a_job():
    sim = Simulator(flow([wd([task("a")], runIf="{{ false }}")]))
    sim.decide()
    assert sim.run_of("wd").state is State.SKIPPED
    assert not [a for a in sim.actions if isinstance(a, Dispatch)]


# -- judging the worker's report -----------------------------------------------------------------

def node_of(*tasks, errors=None, finally_=None, **extra):
    definition = wd(list(tasks), **extra)
    if errors:
        definition["errors"] = errors
    if finally_:
        definition["finally"] = finally_
    return build_graph({"id": "f", "namespace": "tests", "tasks": [definition]}, 1).node("wd")


def test_children_are_kept_in_order_with_their_tolerated_state():
    node = node_of(task("a"), task("b", allowFailure=True), task("c", allowWarning=True))
    children = accepted_children(node, [child("a"), child("b", "FAILED", error="boom"), child("c", "WARNING")])
    assert [(c.task_id, c.state, c.reported) for c in children] == [
        ("a", State.SUCCESS, State.SUCCESS), ("b", State.WARNING, State.FAILED), ("c", State.SUCCESS, State.WARNING)]
    assert children[1].error == "boom"
    assert outcome(node, State.SUCCESS, children) is State.WARNING


def test_children_that_cannot_be_are_dropped():
    node = node_of(task("a"), task("b"))
    reported = [child("a"), child("a", run_id="again"), child("elsewhere"), child("b", "RUNNING"),
                child("b", "NOT-A-STATE"), {"taskId": "b"}, "junk"]
    assert [c.task_id for c in accepted_children(node, reported)] == ["a"]
    assert accepted_children(node, None) == []


def test_a_failed_main_task_fails_it_even_when_errors_succeed():
    node = node_of(task("a"), task("b"), errors=[task("handle")])
    children = accepted_children(node, [child("a", "FAILED"), child("handle")])
    assert outcome(node, State.SUCCESS, children) is State.FAILED


def test_a_failure_in_finally_alone_fails_it_and_a_skipped_child_counts_as_nothing():
    node = node_of(task("a"), task("b", runIf="{{ false }}"), finally_=[task("cleanup")])
    assert outcome(node, State.SUCCESS, accepted_children(node, [child("a"), child("b", "SKIPPED")])) is State.SUCCESS
    children = accepted_children(node, [child("a"), child("cleanup", "FAILED")])
    assert outcome(node, State.SUCCESS, children) is State.FAILED


@pytest.mark.parametrize("reported", [State.FAILED, State.KILLED])
def test_what_the_worker_reports_for_the_directory_itself_counts(reported):
    node = node_of(task("a"))
    assert outcome(node, reported, accepted_children(node, [child("a")])) is reported


def test_killed_beats_failed():
    node = node_of(task("a"), task("b"))
    assert outcome(node, State.KILLED, accepted_children(node, [child("a", "FAILED")])) is State.KILLED


# -- restart, replay, change of state -----------------------------------------------------------

def ended_with_children(wd_state=State.FAILED, states=(State.SUCCESS, State.FAILED)):
    """A flow [wd(a, b), after] whose WorkingDirectory ended, its children created by the shell."""
    sim = Simulator(flow([wd([task("a"), task("b")]), task("after")]))
    sim.decide()
    parent = sim.run_of("wd")
    children = [TaskRunView(id=f"c{i}", task_id=task_id, parent_id=parent.id, state=state, seq=10 + i, attempts=1)
                for i, (task_id, state) in enumerate(zip(("a", "b"), states))]
    sim.view = sim.view.replace_runs([replace(parent, state=wd_state, attempts=1), *children])
    sim.view = replace(sim.view, state=State.FAILED)
    return sim


def test_restart_runs_the_whole_working_directory_again_without_its_earlier_tasks():
    sim = ended_with_children()
    parent = sim.run_of("wd")
    actions = restart(sim.graph, sim.view)
    assert Dispatch(parent.id, 2) in actions
    assert {a.task_run_id for a in actions if isinstance(a, DeleteTaskRun)} == {"c0", "c1"}
    assert not [a for a in actions if isinstance(a, Dispatch) and a.task_run_id in ("c0", "c1")]
    assert [a.state for a in actions if isinstance(a, SetTaskRunState) and a.task_run_id == parent.id] == [
        State.RESTARTED, State.CREATED]


def test_a_task_inside_cannot_change_state_alone_but_the_working_directory_can():
    sim = ended_with_children()
    with pytest.raises(ValueError, match="inside the WorkingDirectory wd"):
        change_state(sim.graph, sim.view, "c1", State.SUCCESS)
    actions = change_state(sim.graph, sim.view, sim.run_of("wd").id, State.SUCCESS)
    assert SetTaskRunState(sim.run_of("wd").id, State.SUCCESS) in actions


def test_replay_from_a_task_inside_replays_the_whole_working_directory():
    sim = ended_with_children()
    assert replay_runs(sim.graph, sim.view, "c1") == []


def test_a_created_task_run_for_it_is_never_running_at_first():
    sim = Simulator(flow([wd([task("a")])]))
    actions = sim.decide()
    created = [a for a in actions if isinstance(a, CreateTaskRun)]
    assert [a.state for a in created] == [State.CREATED]


def test_the_flow_validator_keeps_flowables_out():
    from orchestrator.flowlang import parse_flow

    source = f"""
id: f
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: inner
        type: {SEQ}
        tasks:
          - id: x
            type: {LOG}
            message: hi
"""
    with pytest.raises(Exception, match="only runnable tasks can run in a WorkingDirectory"):
        parse_flow(source)


def test_a_failing_child_is_reported_as_such_by_the_simulated_fail_type():
    # The Fail task inside is a runnable: accepted like any other.
    node = node_of(fail("f1"))
    assert accepted_children(node, [child("f1", "FAILED")])[0].state is State.FAILED


def test_a_notice_of_progress_may_report_a_running_task_a_result_may_not():
    node = build_graph({"id": "f", "namespace": "tests", "tasks": [wd([task("a"), task("b")])]}, 1).node("wd")
    reported = [child("a"), child("b", "RUNNING", attempts=[{"state": "RUNNING", "startDate": "s"}])]
    assert [c.task_id for c in accepted_children(node, reported)] == ["a"]
    running = accepted_children(node, reported, running=True)
    assert [(c.task_id, c.state) for c in running] == [("a", State.SUCCESS), ("b", State.RUNNING)]
    assert running[1].attempts == (ChildAttempt(State.RUNNING, "s"),)
    # A report without attempts has one made of its own dates; a skipped task has none.
    assert running[0].attempts == (ChildAttempt(State.SUCCESS, "2024-01-01T00:00:01.000Z",
                                                "2024-01-01T00:00:02.000Z"),)
    assert accepted_children(node, [child("a", "SKIPPED")])[0].attempts == ()


def test_attempts_retried_on_the_worker_are_all_kept():
    node = build_graph({"id": "f", "namespace": "tests", "tasks": [wd([task("a")])]}, 1).node("wd")
    attempts = [{"state": "FAILED", "startDate": "1", "endDate": "2", "error": "boom"},
                {"state": "SUCCESS", "startDate": "3", "endDate": "4"}]
    [accepted] = accepted_children(node, [child("a", attempts=attempts)])
    assert accepted.attempts == (ChildAttempt(State.FAILED, "1", "2", "boom"), ChildAttempt(State.SUCCESS, "3", "4"))


@pytest.mark.parametrize("stored, stored_attempts, reported, attempts, applies", [
    (State.RUNNING, 1, State.SUCCESS, 1, True),  # the task's end
    (State.RUNNING, 1, State.RUNNING, 2, True),  # its retry
    (State.RUNNING, 2, State.RUNNING, 1, False),  # a late notice of an earlier attempt
    (State.SUCCESS, 1, State.RUNNING, 1, False),  # a notice arriving after the end
    (State.FAILED, 1, State.SUCCESS, 2, False),  # an ended task never changes again
])
def test_only_a_report_that_moves_a_task_on_is_applied(stored, stored_attempts, reported, attempts, applies):
    from executor.core.flowables.working_directory import ChildResult, supersedes

    result = ChildResult(id="c", task_id="a", state=reported, reported=reported, outputs=None, start_date="s",
                         end_date="e", attempts=tuple(ChildAttempt(State.FAILED, "s", "e") for _ in range(attempts)))
    assert supersedes(stored, stored_attempts, result) is applies

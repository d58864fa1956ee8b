"""Parallel: every rule, each failure mode, and its interplay with allowFailure, disabled, runIf."""

from __future__ import annotations

import pytest

from executor.core import CreateTaskRun
from orchestrator.states import State
from tests.unit.test_flowables_harness import PARALLEL, SEQ, Simulator, fail, flow, task


def par(task_id, tasks, **extra):
    return task(task_id, PARALLEL, tasks=tasks, **extra)


def test_all_children_start_in_one_decision_and_the_next_task_waits_for_all():
    sim = Simulator(flow([par("p", [task("a"), task("b"), task("c")]), task("last")]))
    actions = sim.decide()
    created = [a.task_id for a in actions if isinstance(a, CreateTaskRun)]
    assert created == ["p", "a", "b", "c"]
    a, b, c = (sim.run_of(t) for t in "abc")
    sim.finish(c.id)
    sim.finish(a.id)
    assert "last" not in sim.states() and sim.run_of("p").state is State.RUNNING
    sim.finish(b.id)
    assert sim.states()["p"] is State.SUCCESS and "last" in sim.states()
    assert sim.run_to_end().state is State.SUCCESS


def test_children_are_linked_to_the_parallel_and_carry_no_value():
    sim = Simulator(flow([par("p", [task("a"), task("b")])]))
    sim.run_to_end()
    parent = sim.run_of("p")
    for child in sim.children("p"):
        assert child.value is None and child.iteration is None and child.parent_id == parent.id


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_concurrent_bounds_the_children_running_at_once(limit):
    sim = Simulator(flow([par("p", [task(f"t{i}") for i in range(5)], concurrent=limit)]))
    sim.decide()
    assert len(sim.pending()) == limit
    view = sim.run_to_end()
    assert sim.peak["p"] == limit
    assert view.state is State.SUCCESS and len(sim.children("p")) == 5
    assert sim.order()[1:] == [f"t{i}" for i in range(5)]  # started in declaration order


def test_concurrent_zero_means_no_bound():
    sim = Simulator(flow([par("p", [task(f"t{i}") for i in range(7)], concurrent=0)]))
    sim.decide()
    assert len(sim.pending()) == 7


def test_a_child_ending_frees_its_slot_for_the_next():
    sim = Simulator(flow([par("p", [task("a"), task("b"), task("c")], concurrent=2)]))
    sim.decide()
    assert [r.task_id for r in sim.pending()] == ["a", "b"]
    sim.finish(sim.run_of("b").id)
    assert [r.task_id for r in sim.pending()] == ["a", "c"]


def test_after_a_failure_no_new_child_starts_and_the_parallel_fails():
    sim = Simulator(flow([par("p", [fail("a"), task("b"), task("c")], concurrent=1), task("last")]))
    view = sim.run_to_end()
    assert sim.states() == {"p": State.FAILED, "a": State.FAILED}
    assert view.state is State.FAILED


def test_after_a_failure_running_children_end_on_their_own_before_the_parallel_ends():
    sim = Simulator(flow([par("p", [fail("a"), task("b"), task("c")]), task("last")]))
    sim.decide()
    sim.finish(sim.run_of("a").id)
    assert sim.run_of("p").state is State.RUNNING  # b and c are still running
    sim.finish(sim.run_of("b").id, State.SUCCESS)
    assert sim.run_of("p").state is State.RUNNING
    sim.finish(sim.run_of("c").id, State.SUCCESS)
    assert sim.run_of("p").state is State.FAILED
    assert "last" not in sim.states() and sim.view.state is State.FAILED


def test_local_errors_start_as_soon_as_a_child_fails_and_run_in_parallel():
    graph = flow([par("p", [fail("a"), task("b")], errors=[task("e1"), task("e2")])])
    sim = Simulator(graph)
    sim.decide()
    sim.finish(sim.run_of("a").id)
    assert {r.task_id for r in sim.pending()} == {"b", "e1", "e2"}
    assert sim.run_of("e1").parent_id == sim.run_of("p").id
    view = sim.run_to_end()
    assert sim.states()["p"] is State.FAILED and view.state is State.FAILED


def test_local_errors_do_not_run_when_nothing_failed():
    sim = Simulator(flow([par("p", [task("a")], errors=[task("e")])]))
    assert sim.run_to_end().state is State.SUCCESS
    assert "e" not in sim.states()


def test_errors_respect_the_concurrent_bound():
    graph = flow([par("p", [fail("a")], errors=[task("e1"), task("e2"), task("e3")], concurrent=2)])
    sim = Simulator(graph)
    sim.run_to_end()
    assert sim.peak["p"] == 2 and len(sim.children("p")) == 4


def test_a_failing_error_task_does_not_stop_the_other_error_tasks():
    graph = flow([par("p", [fail("a")], errors=[fail("e1"), task("e2")], concurrent=1)])
    sim = Simulator(graph)
    sim.run_to_end()
    assert sim.states()["e2"] is State.SUCCESS and sim.states()["p"] is State.FAILED


@pytest.mark.parametrize("first, final", [(State.SUCCESS, State.SUCCESS), (State.FAILED, State.FAILED)])
def test_finally_runs_last_whatever_the_outcome(first, final):
    graph = flow([par("p", [task("a"), task("b")], errors=[task("e")], **{"finally": [task("z1"), task("z2")]})])
    sim = Simulator(graph, {"a": first})
    view = sim.run_to_end()
    order = sim.order()
    assert order.index("z1") > max(order.index("a"), order.index("b"))
    if first is State.FAILED:
        assert order.index("z1") > order.index("e")
    assert sim.states()["p"] is final and view.state is final


def test_finally_waits_for_every_running_child():
    graph = flow([par("p", [task("a"), task("b")], **{"finally": [task("z")]})])
    sim = Simulator(graph)
    sim.decide()
    sim.finish(sim.run_of("a").id)
    assert "z" not in sim.states()
    sim.finish(sim.run_of("b").id)
    assert "z" in sim.states()


def test_a_failing_finally_task_fails_the_parallel():
    sim = Simulator(flow([par("p", [task("a")], **{"finally": [fail("z")]})]))
    assert sim.run_to_end().state is State.FAILED
    assert sim.states()["p"] is State.FAILED


def test_a_child_allowed_to_fail_makes_the_parallel_warning_and_the_flow_goes_on():
    sim = Simulator(flow([par("p", [fail("a", allowFailure=True), task("b")]), task("last")]))
    view = sim.run_to_end()
    assert sim.states() == {"p": State.WARNING, "a": State.WARNING, "b": State.SUCCESS, "last": State.SUCCESS}
    assert view.state is State.WARNING


def test_a_parallel_allowed_to_fail_ends_warning_and_the_flow_goes_on():
    sim = Simulator(flow([par("p", [fail("a"), task("b")], allowFailure=True), task("last")]))
    view = sim.run_to_end()
    assert sim.states()["p"] is State.WARNING and sim.states()["last"] is State.SUCCESS
    assert view.state is State.WARNING


def test_a_parallel_allowed_to_warn_hides_a_child_warning():
    sim = Simulator(flow([par("p", [task("a")], allowWarning=True)]), {"a": State.WARNING})
    sim.run_to_end()
    assert sim.states()["p"] is State.SUCCESS


def test_disabled_children_make_no_task_run():
    sim = Simulator(flow([par("p", [task("a", disabled=True), task("b")])]))
    sim.run_to_end()
    assert set(sim.states()) == {"p", "b"}


def test_a_parallel_whose_children_are_all_disabled_succeeds_at_once():
    sim = Simulator(flow([par("p", [task("a", disabled=True)]), task("last")]))
    view = sim.run_to_end()
    assert sim.states() == {"p": State.SUCCESS, "last": State.SUCCESS} and view.state is State.SUCCESS


def test_a_disabled_parallel_makes_no_task_run_at_all():
    sim = Simulator(flow([par("p", [task("a")], disabled=True), task("last")]))
    sim.run_to_end()
    assert set(sim.states()) == {"last"}


def test_run_if_false_skips_a_child_and_the_parallel_succeeds():
    sim = Simulator(flow([par("p", [task("a", runIf="{{ inputs.go }}"), task("b")])]), context={"inputs": {"go": False}})
    view = sim.run_to_end()
    assert sim.states() == {"p": State.SUCCESS, "a": State.SKIPPED, "b": State.SUCCESS}
    assert view.state is State.SUCCESS


def test_run_if_false_on_the_parallel_skips_it_whole():
    sim = Simulator(flow([par("p", [task("a")], runIf="false"), task("last")]))
    sim.run_to_end()
    assert sim.states() == {"p": State.SKIPPED, "last": State.SUCCESS}


def test_run_if_that_cannot_render_fails_the_child_and_the_parallel():
    sim = Simulator(flow([par("p", [task("a", runIf="{{ nope }}"), task("b")])]))
    view = sim.run_to_end()
    assert sim.states()["a"] is State.FAILED and sim.states()["p"] is State.FAILED
    assert any("nope" in message for message in sim.logs("a"))
    assert view.state is State.FAILED


def test_a_killed_child_makes_the_parallel_killed():
    sim = Simulator(flow([par("p", [task("a"), task("b")])]), {"a": State.KILLED})
    sim.run_to_end()
    assert sim.states()["p"] is State.KILLED


def test_a_warning_child_makes_the_parallel_warning():
    sim = Simulator(flow([par("p", [task("a"), task("b")])]), {"b": State.WARNING})
    sim.run_to_end()
    assert sim.states()["p"] is State.WARNING


def test_nested_parallels_and_sequentials_run_to_the_end():
    graph = flow([par("p", [task("a"), par("inner", [task("b"), task(
        "seq", SEQ, tasks=[task("c"), task("d")])]), task("e")]), task("last")])
    sim = Simulator(graph)
    actions = sim.decide()
    # the inner Parallel and its Sequential start in the same decision as the outer one
    assert {a.task_id for a in actions if isinstance(a, CreateTaskRun)} == {"p", "a", "inner", "e", "b", "seq", "c"}
    view = sim.run_to_end()
    assert view.state is State.SUCCESS and len(view.task_runs) == 9


def test_a_failure_deep_inside_fails_every_flowable_above_and_runs_the_flow_errors():
    graph = flow([par("p", [par("inner", [fail("x")]), task("b")]), task("last")], errors=[task("alert")])
    sim = Simulator(graph)
    view = sim.run_to_end()
    assert sim.states()["inner"] is State.FAILED and sim.states()["p"] is State.FAILED
    assert sim.states()["alert"] is State.SUCCESS and "last" not in sim.states()
    assert view.state is State.FAILED

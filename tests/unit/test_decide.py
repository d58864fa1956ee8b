"""The executor's pure decisions, without a database: each rule of Sequential, errors, finally,
the final state, and idempotent result handling."""

from __future__ import annotations

import itertools
from dataclasses import replace


from executor.core import (
    CreateTaskRun, Dispatch, ExecutionView, Log, SetExecutionState, SetTaskRunState, build_graph, decide,
    judge_result,
)
from executor.core.decide import apply_to_view
from orchestrator.states import State

RETURN = "io.kestra.plugin.core.debug.Return"
FAIL = "io.kestra.plugin.core.execution.Fail"
SEQ = "io.kestra.plugin.core.flow.Sequential"


def task(task_id, type_=RETURN, **extra):
    return {"id": task_id, "type": type_, **extra}


def flow(tasks, errors=None, finally_=None):
    data = {"id": "f", "namespace": "tests", "tasks": tasks}
    if errors:
        data["errors"] = errors
    if finally_:
        data["finally"] = finally_
    return build_graph(data, 1)


class Simulator:
    """Drives the pure core the way the executor and workers do, with scripted outcomes."""

    def __init__(self, graph, outcomes=None):
        self.graph = graph
        self.outcomes = outcomes or {}
        counter = itertools.count()
        self.new_id = lambda: f"tr{next(counter)}"
        self.view = ExecutionView(id="e1", namespace="tests", flow_id="f", flow_revision=1, state=State.CREATED,
                                  start_date="2024-01-01T00:00:00.000Z")
        self.dispatched: list[str] = []

    def decide(self):
        actions = decide(self.graph, self.view, self.new_id)
        self.view = apply_to_view(self.view, actions)
        self.dispatched += [a.task_run_id for a in actions if isinstance(a, Dispatch)]
        return actions

    def finish(self, run_id, state=None):
        run = self.view.run(run_id)
        node = self.graph.node(run.task_id)
        reported = state or self.outcomes.get(run.task_id, State.SUCCESS)
        verdict = judge_result(node, run, run.attempts + 1, reported, {"value": run.task_id})
        assert verdict is not None
        self.view = self.view.replace_runs(
            replace(r, state=verdict.state, attempts=r.attempts + 1) if r.id == run_id else r
            for r in self.view.task_runs
        )
        return self.decide()

    def run_to_end(self, limit=1000):
        self.decide()
        for _ in range(limit):
            pending = [r for r in self.view.task_runs if r.state is State.CREATED]
            if not pending:
                break
            self.finish(pending[0].id)
        return self.view

    def states(self):
        return {run.task_id: run.state for run in self.view.task_runs}


def test_first_decision_starts_the_execution_and_dispatches_the_first_task():
    sim = Simulator(flow([task("a"), task("b")]))
    actions = sim.decide()
    assert actions[0] == SetExecutionState(State.RUNNING)
    created = [a for a in actions if isinstance(a, CreateTaskRun)]
    assert [c.task_id for c in created] == ["a"]
    assert created[0].state is State.CREATED
    assert actions[-1] == Dispatch(created[0].id, 1)


def test_root_tasks_run_in_order_and_the_execution_succeeds():
    sim = Simulator(flow([task("a"), task("b"), task("c")]))
    view = sim.run_to_end()
    assert [r.task_id for r in view.task_runs] == ["a", "b", "c"]
    assert view.state is State.SUCCESS


def test_nothing_is_decided_while_a_task_runs():
    sim = Simulator(flow([task("a"), task("b")]))
    sim.decide()
    assert decide(sim.graph, sim.view, sim.new_id) == []


def test_nested_sequentials_cascade_in_one_decision():
    graph = flow([task("seq", SEQ, tasks=[task("inner", SEQ, tasks=[task("x")])]), task("after")])
    sim = Simulator(graph)
    actions = sim.decide()
    # seq and inner are flowables: RUNNING at once, and x is dispatched in the same decision
    created = {a.task_id: a.state for a in actions if isinstance(a, CreateTaskRun)}
    assert created == {"seq": State.RUNNING, "inner": State.RUNNING, "x": State.CREATED}
    x = next(r for r in sim.view.task_runs if r.task_id == "x")
    actions = sim.finish(x.id)
    # x ends: inner ends, seq ends, after starts — one decision
    ended = {a.task_run_id for a in actions if isinstance(a, SetTaskRunState)}
    assert {sim.view.run(i).task_id for i in ended} == {"inner", "seq"}
    assert [a.task_id for a in actions if isinstance(a, CreateTaskRun)] == ["after"]


def test_parent_task_run_ids_link_children_to_their_flowable():
    sim = Simulator(flow([task("seq", SEQ, tasks=[task("x")])]))
    sim.run_to_end()
    runs = {r.task_id: r for r in sim.view.task_runs}
    assert runs["x"].parent_id == runs["seq"].id
    assert runs["seq"].parent_id is None


def test_a_failure_stops_the_remaining_tasks_and_fails_the_execution():
    sim = Simulator(flow([task("a"), task("b", FAIL), task("c")]), {"b": State.FAILED})
    view = sim.run_to_end()
    assert sim.states() == {"a": State.SUCCESS, "b": State.FAILED}
    assert view.state is State.FAILED


def test_flow_errors_run_after_a_failure_and_the_execution_stays_failed():
    graph = flow([task("a", FAIL), task("b")], errors=[task("e1"), task("e2")])
    sim = Simulator(graph, {"a": State.FAILED})
    view = sim.run_to_end()
    assert [r.task_id for r in view.task_runs] == ["a", "e1", "e2"]
    assert view.state is State.FAILED


def test_errors_do_not_run_when_nothing_failed():
    sim = Simulator(flow([task("a")], errors=[task("e")]))
    view = sim.run_to_end()
    assert "e" not in sim.states()
    assert view.state is State.SUCCESS


def test_finally_runs_after_success_and_after_failure():
    for outcome, final in ((State.SUCCESS, State.SUCCESS), (State.FAILED, State.FAILED)):
        graph = flow([task("a")], errors=[task("e")], finally_=[task("z")])
        sim = Simulator(graph, {"a": outcome})
        view = sim.run_to_end()
        assert [r.task_id for r in view.task_runs][-1] == "z"
        assert view.state is final


def test_a_failing_finally_task_fails_the_execution():
    sim = Simulator(flow([task("a")], finally_=[task("z", FAIL)]), {"z": State.FAILED})
    assert sim.run_to_end().state is State.FAILED


def test_local_errors_of_a_sequential_run_inside_it():
    graph = flow([task("seq", SEQ, tasks=[task("x", FAIL), task("y")], errors=[task("local")]), task("after")])
    sim = Simulator(graph, {"x": State.FAILED})
    view = sim.run_to_end()
    runs = {r.task_id: r for r in view.task_runs}
    assert runs["local"].parent_id == runs["seq"].id
    assert runs["seq"].state is State.FAILED
    assert "y" not in runs and "after" not in runs
    assert view.state is State.FAILED


def test_warning_makes_the_execution_warning():
    sim = Simulator(flow([task("a"), task("b")]), {"a": State.WARNING})
    assert sim.run_to_end().state is State.WARNING


def test_allow_failure_turns_a_failure_into_a_warning_and_goes_on():
    sim = Simulator(flow([task("a", FAIL, allowFailure=True), task("b")]), {"a": State.FAILED})
    view = sim.run_to_end()
    assert sim.states() == {"a": State.WARNING, "b": State.SUCCESS}
    assert view.state is State.WARNING


def test_allow_warning_turns_a_warning_into_success():
    sim = Simulator(flow([task("a", allowWarning=True)]), {"a": State.WARNING})
    assert sim.run_to_end().state is State.SUCCESS


def test_killed_outranks_failed():
    sim = Simulator(flow([task("a")], errors=[task("e")]), {"a": State.KILLED})
    assert sim.run_to_end().state is State.KILLED


def test_disabled_tasks_make_no_task_run():
    sim = Simulator(flow([task("a", disabled=True), task("b")]))
    sim.run_to_end()
    assert list(sim.states()) == ["b"]


def test_a_duplicate_result_is_ignored():
    sim = Simulator(flow([task("a"), task("b")]))
    sim.decide()
    first = sim.view.task_runs[0]
    sim.finish(first.id)
    after = sim.view.run(first.id)
    assert judge_result(sim.graph.node("a"), after, 1, State.FAILED, None) is None
    assert sim.view.run(first.id).state is State.SUCCESS


def test_a_result_for_a_stale_attempt_is_ignored():
    sim = Simulator(flow([task("a")]))
    sim.decide()
    run = sim.view.task_runs[0]
    assert judge_result(sim.graph.node("a"), run, 2, State.SUCCESS, None) is None
    assert judge_result(sim.graph.node("a"), run, 0, State.SUCCESS, None) is None
    assert judge_result(sim.graph.node("a"), run, 1, State.SUCCESS, None) is not None


def test_a_terminal_execution_decides_nothing():
    sim = Simulator(flow([task("a")]))
    view = sim.run_to_end()
    assert decide(sim.graph, view, sim.new_id) == []


def test_sequence_numbers_follow_creation_order():
    sim = Simulator(flow([task("seq", SEQ, tasks=[task("x"), task("y")]), task("z")]))
    view = sim.run_to_end()
    assert [r.seq for r in view.task_runs] == sorted(r.seq for r in view.task_runs)
    assert len({r.seq for r in view.task_runs}) == len(view.task_runs)


class FixedRenderer:
    """Renders every property to a fixed value: what runIf sees."""

    def __init__(self, value):
        self.value = value

    def render(self, node, run, value, ancestors=()):
        return self.value


def test_run_if_false_makes_a_skipped_task_run_and_goes_on():
    graph = flow([task("maybe", runIf="{{ inputs.go }}"), task("after")])
    view = Simulator(graph).view
    actions = decide(graph, view, iter(f"r{i}" for i in range(10)).__next__, FixedRenderer("false"))
    created = {a.task_id: a.state for a in actions if isinstance(a, CreateTaskRun)}
    assert created == {"maybe": State.SKIPPED, "after": State.CREATED}
    assert [a.task_run_id for a in actions if isinstance(a, Dispatch)] == ["r1"]


def test_run_if_true_runs_the_task():
    graph = flow([task("maybe", runIf="{{ inputs.go }}")])
    actions = decide(graph, Simulator(graph).view, iter(["r0"]).__next__, FixedRenderer("true"))
    assert [a for a in actions if isinstance(a, Dispatch)] == [Dispatch("r0", 1)]


def test_run_if_that_cannot_render_fails_the_task_with_the_reason():
    from orchestrator.templating import TemplateError

    class Broken:
        def render(self, node, run, value, ancestors=()):
            raise TemplateError("Unable to find `nope`")

    graph = flow([task("maybe", runIf="{{ nope }}"), task("after")])
    actions = decide(graph, Simulator(graph).view, iter(["r0", "r1"]).__next__, Broken())
    assert any(isinstance(a, Log) and "Unable to find `nope`" in a.message for a in actions)
    assert actions[-1] == SetExecutionState(State.FAILED)

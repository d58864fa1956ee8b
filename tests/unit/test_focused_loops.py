"""A step about one task run decides over part of the execution (ExecutionView.unseen): the task
runs outside loops, those above it, those of its loop value, and counts of a loop's other
children. These tests build that view from a whole one — as executor/store.py load_focused
selects it — and check that its decisions are the whole view's, or that it asks for the whole
view (WholeViewNeeded), over random runs of loops of every shape."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import replace

import pytest

from executor.core import CreateTaskRun, SetTaskRunState, decide, judge_result
from executor.core.actions import comparable
from executor.core.decide import ContextRenderer, WholeViewNeeded, apply_to_view
from executor.core.model import LOOPS, ExecutionView, FlowGraph, TaskRunView
from orchestrator.states import ACTIVE, State
from tests.unit.test_flowables_harness import (
    EACH_PAR, EACH_SEQ, FOREACH, PARALLEL, SEQ, flow, task,
)


def focused(graph: FlowGraph, view: ExecutionView, ids: list[str]) -> ExecutionView | None:
    """The view a focused step about `ids` holds (None where the executor reads it all)."""
    runs = {run.id: run for run in view.task_runs}
    chain: dict[str, TaskRunView] = {}
    for run_id in ids:
        run = runs.get(run_id)
        while run is not None and run.id not in chain:
            chain[run.id] = run
            run = runs.get(run.parent_id)
    above = {run_id for run_id, run in chain.items() if run.task_id not in graph.loops}
    value_loops = {loop for loop in graph.loops if LOOPS[graph.nodes[loop].type]}
    groups = {(run.parent_id, run.iteration) for run in chain.values()
              if run.parent_id in chain and chain[run.parent_id].task_id in value_loops}
    kept = [run for run in view.task_runs
            if run.task_id not in graph.in_loops or run.id in chain or run.parent_id in above
            or (run.parent_id, run.iteration) in groups]
    kept_ids = {run.id for run in kept}
    unseen = {}
    for run in kept:
        node = graph.nodes[run.task_id]
        if run.state not in ACTIVE:
            continue
        if run.task_id in graph.loops:
            counts = Counter((child.task_id, child.state) for child in view.task_runs
                             if child.parent_id == run.id and child.id not in kept_ids)
            unseen[run.id] = dict(counts)
        elif node.kind == "flowable" and run.task_id in graph.in_loops and run.id not in above:
            return None
    return replace(view, task_runs=tuple(kept), unseen=unseen,
                   next_seq=max((run.seq for run in view.task_runs), default=-1) + 1)


def ids(prefix: str):
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


def run_randomly(graph: FlowGraph, seed: int, failing: float = 0.0, batch: int = 1) -> tuple[ExecutionView, Counter]:
    """Run a flow to its end, ending random pending task runs (`batch` per step, `failing` of them
    FAILED); each step is decided over the whole view and over the focused one."""
    rng = random.Random(seed)
    renderer = ContextRenderer({})
    whole_ids = ids("w")
    view = ExecutionView(id="e1", namespace="tests", flow_id=graph.id, flow_revision=1, state=State.CREATED,
                         start_date="2024-01-01T00:00:00.000Z")
    view = apply_to_view(view, decide(graph, view, whole_ids, renderer))
    seen: Counter = Counter()
    for _ in range(5_000):
        pending = [run for run in view.task_runs if run.state is State.CREATED]
        if not pending or view.state.is_terminal:
            break
        ended = rng.sample(pending, min(batch, len(pending)))
        changes = {}
        for run in ended:
            state = State.FAILED if rng.random() < failing else State.SUCCESS
            verdict = judge_result(graph.node(run.task_id), run, 1, state, None)
            changes[run.id] = replace(run, state=verdict.state, attempts=1)
        view = view.replace_runs(changes.get(run.id, run) for run in view.task_runs)
        expected = decide(graph, view, ids("x"), renderer)
        part = focused(graph, view, list(changes)) if view.state is State.RUNNING else None
        if part is None:
            seen["whole"] += 1
        else:
            try:
                assert comparable(decide(graph, part, ids("x"), renderer)) == comparable(expected)
                seen["focused"] += 1
            except WholeViewNeeded:
                seen["asked for the whole view"] += 1
        view = apply_to_view(view, decide(graph, view, whole_ids, renderer))
    return view, seen


def foreach(task_id, values, tasks, limit=0, **extra):
    return task(task_id, FOREACH, values=list(values), concurrencyLimit=limit, tasks=tasks, **extra)


SHAPES = {
    "foreach": flow([foreach("each", range(30), [task("item")]), task("after")]),
    "foreach-limited": flow([foreach("each", range(20), [task("a"), task("b")], limit=3)]),
    "foreach-one-at-a-time": flow([foreach("each", range(12), [task("item")], limit=1)]),
    "foreach-sequential-inside": flow([foreach("each", range(10), [task("s", SEQ, tasks=[task("s1"), task("s2")])])]),
    "each-parallel-sequential-beside": flow([task("each", EACH_PAR, value=[f"v{i}" for i in range(8)], tasks=[
        task("seq", SEQ, tasks=[task("s1"), task("s2")]), task("alone")])]),
    "each-parallel-limited": flow([task("each", EACH_PAR, value=list(range(7)), concurrent=3, tasks=[
        task("x"), task("y")])]),
    "each-sequential": flow([task("each", EACH_SEQ, value=list(range(8)), tasks=[task("x"), task("y")])]),
    "nested": flow([foreach("outer", "abc", [foreach("inner", range(6), [task("cell")])])]),
    "beside-a-parallel": flow([task("p", PARALLEL, tasks=[foreach("each", range(15), [task("item")]),
                                                          task("s", SEQ, tasks=[task("a"), task("b")])])]),
    "errors-and-finally": flow([foreach("each", range(15), [task("item")], limit=2,
                                        errors=[task("e1"), task("e2")], finally_=[task("f1")])]),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("seed", range(4))
def test_a_focused_step_decides_as_the_whole_view(shape, seed):
    view, seen = run_randomly(SHAPES[shape], seed, batch=1 + seed)
    assert view.state is State.SUCCESS
    assert seen["focused"] > seen["whole"] + seen["asked for the whole view"]


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("seed", range(3))
def test_with_failures_a_focused_step_still_decides_as_the_whole_view(shape, seed):
    view, seen = run_randomly(SHAPES[shape], seed, failing=0.1, batch=1 + seed)
    assert view.state.is_terminal


# -- the decisions themselves --------------------------------------------------------------------

def _loop_view(graph, children, unseen, loop_state=State.RUNNING):
    loop = TaskRunView(id="L", task_id="each", parent_id=None, state=loop_state, seq=0)
    return ExecutionView(id="e1", namespace="tests", flow_id="f", flow_revision=1, state=State.RUNNING,
                         start_date="2024-01-01T00:00:00.000Z", task_runs=(loop, *children),
                         unseen={"L": unseen}, next_seq=500)


def _child(run_id, task_id, iteration, state, seq):
    return TaskRunView(id=run_id, task_id=task_id, parent_id="L", state=state, seq=seq, value=str(iteration),
                       iteration=iteration)


def test_a_child_ending_while_others_run_decides_nothing():
    graph = flow([foreach("each", range(100), [task("item")])])
    view = _loop_view(graph, [_child("c7", "item", 7, State.SUCCESS, 8)], {("item", State.RUNNING): 99})
    assert decide(graph, view, ids("n"), ContextRenderer({})) == []


def test_the_last_running_child_ending_asks_for_the_whole_view():
    graph = flow([foreach("each", range(100), [task("item")])])
    view = _loop_view(graph, [_child("c7", "item", 7, State.SUCCESS, 8)], {("item", State.SUCCESS): 99})
    with pytest.raises(WholeViewNeeded):
        decide(graph, view, ids("n"), ContextRenderer({}))


def test_a_failure_seen_now_asks_for_the_whole_view_and_an_earlier_one_lets_the_others_end():
    graph = flow([foreach("each", range(100), [task("item")], errors=[task("handled")])])
    failed = _loop_view(graph, [_child("c7", "item", 7, State.FAILED, 8)], {("item", State.RUNNING): 99})
    with pytest.raises(WholeViewNeeded):
        decide(graph, failed, ids("n"), ContextRenderer({}))
    after = _loop_view(graph, [_child("c8", "item", 8, State.SUCCESS, 9)],
                       {("item", State.FAILED): 1, ("item", State.RUNNING): 97, ("item", State.SUCCESS): 1,
                        ("handled", State.CREATED): 1})
    assert decide(graph, after, ids("n"), ContextRenderer({})) == []


def test_the_next_task_of_a_value_starts_with_its_value():
    graph = flow([foreach("each", range(100), [task("a"), task("b")])])
    view = _loop_view(graph, [_child("a5", "a", 5, State.SUCCESS, 8)], {("a", State.RUNNING): 99})
    [created, dispatched] = decide(graph, view, ids("n"), ContextRenderer({}))
    assert isinstance(created, CreateTaskRun) and dispatched.task_run_id == created.id
    assert (created.task_id, created.parent_id, created.value, created.iteration, created.seq) == \
        ("b", "L", "5", 5, 500)


def test_a_limited_loop_starts_the_value_after_those_started():
    graph = flow([foreach("each", [f"v{i}" for i in range(100)], [task("item")], limit=2)])
    view = _loop_view(graph, [_child("c6", "item", 6, State.SUCCESS, 8)],
                      {("item", State.SUCCESS): 6, ("item", State.RUNNING): 1})
    [created, _] = decide(graph, view, ids("n"), ContextRenderer({}))
    assert (created.task_id, created.value, created.iteration) == ("item", "v8", 8)


def test_an_exit_task_asks_for_the_whole_view():
    graph = flow([foreach("each", range(10), [task("stop", "io.kestra.plugin.core.execution.Exit", state="KILLED")])])
    view = _loop_view(graph, [_child("s1", "stop", 1, State.RUNNING, 2)], {("stop", State.RUNNING): 9})
    with pytest.raises(WholeViewNeeded):
        decide(graph, view, ids("n"), ContextRenderer({}))


def test_a_loop_whose_children_are_all_in_view_decides_as_always():
    graph = flow([foreach("each", range(2), [task("item")]), task("after")])
    view = _loop_view(graph, [_child("c0", "item", 0, State.SUCCESS, 1), _child("c1", "item", 1, State.SUCCESS, 2)],
                      {})
    actions = decide(graph, view, ids("n"), ContextRenderer({}))
    assert SetTaskRunState("L", State.SUCCESS) in actions
    assert any(isinstance(action, CreateTaskRun) and action.task_id == "after" for action in actions)

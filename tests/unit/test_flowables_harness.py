"""The harness of the flowable tests: a simulator that drives the pure core the way the executor
and the workers do, with scripted task outcomes, and the Kestra corpus (flows and their cases).
The tests at the end check the harness itself."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest
import yaml

import executor.core.flowables  # noqa: F401  (registers the flowable handlers)
from executor.core import (
    CreateTaskRun, Dispatch, ExecutionView, FlowGraph, Log, SetTaskRunState, TaskRunView, build_graph, decide,
    judge_result,
)
from executor.core.decide import ContextRenderer, apply_to_view
from orchestrator.states import ACTIVE, State
from orchestrator.templating import TemplateError, is_truthy

RETURN = "io.kestra.plugin.core.debug.Return"
LOG = "io.kestra.plugin.core.log.Log"
FAIL = "io.kestra.plugin.core.execution.Fail"
FLOW = "io.kestra.plugin.core.flow."
SEQ, PARALLEL, IF, SWITCH = FLOW + "Sequential", FLOW + "Parallel", FLOW + "If", FLOW + "Switch"
FOREACH, EACH_SEQ, EACH_PAR = FLOW + "ForEach", FLOW + "EachSequential", FLOW + "EachParallel"
ALLOW_FAILURE, DAG = FLOW + "AllowFailure", FLOW + "Dag"
FAIL_TYPES = {FAIL, "io.kestra.core.tasks.executions.Fail", "io.kestra.core.tasks.execution.Fail"}

# The corpus lives in the shared folder beside the checkout (as in tests/compat).
COMPAT = Path(os.environ.get("HARRIER_COMPAT_DIR", Path(__file__).resolve().parents[3] / "shared" / "compat" / "kestra"))

Outcome = State | Callable[["Simulator", TaskRunView], State]


def task(task_id: str, type_: str = RETURN, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "type": type_, **extra}


def fail(task_id: str, **extra: Any) -> dict[str, Any]:
    return task(task_id, FAIL, **extra)


def flow(tasks: list, errors: list | None = None, finally_: list | None = None) -> FlowGraph:
    data: dict[str, Any] = {"id": "f", "namespace": "tests", "tasks": tasks}
    if errors:
        data["errors"] = errors
    if finally_:
        data["finally"] = finally_
    return build_graph(data, 1)


class Simulator:
    """Drives the core with scripted outcomes: `outcomes[task_id]` is a State or a function of
    (simulator, task run); by default a Fail task fails (when its `condition` renders true) and
    every other task succeeds."""

    def __init__(self, graph: FlowGraph, outcomes: Mapping[str, Outcome] | None = None,
                 context: Mapping[str, Any] | None = None) -> None:
        self.graph = graph
        self.outcomes = dict(outcomes or {})
        self.renderer = ContextRenderer(dict(context or {}))
        counter = itertools.count()
        self.new_id = lambda: f"tr{next(counter)}"
        self.view = ExecutionView(id="e1", namespace="tests", flow_id=graph.id, flow_revision=1, state=State.CREATED,
                                  start_date="2024-01-01T00:00:00.000Z")
        self.actions: list = []
        self.peak: Counter[str] = Counter()  # parent task id -> most active children seen at once

    # -- driving -------------------------------------------------------------------------------

    def decide(self) -> list:
        actions = decide(self.graph, self.view, self.new_id, self.renderer)
        self.view = apply_to_view(self.view, actions)
        self.actions += actions
        self._measure()
        return actions

    def finish(self, run_id: str, state: State | None = None) -> list:
        run = self.view.run(run_id)
        node = self.graph.node(run.task_id)
        reported = state or self.outcome(run)
        verdict = judge_result(node, run, run.attempts + 1, reported, {"value": run.task_id})
        assert verdict is not None
        self.view = self.view.replace_runs(
            replace(r, state=verdict.state, attempts=r.attempts + 1) if r.id == run_id else r
            for r in self.view.task_runs
        )
        return self.decide()

    def run_to_end(self, limit: int = 10_000) -> ExecutionView:
        """Finish the dispatched task runs one at a time, oldest first, until none is left."""
        self.decide()
        for _ in range(limit):
            pending = self.pending()
            if not pending:
                break
            self.finish(pending[0].id)
        return self.view

    def outcome(self, run: TaskRunView) -> State:
        scripted = self.outcomes.get(run.task_id)
        if callable(scripted):
            return scripted(self, run)
        if scripted is not None:
            return scripted
        node = self.graph.node(run.task_id)
        if node.definition.get("type") in FAIL_TYPES:
            condition = node.definition.get("condition")
            if condition is None:
                return State.FAILED
            try:
                return State.FAILED if is_truthy(self.renderer.render(node, run, condition)) else State.SUCCESS
            except TemplateError:
                return State.FAILED
        return State.SUCCESS

    def _measure(self) -> None:
        active: Counter[str] = Counter()
        for run in self.view.task_runs:
            if run.state in ACTIVE and run.parent_id is not None:
                active[self.view.run(run.parent_id).task_id] += 1
        for parent, count in active.items():
            self.peak[parent] = max(self.peak[parent], count)

    # -- looking ---------------------------------------------------------------------------------

    def pending(self) -> list[TaskRunView]:
        return [run for run in self.view.task_runs if run.state is State.CREATED]

    def runs(self, task_id: str) -> list[TaskRunView]:
        return [run for run in self.view.task_runs if run.task_id == task_id]

    def run_of(self, task_id: str) -> TaskRunView:
        runs = self.runs(task_id)
        assert len(runs) == 1, f"{task_id}: {len(runs)} task runs"
        return runs[0]

    def states(self) -> dict[str, State]:
        """The state of each task's first task run (what the compat cases' `task_states` give)."""
        states: dict[str, State] = {}
        for run in self.view.task_runs:
            states.setdefault(run.task_id, run.state)
        return states

    def order(self) -> list[str]:
        return [run.task_id for run in sorted(self.view.task_runs, key=lambda r: r.seq)]

    def children(self, task_id: str) -> list[TaskRunView]:
        parent = self.run_of(task_id)
        return [run for run in self.view.task_runs if run.parent_id == parent.id]

    def logs(self, task_id: str | None = None) -> list[str]:
        return [a.message for a in self.actions if isinstance(a, Log) and (task_id is None or a.task_id == task_id)]

    def outputs(self, task_id: str) -> Mapping[str, Any] | None:
        return self.run_of(task_id).outputs

    def state_changes(self, task_id: str) -> list[State]:
        ids = {run.id for run in self.runs(task_id)}
        return [a.state for a in self.actions if isinstance(a, SetTaskRunState) and a.task_run_id in ids]


# -- the Kestra corpus ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def corpus_data(name: str) -> dict[str, Any]:
    return yaml.safe_load((COMPAT / "flows" / "valids" / name).read_text())


def corpus_flow(name: str) -> FlowGraph:
    return build_graph(corpus_data(name), 1)


@lru_cache(maxsize=None)
def _cases() -> dict[str, dict[str, Any]]:
    return {case["name"]: case for case in yaml.safe_load((COMPAT / "cases.yaml").read_text())["cases"]}


def compat_case(name: str) -> dict[str, Any]:
    return _cases()[name]


def typed_inputs(data: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """The inputs as a form gives them, typed by the flow's declarations, with their defaults."""
    inputs: dict[str, Any] = {}
    for declared in data.get("inputs") or ():
        name, kind = declared["id"], declared.get("type", "STRING")
        if name in given:
            text = given[name]
            if kind == "BOOLEAN":
                inputs[name] = text.strip().lower() == "true"
            elif kind == "INT":
                inputs[name] = int(text)
            elif kind == "FLOAT":
                inputs[name] = float(text)
            else:
                inputs[name] = text
        elif declared.get("defaults") is not None:
            inputs[name] = declared["defaults"]
    return inputs


def graph_holds_nested_tasks() -> bool:
    """Whether the flow graph has a node for every task nested in a structure (a Switch's cases,
    a Dag's `tasks[].task`), which Switch and Dag need: see executor/core/model.py."""
    graph = corpus_flow("switch.yaml")
    return "t1" in graph.nodes


needs_nested_tasks = pytest.mark.skipif(
    not graph_holds_nested_tasks(),
    reason="executor/core/model.py does not yet make nodes of tasks in Switch cases and Dag tasks[].task",
)


# -- the harness's own tests ---------------------------------------------------------------------

def test_a_fail_task_fails_and_other_tasks_succeed_by_default():
    sim = Simulator(flow([task("a"), fail("b")]))
    sim.run_to_end()
    assert sim.states() == {"a": State.SUCCESS, "b": State.FAILED}


def test_a_fail_task_with_a_false_condition_succeeds():
    sim = Simulator(flow([fail("b", condition="{{ inputs.param == 'fail' }}")]), context={"inputs": {"param": "ok"}})
    sim.run_to_end()
    assert sim.states() == {"b": State.SUCCESS}


def test_scripted_outcomes_may_depend_on_the_task_run():
    sim = Simulator(flow([task("a")]), {"a": lambda sim, run: State.WARNING})
    assert sim.run_to_end().state is State.WARNING


def test_typed_inputs_follow_the_declarations_and_defaults():
    data = {"inputs": [{"id": "b", "type": "BOOLEAN"}, {"id": "s", "type": "STRING"},
                       {"id": "d", "type": "STRING", "defaults": "x"}, {"id": "absent", "type": "STRING"}]}
    assert typed_inputs(data, {"b": "true", "s": "1"}) == {"b": True, "s": "1", "d": "x"}


def test_dispatches_match_created_runnable_task_runs():
    sim = Simulator(flow([task("a"), task("b")]))
    sim.run_to_end()
    created = [a.id for a in sim.actions if isinstance(a, CreateTaskRun) and a.state is State.CREATED]
    assert [a.task_run_id for a in sim.actions if isinstance(a, Dispatch)] == created

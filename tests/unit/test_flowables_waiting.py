"""Pause and LoopUntil/WaitFor: flowables that wait, decided by the pure core with a fake clock
and delays fired by hand."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from executor.core import ExecutionView, build_graph, decide, judge_result
from executor.core.actions import ScheduleDelay, SetExecutionState
from executor.core.control import resume
from executor.core.decide import ViewDetails, apply_to_view
from orchestrator.states import State

PAUSE = "io.kestra.plugin.core.flow.Pause"
WAIT_FOR = "io.kestra.plugin.core.flow.WaitFor"
LOOP_UNTIL = "io.kestra.plugin.core.flow.LoopUntil"
LOG = "io.kestra.plugin.core.log.Log"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Condition:
    """A renderer whose loop condition is scripted: true after the `true_from`-th iteration."""

    def __init__(self, true_from: int | None = None):
        self.true_from = true_from

    def render(self, node, run, value):
        if node.type in (WAIT_FOR, LOOP_UNTIL) and value == "condition":
            done = (run.outputs or {}).get("iterationCount", 0) + 1
            return self.true_from is not None and done >= self.true_from
        return value


class Sim:
    def __init__(self, tasks, renderer=None):
        self.graph = build_graph({"id": "f", "namespace": "n", "tasks": tasks}, 1)
        self.now = T0
        self.details = ViewDetails(lambda: self.now)
        self.renderer = renderer or Condition()
        ids = itertools.count()
        self.new_id = lambda: f"tr{next(ids)}"
        self.view = ExecutionView(id="e", namespace="n", flow_id="f", flow_revision=1, state=State.CREATED,
                                  start_date="2026-01-01T00:00:00.000Z")
        self.delays: dict[tuple[str, str], datetime] = {}

    def decide(self, fired=None):
        self.view = replace(self.view, fired=fired or {}, scheduled=frozenset(self.delays))
        actions = decide(self.graph, self.view, self.new_id, self.renderer, self.details)
        for action in actions:
            if isinstance(action, ScheduleDelay):
                self.delays.setdefault((action.task_run_id, action.kind), self.now + action.after)
        self.view = replace(apply_to_view(self.view, actions), fired={})
        return actions

    def finish_all(self):
        while pending := [run for run in self.view.task_runs if run.state is State.CREATED]:
            run = pending[0]
            verdict = judge_result(self.graph.node(run.task_id), run, 1, State.SUCCESS, None)
            self.view = self.view.replace_runs(
                replace(r, state=verdict.state, attempts=1) if r.id == run.id else r for r in self.view.task_runs)
            self.decide()

    def fire(self, kind):
        (run_id, _), at = next((key, at) for key, at in self.delays.items() if key[1] == kind)
        del self.delays[(run_id, kind)]
        self.now = max(self.now, at)
        self.decide({run_id: kind})

    def state(self, task_id):
        return [run.state for run in self.view.task_runs if run.task_id == task_id]


def pause(**extra):
    return {"id": "pause", "type": PAUSE, "tasks": [{"id": "inside", "type": LOG, "message": "m"}], **extra}


AFTER = {"id": "after", "type": LOG, "message": "m"}


def test_a_pause_without_a_duration_pauses_the_execution_until_resumed():
    sim = Sim([pause(), AFTER])
    sim.decide()
    assert sim.view.state is State.PAUSED and sim.state("pause") == [State.PAUSED]
    assert sim.delays == {}  # only a resume ends it
    sim.decide()
    assert sim.view.state is State.PAUSED  # nothing moves by itself
    actions = resume(sim.view, {"reason": "ok"})
    sim.view = apply_to_view(sim.view, actions)
    sim.decide()
    assert sim.view.state is State.RUNNING and sim.state("inside") == [State.CREATED]
    sim.finish_all()
    assert sim.view.state is State.SUCCESS and sim.state("after") == [State.SUCCESS]
    assert sim.view.run(sim.view.task_runs[0].id).outputs == {"onResume": {"reason": "ok"}}


def test_only_a_paused_execution_resumes():
    sim = Sim([AFTER])
    sim.decide()
    with pytest.raises(ValueError, match="not PAUSED"):
        resume(sim.view)


def test_a_delay_resumes_by_itself_after_its_duration():
    sim = Sim([pause(delay="PT5S"), AFTER])
    sim.decide()
    assert list(sim.delays.values()) == [T0 + timedelta(seconds=5)]
    sim.fire("resume")
    assert sim.state("pause") == [State.RUNNING] and sim.view.state is State.RUNNING
    sim.finish_all()
    assert sim.view.state is State.SUCCESS


def test_a_timeout_fails_the_pause_when_no_one_resumes_it():
    sim = Sim([pause(timeout="PT1S"), AFTER])
    sim.decide()
    sim.fire("timeout")
    assert sim.state("pause") == [State.FAILED] and sim.view.state is State.FAILED
    assert sim.state("after") == [] and sim.state("inside") == []


@pytest.mark.parametrize("behavior, pause_state, execution_state", [
    ("RESUME", State.SUCCESS, State.SUCCESS), ("WARN", State.WARNING, State.WARNING),
    ("FAIL", State.FAILED, State.FAILED), ("CANCEL", State.CANCELLED, State.CANCELLED),
])
def test_pause_duration_ends_as_its_behavior_says(behavior, pause_state, execution_state):
    sim = Sim([pause(pauseDuration="PT10S", behavior=behavior)])
    sim.decide()
    sim.fire("resume")
    sim.finish_all()
    assert sim.state("pause") == [pause_state]
    assert sim.view.state is execution_state


def wait_for(type_=WAIT_FOR, **extra):
    return {"id": "loop", "type": type_, "condition": "condition",
            "tasks": [{"id": "a", "type": LOG, "message": "m"}, {"id": "b", "type": LOG, "message": "m"}], **extra}


def test_the_loop_runs_its_tasks_again_until_the_condition_holds():
    sim = Sim([wait_for(checkFrequency={"interval": "PT2S"})], Condition(true_from=3))
    sim.decide()
    sim.finish_all()
    for _ in range(2):
        assert [key[1] for key in sim.delays] == ["next-iteration"]
        sim.fire("next-iteration")
        sim.finish_all()
    assert sim.view.state is State.SUCCESS
    runs = [(run.task_id, run.iteration) for run in sim.view.task_runs if run.task_id != "loop"]
    assert runs == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert sim.now == T0 + timedelta(seconds=4)
    loop = next(run for run in sim.view.task_runs if run.task_id == "loop")
    assert loop.outputs == {"iterationCount": 2}


def test_max_iterations_end_the_loop_successfully_unless_fail_on_max_reached():
    sim = Sim([wait_for(checkFrequency={"maxIterations": 2, "interval": "PT1S"})])
    sim.decide()
    sim.finish_all()
    sim.fire("next-iteration")
    sim.finish_all()
    assert sim.view.state is State.SUCCESS and sim.delays == {}
    failing = Sim([wait_for(checkFrequency={"maxIterations": 1}, failOnMaxReached=True)])
    failing.decide()
    failing.finish_all()
    assert failing.view.state is State.FAILED


def test_max_duration_is_measured_from_the_start_of_the_loop():
    sim = Sim([wait_for(checkFrequency={"maxDuration": "PT3S", "interval": "PT1S", "maxIterations": 1000},
                        failOnMaxReached=True)])
    sim.decide()
    sim.finish_all()
    iterations = 1
    while sim.delays:
        sim.fire("next-iteration")
        sim.finish_all()
        iterations += 1
    assert sim.view.state is State.FAILED and iterations == 4


def test_a_failed_iteration_fails_the_loop():
    sim = Sim([{**wait_for(), "tasks": [{"id": "boom", "type": "io.kestra.plugin.core.execution.Fail"}]}])
    sim.decide()
    run = sim.view.task_runs[-1]
    verdict = judge_result(sim.graph.node("boom"), run, 1, State.FAILED, None)
    sim.view = sim.view.replace_runs(replace(r, state=verdict.state) if r.id == run.id else r
                                     for r in sim.view.task_runs)
    sim.decide()
    assert sim.view.state is State.FAILED and sim.delays == {}


def test_loop_until_waits_a_minute_by_default_and_has_no_iteration_limit():
    sim = Sim([wait_for(LOOP_UNTIL)], Condition(true_from=150))
    sim.decide()
    sim.finish_all()
    assert list(sim.delays.values()) == [T0 + timedelta(minutes=1)]
    for _ in range(149):
        sim.fire("next-iteration")
        sim.finish_all()
    assert sim.view.state is State.SUCCESS


def test_a_pending_delay_is_asked_for_once():
    sim = Sim([wait_for()])
    sim.decide()
    sim.finish_all()
    again = sim.decide()
    assert not [a for a in again if isinstance(a, ScheduleDelay)]
    assert not [a for a in again if isinstance(a, SetExecutionState)]

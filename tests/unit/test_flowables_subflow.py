"""Subflow decisions: starting the child once, waiting for it, taking its state and outputs."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from executor.core import ExecutionView, build_graph, decide
from executor.core.actions import StartSubflow
from executor.core.decide import ContextRenderer, ViewDetails, apply_to_view
from orchestrator.states import State

SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
OLD_FLOW = "io.kestra.core.tasks.flows.Flow"


class Sim:
    def __init__(self, **properties):
        task = {"id": "call", "type": properties.pop("type", SUBFLOW), "namespace": "team", "flowId": "child",
                **properties}
        self.graph = build_graph({"id": "f", "namespace": "n", "tasks": [task]}, 1)
        self.details = ViewDetails(lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
        ids = itertools.count()
        self.new_id = lambda: f"tr{next(ids)}"
        self.renderer = ContextRenderer({"inputs": {"who": "world"}})
        self.view = ExecutionView(id="e", namespace="n", flow_id="f", flow_revision=1, state=State.CREATED,
                                  start_date="2026-01-01T00:00:00.000Z")

    def decide(self):
        actions = decide(self.graph, self.view, self.new_id, self.renderer, self.details)
        self.view = replace(apply_to_view(self.view, actions), scheduled=frozenset())
        return actions

    def started(self, child_id="child-1"):
        """What the shell does after StartSubflow: record the child's id."""
        run = self.view.task_runs[0]
        self.view = self.view.replace_runs([replace(run, outputs={"executionId": child_id})])

    def child(self, state, outputs=None, context=None, child_id="child-1"):
        self.details.executions[child_id] = {"state": state, "outputs": outputs or {}, "context": context or {}}

    @property
    def run(self):
        return self.view.task_runs[0]


def test_the_child_is_asked_for_once_with_its_properties_rendered():
    sim = Sim(inputs={"greeting": "hello {{ inputs.who }}"}, labels={"team": "data"}, inheritLabels=True,
              revision=3)
    actions = sim.decide()
    starts = [action for action in actions if isinstance(action, StartSubflow)]
    assert starts == [StartSubflow(task_run_id=sim.run.id, namespace="team", flow_id="child", revision=3,
                                   inputs={"greeting": "hello world"}, labels={"team": "data"},
                                   inherit_labels=True, wait=True)]
    assert sim.run.state is State.RUNNING


def test_waiting_for_the_child_then_taking_its_state_and_outputs():
    sim = Sim(outputs={"extracted": "{{ outputs.t.value }}"})
    sim.decide()
    sim.started()
    sim.child("RUNNING")
    assert not sim.decide()  # nothing to do while the child runs
    sim.child("SUCCESS", outputs={"final": 1}, context={"outputs": {"t": {"value": "v"}}})
    sim.decide()
    assert sim.run.state is State.SUCCESS and sim.view.state is State.SUCCESS
    assert sim.run.outputs == {"executionId": "child-1", "state": "SUCCESS",
                               "outputs": {"final": 1, "extracted": "v"}}


@pytest.mark.parametrize("child_state, transmit, expected", [
    ("FAILED", True, State.FAILED), ("FAILED", False, State.SUCCESS), ("KILLED", True, State.KILLED),
    ("WARNING", True, State.WARNING),
])
def test_a_child_that_did_not_succeed(child_state, transmit, expected):
    sim = Sim(transmitFailed=transmit)
    sim.decide()
    sim.started()
    sim.child(child_state)
    sim.decide()
    assert sim.run.state is expected


def test_without_wait_the_task_succeeds_once_the_child_exists():
    sim = Sim(wait=False)
    sim.decide()
    sim.started()
    sim.decide()
    assert sim.run.state is State.SUCCESS


def test_the_older_flow_task_neither_waits_nor_transmits_failure_by_default():
    sim = Sim(type=OLD_FLOW)
    start = [a for a in sim.decide() if isinstance(a, StartSubflow)][0]
    assert start.wait is False


def test_an_unrenderable_property_fails_the_task_with_the_reason():
    sim = Sim(inputs={"x": "{{ inputs.missing }}"})
    actions = sim.decide()
    assert sim.run.state is State.FAILED
    assert any("Unable to render the subflow" in getattr(a, "message", "") for a in actions)


def test_a_child_that_vanished_fails_the_task():
    sim = Sim()
    sim.decide()
    sim.started("gone")
    sim.decide()
    assert sim.run.state is State.FAILED

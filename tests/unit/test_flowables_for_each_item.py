"""ForEachItem decisions: split, then one subflow per batch (started a chunk per step), waiting
for them and counting them by state, then the merge; failures transmitted as Subflow does."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from executor.core import ExecutionView, build_graph, decide
from executor.core.actions import Dispatch, SetTaskRunState, StartSubflow
from executor.core.decide import ContextRenderer, SubflowCounts, ViewDetails, apply_to_view
from executor.core.flowables import for_each_item as core
from executor.flowables.for_each_item import ITEMS, MERGE, SPLIT
from orchestrator.states import State
from workers import registry

FOR_EACH_ITEM = "io.kestra.plugin.core.flow.ForEachItem"


class Sim:
    def __init__(self, **properties):
        task = {"id": "each", "type": FOR_EACH_ITEM, "items": "{{ inputs.file }}", "batch": {"rows": 3},
                "namespace": "team", "flowId": "child", "inputs": {"items": "{{ taskrun.items }}"}, **properties}
        self.graph = build_graph({"id": "f", "namespace": "n", "tasks": [task]}, 1)
        self.details = ViewDetails(lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
        ids = itertools.count()
        self.new_id = lambda: f"tr{next(ids)}"
        self.renderer = ContextRenderer({"inputs": {"file": "kestra:///n/f/executions/e/inputs/file/items.txt"}})
        self.view = ExecutionView(id="e", namespace="n", flow_id="f", flow_revision=1, state=State.CREATED,
                                  start_date="2026-01-01T00:00:00.000Z")

    def decide(self):
        actions = decide(self.graph, self.view, self.new_id, self.renderer, self.details)
        self.view = replace(apply_to_view(self.view, actions), scheduled=frozenset())
        return actions

    def run(self, task_id):
        return next(run for run in self.view.task_runs if run.task_id == task_id)

    def has(self, task_id):
        return any(run.task_id == task_id for run in self.view.task_runs)

    def finish(self, task_id, state=State.SUCCESS, outputs=None):
        """A worker's result for a runnable task run."""
        done = replace(self.run(task_id), state=state, outputs=outputs)
        self.view = self.view.replace_runs([done if run.id == done.id else run for run in self.view.task_runs])

    def split(self, batches, extension=".txt"):
        self.decide()
        self.finish("each_split", outputs={"splits": "kestra:///…/splits.txt", "numberOfBatches": batches,
                                           "extension": extension})
        return self.decide()

    def subflows(self, started, **states):
        self.details.started_subflows[self.run("each_items").id] = SubflowCounts(started, states)


def starts(actions):
    return [action for action in actions if isinstance(action, StartSubflow)]


def test_the_flowable_runs_its_generated_split_items_and_merge_tasks():
    graph = Sim().graph
    assert [node.id for node in graph.node("each").branch("tasks")] == ["each_split", "each_items", "each_merge"]
    assert [(graph.node(i).type, graph.node(i).kind) for i in ("each_split", "each_items", "each_merge")] == [
        (SPLIT, "runnable"), (ITEMS, "flowable"), (MERGE, "runnable")]
    assert graph.node("each_split").definition["batch"] == {"rows": 3}


def test_the_generated_types_stay_out_of_the_flow_schema():
    names = {task_type.name for task_type in registry.canonical_types()}
    assert FOR_EACH_ITEM in names and not names & {SPLIT, ITEMS, MERGE}


def test_the_split_runs_first_on_a_worker():
    sim = Sim()
    actions = sim.decide()
    assert sim.run("each").state is State.RUNNING
    assert Dispatch(sim.run("each_split").id, 1) in actions
    assert not sim.has("each_items")


def test_one_subflow_per_batch_each_given_its_batch_file():
    sim = Sim(labels={"batch": "{{ taskrun.iteration }}"}, revision=2)
    actions = sim.split(4)
    split_id, each_id = sim.run("each_split").id, sim.run("each").id
    started = starts(actions)
    assert [start.iteration for start in started] == [0, 1, 2, 3]
    assert started[1] == StartSubflow(
        task_run_id=sim.run("each_items").id, namespace="team", flow_id="child", revision=2,
        inputs={"items": f"kestra:///n/f/executions/e/tasks/each_split/{split_id}/1.txt"}, labels={"batch": "1"},
        inherit_labels=False, wait=True, iteration=1,
        outputs_uri=f"kestra:///n/f/executions/e/tasks/each/{each_id}/outputs/1.ion")
    assert sim.run("each_items").outputs == {"numberOfBatches": 4, "iterations": {"CREATED": 4, "RUNNING": 0}}


def test_subflows_start_a_chunk_per_step(monkeypatch):
    monkeypatch.setattr(core, "START_PER_STEP", 3)
    sim = Sim()
    assert [start.iteration for start in starts(sim.split(7))] == [0, 1, 2]
    sim.subflows(3, CREATED=3)
    assert [start.iteration for start in starts(sim.decide())] == [3, 4, 5]
    sim.subflows(6, RUNNING=2, SUCCESS=4)
    assert [start.iteration for start in starts(sim.decide())] == [6]
    assert sim.run("each_items").outputs["iterations"] == {"CREATED": 1, "RUNNING": 2, "SUCCESS": 4}
    sim.subflows(7, SUCCESS=7)
    assert not starts(sim.decide())
    assert sim.run("each_items").state is State.SUCCESS


def test_it_waits_for_every_subflow_then_merges():
    sim = Sim()
    sim.split(4)
    sim.subflows(4, RUNNING=1, SUCCESS=3)
    sim.decide()
    assert sim.run("each_items").state is State.RUNNING and not sim.has("each_merge")
    assert sim.run("each_items").outputs["iterations"] == {"CREATED": 0, "RUNNING": 1, "SUCCESS": 3}
    sim.subflows(4, SUCCESS=4)
    actions = sim.decide()
    assert sim.run("each_items").state is State.SUCCESS
    assert sim.run("each_items").outputs == {"numberOfBatches": 4,
                                             "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 4}}
    assert Dispatch(sim.run("each_merge").id, 1) in actions
    sim.finish("each_merge", outputs={"subflowOutputs": "kestra:///…/outputs.ion"})
    sim.decide()
    assert sim.run("each").state is State.SUCCESS and sim.view.state is State.SUCCESS


def test_nothing_changes_while_the_counts_do_not():
    sim = Sim()
    sim.split(2)
    sim.subflows(2, RUNNING=2)
    sim.decide()
    assert not sim.decide()


@pytest.mark.parametrize("states, transmit, expected", [
    ({"SUCCESS": 3, "FAILED": 1}, True, State.FAILED),
    ({"SUCCESS": 3, "CANCELLED": 1}, True, State.FAILED),
    ({"KILLED": 1, "WARNING": 3}, True, State.KILLED),
    ({"SUCCESS": 3, "WARNING": 1}, True, State.WARNING),
    ({"SUCCESS": 3, "FAILED": 1}, False, State.SUCCESS),
])
def test_failures_are_transmitted_as_subflow_does(states, transmit, expected):
    sim = Sim(transmitFailed=transmit)
    sim.split(4)
    sim.subflows(4, **states)
    sim.decide()
    assert sim.run("each_items").state is expected
    if expected in (State.FAILED, State.KILLED):
        assert not sim.has("each_merge")  # Kestra's three task runs: the merge does not run
        assert sim.run("each").state is expected and sim.view.state is expected


def test_allow_failure_on_the_for_each_item_makes_it_a_warning():
    sim = Sim(allowFailure=True)
    sim.split(2)
    sim.subflows(2, FAILED=2)
    sim.decide()
    assert sim.run("each_items").state is State.FAILED
    assert sim.run("each").state is State.WARNING and sim.view.state is State.WARNING


def test_without_wait_it_succeeds_once_every_subflow_is_started():
    sim = Sim(wait=False)
    actions = sim.split(2)
    assert all(start.wait is False and start.outputs_uri is None for start in starts(actions))
    sim.subflows(2, RUNNING=2)
    sim.decide()
    assert sim.run("each_items").state is State.SUCCESS
    assert sim.run("each_items").outputs == {"numberOfBatches": 2, "iterations": {"RUNNING": 0, "SUCCESS": 2}}
    assert sim.graph.node("each_merge").definition["wait"] is False


def test_an_empty_file_makes_no_subflow_and_no_outputs():
    sim = Sim()
    actions = sim.split(0)
    assert not starts(actions)
    assert sim.run("each_items").state is State.SUCCESS and sim.run("each_items").outputs is None
    assert sim.has("each_merge")


def test_a_subflow_replaced_by_a_flow_retry_is_waited_for():
    sim = Sim()
    sim.split(2)
    sim.subflows(2, SUCCESS=1)  # the other one RETRIED, its next attempt not created yet
    sim.decide()
    assert sim.run("each_items").state is State.RUNNING


def test_unrenderable_inputs_start_no_subflow_and_fail_the_task():
    sim = Sim(inputs={"x": "{{ inputs.missing }}"})
    actions = sim.split(3)
    assert not starts(actions)
    assert sim.run("each_items").state is State.FAILED
    assert any("Unable to render the inputs" in getattr(action, "message", "") for action in actions)


def test_a_failed_split_fails_the_for_each_item():
    sim = Sim()
    sim.decide()
    sim.finish("each_split", State.FAILED)
    sim.decide()
    assert not sim.has("each_items")
    assert sim.run("each").state is State.FAILED and sim.view.state is State.FAILED


def test_outputs_keep_their_order_of_states():
    counts = SubflowCounts(5, {"SUCCESS": 2, "RUNNING": 1, "FAILED": 1})
    assert list(core.iterations(counts, 6, True).items()) == [
        ("CREATED", 1), ("RUNNING", 1), ("SUCCESS", 2), ("FAILED", 1)]


def test_a_started_batch_keeps_the_task_run_running_until_counted():
    sim = Sim()
    actions = sim.split(1)
    assert [a for a in actions if isinstance(a, SetTaskRunState) and a.task_run_id == sim.run("each_items").id]
    assert sim.run("each_items").state is State.RUNNING

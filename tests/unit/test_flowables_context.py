"""What tasks inside flowables see: the graph's nodes for tasks nested in structures (Switch
cases, Dag items), loop outputs nested by the values of every enclosing loop, and Kestra's
`parent`/`parents`, for runnable tasks (their job's context) and flowables' own properties."""

from __future__ import annotations

from executor.core.context import lineage, outputs_of, parents_of, run_context, value_path
from executor.core.model import TaskRunView
from orchestrator.states import State
from orchestrator.templating import render_value
from tests.unit.test_flowables_harness import (
    DAG, FOREACH, SEQ, SWITCH, Simulator, corpus_flow, flow, graph_holds_nested_tasks, task,
)


def run(run_id, task_id, parent=None, value=None, outputs=None):
    return TaskRunView(id=run_id, task_id=task_id, parent_id=parent, state=State.RUNNING, seq=0, value=value,
                       outputs=outputs)


# -- the graph -------------------------------------------------------------------------------------

def test_tasks_in_switch_cases_and_dag_items_are_nodes_but_not_branches():
    graph = flow([
        task("s", SWITCH, value="a", cases={"a": [task("in-a")], "b": [task("in-b")]}, defaults=[task("d")]),
        task("dag", DAG, tasks=[{"task": task("x")}, {"task": task("y"), "dependsOn": ["x"]}]),
    ])
    assert {"in-a", "in-b", "d", "x", "y"} <= set(graph.nodes)
    assert {name: [n.id for n in nodes] for name, nodes in graph.node("s").branches.items()} == {"defaults": ["d"]}
    assert graph.node("dag").branches == {}
    assert graph_holds_nested_tasks()


def test_branches_keep_their_order():
    graph = flow([task("seq", SEQ, tasks=[task("a"), task("b"), task("c")], errors=[task("e1"), task("e2")])])
    assert [n.id for n in graph.node("seq").branch("tasks")] == ["a", "b", "c"]
    assert [n.id for n in graph.node("seq").branch("errors")] == ["e1", "e2"]


# -- outputs ---------------------------------------------------------------------------------------

def test_outputs_nest_by_the_values_of_every_enclosing_loop():
    runs = {r.id: r for r in [
        run("each", "each"), run("seq1", "seq", "each", "v1"), run("seq2", "seq", "each", "v2"),
        run("inner", "inner", "seq2", "x"),
    ]}
    rows = [
        ("in-seq", None, {"n": 1}, "seq1"),  # a task in a Sequential in a ForEach
        ("in-seq", None, {"n": 2}, "seq2"),
        ("deep", "y", {"n": 3}, "inner"),  # a loop in a loop
        ("top", None, {"n": 4}, None),
        ("old-row", "z", {"n": 5}),  # rows without a parent still nest by their own value
    ]
    assert outputs_of(rows, runs) == {
        "in-seq": {"v1": {"n": 1}, "v2": {"n": 2}},
        "deep": {"v2": {"x": {"y": {"n": 3}}}},
        "top": {"n": 4},
        "old-row": {"z": {"n": 5}},
    }


def test_value_path_is_outermost_first():
    ancestors = [run("b", "b", value="inner"), run("s", "s"), run("a", "a", value="outer")]
    assert value_path(ancestors, "own") == ("outer", "inner", "own")
    assert value_path([], None) == ()


# -- parent and parents ----------------------------------------------------------------------------

def test_parents_are_nearest_first_and_leave_out_runs_with_neither_value_nor_outputs():
    runs = {r.id: r for r in [
        run("each", "each"), run("sw", "sw", "each", "b", outputs={"value": "b"}), run("seq", "seq", "sw"),
    ]}
    ancestors = lineage(runs, "seq")
    assert [r.id for r in ancestors] == ["seq", "sw", "each"]
    assert parents_of(ancestors, {}) == [{"taskrun": {"value": "b"}, "outputs": {"value": "b"}}]


def test_parent_outputs_are_found_by_their_value_path_when_the_view_has_none():
    runs = {r.id: r for r in [run("each", "each"), run("sw", "sw", "each", "b")]}
    outputs = {"sw": {"a": {"value": "a"}, "b": {"value": "b"}}}
    assert parents_of(lineage(runs, "sw"), outputs) == [{"taskrun": {"value": "b"}, "outputs": {"value": "b"}}]


def test_a_task_of_a_nested_loop_reads_both_values_through_parents():
    """Kestra's each-switch flow: `{{ parents[0].taskrun.value }} {{ parents[1].taskrun.value }}`."""
    sim = Simulator(corpus_flow("each-switch.yaml"))
    view = sim.run_to_end()
    assert view.state is State.SUCCESS and len(view.task_runs) == 12
    node = sim.graph.node("2-1-1_switch-number-2")
    target = sim.run_of("2-1-1_switch-number-2")
    context = run_context(sim.graph, view, node, target, "2024-01-01T00:00:00.000Z", {})
    assert render_value(node.definition["format"], context) == "2 b"
    assert context["parent"]["taskrun"]["value"] == "2"


def test_top_level_tasks_have_empty_parents_and_no_parent():
    sim = Simulator(flow([task("a")]))
    view = sim.run_to_end()
    context = run_context(sim.graph, view, sim.graph.node("a"), sim.run_of("a"), "2024-01-01T00:00:00.000Z", {})
    assert context["parents"] == [] and "parent" not in context


def test_a_flowable_inside_a_loop_renders_with_its_parent():
    """A Switch in a Sequential in a ForEach has no value of its own: it reads the iteration's."""
    graph = flow([task("each", FOREACH, values=["a", "b"], tasks=[
        task("seq", SEQ, tasks=[
            task("sw", SWITCH, value="{{ parent.taskrun.value }}", cases={"a": [task("is-a")], "b": [task("is-b")]}),
        ]),
    ])])
    sim = Simulator(graph)
    assert sim.run_to_end().state is State.SUCCESS
    assert len(sim.runs("is-a")) == 1 and len(sim.runs("is-b")) == 1
    assert [r.outputs["value"] for r in sim.runs("sw")] == ["a", "b"]


def test_run_if_inside_a_loop_sees_the_parent():
    graph = flow([task("each", FOREACH, values=["keep", "skip"], tasks=[
        task("seq", SEQ, tasks=[task("maybe", runIf="{{ parent.taskrun.value == 'keep' }}")]),
    ])])
    sim = Simulator(graph)
    sim.run_to_end()
    assert [r.state for r in sim.runs("maybe")] == [State.SUCCESS, State.SKIPPED]

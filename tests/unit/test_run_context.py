"""What a worker job carries: only the outputs its task's expressions name."""

from executor.core.context import outputs_of, referenced_outputs, run_context
from executor.core.model import ExecutionView, TaskNode, TaskRunView, build_graph
from orchestrator.states import State

RETURN = "io.kestra.plugin.core.debug.Return"


def node(**definition):
    return TaskNode(id="t", type=RETURN, kind="runnable", definition={"id": "t", "type": RETURN, **definition})


def test_named_outputs_are_found_in_dotted_and_bracket_forms():
    found = referenced_outputs(node(format="{{ outputs.a.value }} {{ outputs['b-c'].value }} {{outputs[\"d\"]}}"))
    assert found == {"a", "b-c", "d"}


def test_no_reference_means_no_outputs():
    assert referenced_outputs(node(format="{{ inputs.x }}")) == frozenset()


def test_dynamic_access_sends_every_output():
    assert referenced_outputs(node(format="{{ outputs[inputs.which].value }}")) is None
    assert referenced_outputs(node(format="{{ outputs | keys }}")) is None


def view(*runs):
    return ExecutionView(id="e", namespace="n", flow_id="f", flow_revision=1, state=State.RUNNING,
                         start_date="2024-01-01T00:00:00.000Z", task_runs=runs,
                         labels=({"key": "team", "value": "data"},))


def test_loop_outputs_are_nested_by_value():
    rows = [("a", None, {"value": 1}), ("b", "x", {"v": 2}), ("b", "y", {"v": 3}), ("c", None, None)]
    assert outputs_of(rows) == {"a": {"value": 1}, "b": {"x": {"v": 2}, "y": {"v": 3}}}


def test_the_context_has_kestra_variables():
    graph = build_graph({"id": "f", "namespace": "n", "variables": {"v": 1},
                         "tasks": [{"id": "t", "type": RETURN, "format": "{{ outputs.a.value }}"}]}, 3)
    run = TaskRunView(id="r", task_id="t", parent_id=None, state=State.CREATED, seq=1)
    earlier = TaskRunView(id="1", task_id="a", parent_id=None, state=State.SUCCESS, seq=0)
    context = run_context(graph, view(earlier, run), graph.node("t"), run, "2024-01-01T00:00:01.000Z",
                          {"a": {"value": 1}})
    assert context["flow"] == {"id": "f", "namespace": "n", "revision": 3}
    assert context["execution"]["id"] == "e"
    assert context["task"] == {"id": "t", "type": RETURN}
    assert context["taskrun"]["id"] == "r" and context["taskrun"]["startDate"] == "2024-01-01T00:00:01.000Z"
    assert context["outputs"] == {"a": {"value": 1}}
    assert context["labels"] == {"team": "data"}
    assert context["vars"] == {"v": 1}

"""If: the condition, evaluated once; then, else, no else; errors, finally; render failures;
allowFailure, disabled and runIf."""

from __future__ import annotations

import pytest

from executor.core import SetTaskRunState
from executor.core.decide import ContextRenderer
from orchestrator.states import State
from tests.unit.test_flowables_harness import IF, SEQ, Simulator, fail, flow, task


def if_(task_id, condition, then, else_=None, **extra):
    definition = task(task_id, IF, condition=condition, then=then, **extra)
    if else_ is not None:
        definition["else"] = else_
    return definition


class CountingRenderer:
    """A renderer over a context that can change between steps, counting what it renders."""

    def __init__(self, context):
        self.context = context
        self.rendered: list[str] = []

    def render(self, node, run, value, ancestors=()):
        self.rendered.append(node.id)
        return ContextRenderer(self.context).render(node, run, value, ancestors)


@pytest.mark.parametrize("value, branch", [
    (True, "yes"), (False, "no"), ("true", "yes"), ("false", "no"), ("1", "yes"), ("0", "no"), ("-0", "no"),
    ("", "no"), (None, "no"), ("0.0", "yes"), ("anything", "yes"), (" false ", "no"),
])
def test_the_condition_follows_kestra_truthiness(value, branch):
    graph = flow([if_("if", "{{ inputs.param }}", [task("yes")], [task("no")])])
    sim = Simulator(graph, context={"inputs": {"param": value}})
    view = sim.run_to_end()
    assert sim.states() == {"if": State.SUCCESS, branch: State.SUCCESS}
    assert view.state is State.SUCCESS


@pytest.mark.parametrize("literal, branch", [(True, "yes"), (False, "no")])
def test_a_literal_boolean_condition(literal, branch):
    sim = Simulator(flow([if_("if", literal, [task("yes")], [task("no")])]))
    sim.run_to_end()
    assert branch in sim.states()


def test_the_branch_runs_in_sequence_under_the_if():
    sim = Simulator(flow([if_("if", "true", [task("a"), task("b")]), task("last")]))
    sim.decide()
    assert [r.task_id for r in sim.pending()] == ["a"]
    view = sim.run_to_end()
    assert sim.order() == ["if", "a", "b", "last"]
    assert all(r.parent_id == sim.run_of("if").id for r in sim.children("if"))
    assert view.state is State.SUCCESS


def test_without_else_a_false_condition_succeeds_with_nothing_to_run():
    sim = Simulator(flow([if_("if", "false", [task("a")]), task("last")]))
    view = sim.run_to_end()
    assert sim.states() == {"if": State.SUCCESS, "last": State.SUCCESS}
    assert view.state is State.SUCCESS


def test_the_evaluation_is_kept_as_the_output_evaluation_result():
    sim = Simulator(flow([if_("if", "{{ inputs.go }}", [task("a")])]), context={"inputs": {"go": True}})
    sim.run_to_end()
    assert sim.outputs("if") == {"evaluationResult": True}
    outputs = [a for a in sim.actions if isinstance(a, SetTaskRunState) and a.outputs is not None]
    assert [a.state for a in outputs] == [State.RUNNING]


def test_the_condition_is_evaluated_once_even_if_what_it_reads_changes():
    renderer = CountingRenderer({"inputs": {"go": True}})
    sim = Simulator(flow([if_("if", "{{ inputs.go }}", [task("a"), task("b")], [task("c")])]))
    sim.renderer = renderer
    sim.decide()
    renderer.context = {"inputs": {"go": False}}  # e.g. a KV entry the branch itself changes
    sim.run_to_end()
    assert set(sim.states()) == {"if", "a", "b"}
    assert renderer.rendered.count("if") == 1


def test_a_condition_that_cannot_be_rendered_fails_the_if_with_the_reason():
    sim = Simulator(flow([if_("if", "{{ inputs.missing }}", [task("a")]), task("last")], errors=[task("alert")]))
    view = sim.run_to_end()
    assert sim.states() == {"if": State.FAILED, "alert": State.SUCCESS}
    assert any("Unable to evaluate the condition" in m and "missing" in m for m in sim.logs("if"))
    assert view.state is State.FAILED


def test_an_if_allowed_to_fail_turns_a_render_failure_into_a_warning():
    sim = Simulator(flow([if_("if", "{{ nope }}", [task("a")], allowFailure=True), task("last")]))
    view = sim.run_to_end()
    assert sim.states() == {"if": State.WARNING, "last": State.SUCCESS}
    assert view.state is State.WARNING


def test_a_failure_in_the_branch_runs_the_if_errors_and_fails_the_if():
    graph = flow([if_("if", "true", [fail("a"), task("b")], [task("c")], errors=[task("e")]), task("last")])
    sim = Simulator(graph)
    view = sim.run_to_end()
    assert sim.states() == {"if": State.FAILED, "a": State.FAILED, "e": State.SUCCESS}
    assert sim.run_of("e").parent_id == sim.run_of("if").id
    assert view.state is State.FAILED


def test_finally_runs_after_the_branch():
    sim = Simulator(flow([if_("if", "false", [task("a")], [task("b")], **{"finally": [task("z")]})]))
    sim.run_to_end()
    assert sim.order() == ["if", "b", "z"]


def test_finally_runs_when_the_chosen_branch_is_empty_and_the_if_is_evaluated_once():
    renderer = CountingRenderer({})
    sim = Simulator(flow([if_("if", "false", [task("a")], **{"finally": [task("z1"), task("z2")]})]))
    sim.renderer = renderer
    view = sim.run_to_end()
    assert sim.order() == ["if", "z1", "z2"]
    assert renderer.rendered.count("if") == 1 and view.state is State.SUCCESS


def test_a_failing_finally_fails_the_if():
    sim = Simulator(flow([if_("if", "true", [task("a")], **{"finally": [fail("z")]})]))
    assert sim.run_to_end().state is State.FAILED
    assert sim.states()["if"] is State.FAILED


def test_disabled_tasks_of_the_branch_make_no_task_run():
    sim = Simulator(flow([if_("if", "true", [task("a", disabled=True), task("b")])]))
    sim.run_to_end()
    assert set(sim.states()) == {"if", "b"}


def test_a_branch_whose_tasks_are_all_disabled_succeeds():
    sim = Simulator(flow([if_("if", "true", [task("a", disabled=True)], [task("b")]), task("last")]))
    view = sim.run_to_end()
    assert sim.states() == {"if": State.SUCCESS, "last": State.SUCCESS} and view.state is State.SUCCESS


def test_run_if_false_on_the_if_skips_it_without_evaluating_the_condition():
    renderer = CountingRenderer({})
    sim = Simulator(flow([if_("if", "{{ nope }}", [task("a")], runIf="false"), task("last")]))
    sim.renderer = renderer
    view = sim.run_to_end()
    assert sim.states() == {"if": State.SKIPPED, "last": State.SUCCESS} and view.state is State.SUCCESS


def test_run_if_on_a_task_of_the_branch():
    sim = Simulator(flow([if_("if", "true", [task("a", runIf="false"), task("b")])]))
    sim.run_to_end()
    assert sim.states() == {"if": State.SUCCESS, "a": State.SKIPPED, "b": State.SUCCESS}


def test_a_warning_in_the_branch_makes_the_if_warning():
    sim = Simulator(flow([if_("if", "true", [task("a")])]), {"a": State.WARNING})
    assert sim.run_to_end().state is State.WARNING and sim.states()["if"] is State.WARNING


def test_a_flowable_inside_the_branch():
    graph = flow([if_("if", "true", [task("seq", SEQ, tasks=[task("a"), fail("b")], errors=[task("e")])])])
    sim = Simulator(graph)
    view = sim.run_to_end()
    assert sim.states() == {"if": State.FAILED, "seq": State.FAILED, "a": State.SUCCESS, "b": State.FAILED,
                            "e": State.SUCCESS}
    assert view.state is State.FAILED


def test_nested_ifs_each_evaluate_their_own_condition():
    graph = flow([if_("outer", "{{ inputs.a }}", [if_("inner", "{{ inputs.b }}", [task("ab")], [task("a_only")])],
                      [task("none")])])
    for a, b, ran in ((True, True, "ab"), (True, False, "a_only"), (False, True, "none")):
        sim = Simulator(graph, context={"inputs": {"a": a, "b": b}})
        sim.run_to_end()
        assert ran in sim.states()

"""The pure part of Flow triggers: conditions, where filters and the windows of preconditions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from executor.core import flow_triggers as core

MOMENT = datetime(2024, 6, 3, 10, 30, tzinfo=timezone.utc)


def upstream(flow_id="a", state="SUCCESS", namespace="company.team", labels=None, outputs=None, execution_id="e1"):
    return core.Upstream(execution_id=execution_id, namespace=namespace, flow_id=flow_id, flow_revision=1,
                         state=state, labels=labels or {}, outputs=outputs)


def never(expression: str) -> bool:
    raise AssertionError(f"no expression expected, got {expression}")


@pytest.mark.parametrize(("condition", "expected"), [
    ({"type": "io.kestra.plugin.core.condition.ExecutionStatus", "in": ["SUCCESS"]}, True),
    ({"type": "io.kestra.plugin.core.condition.ExecutionStatus", "notIn": ["SUCCESS"]}, False),
    ({"type": "io.kestra.plugin.core.condition.ExecutionFlow", "namespace": "company.team", "flowId": "a"}, True),
    ({"type": "io.kestra.plugin.core.condition.ExecutionFlow", "namespace": "company.team", "flowId": "b"}, False),
    ({"type": "io.kestra.plugin.core.condition.ExecutionNamespace", "namespace": "company.team"}, True),
    ({"type": "io.kestra.plugin.core.condition.ExecutionNamespace", "namespace": "company"}, False),
    ({"type": "io.kestra.plugin.core.condition.ExecutionNamespace", "namespace": "company", "prefix": True}, True),
    ({"type": "io.kestra.plugin.core.condition.ExecutionNamespace", "namespace": ".team", "comparison": "SUFFIX"},
     True),
    ({"type": "io.kestra.core.models.conditions.types.ExecutionStatusCondition", "in": ["FAILED"]}, False),
    ({"type": "io.kestra.plugin.core.condition.ExecutionLabels", "labels": {"env": "prod"}}, True),
    ({"type": "io.kestra.plugin.core.condition.ExecutionLabels", "labels": [{"key": "env", "value": "dev"}]}, False),
])
def test_plain_conditions(condition, expected):
    assert core.condition_holds(condition, upstream(labels={"env": "prod"}), never) is expected


def test_expression_and_outputs_conditions_render_through_the_shell():
    seen = []

    def truth(expression):
        seen.append(expression)
        return True

    outputs = {"type": "io.kestra.plugin.core.condition.ExecutionOutputs", "expression": "{{ x }}"}
    assert core.condition_holds(outputs, upstream(), truth) is False  # no outputs: false, not rendered
    assert core.condition_holds(outputs, upstream(outputs={"a": 1}), truth) is True
    assert core.condition_holds({"type": "io.kestra.plugin.core.condition.Expression", "expression": "{{ y }}"},
                                upstream(), truth) is True
    assert seen == ["{{ x }}", "{{ y }}"]


def test_an_unknown_condition_is_reported():
    with pytest.raises(core.UnknownCondition):
        core.condition_holds({"type": "io.example.Whatever"}, upstream(), never)


PRECONDITIONS = {"preconditions": {"id": "both", "flows": [
    {"namespace": "company.team", "flowId": "a"},
    {"namespace": "company.team", "flowId": "b", "states": ["SUCCESS", "FAILED"]},
]}}


def run_group(trigger, progress, up, moment=MOMENT):
    group, = core.groups(trigger, up, never)
    return core.advance(progress, group, up, moment)


def test_preconditions_complete_once_every_upstream_is_seen_then_reset():
    progress, fired, _ = run_group(PRECONDITIONS, {}, upstream("a", outputs={"x": 1}))
    assert not fired
    progress, fired, outputs = run_group(PRECONDITIONS, progress, upstream("b", state="FAILED", outputs={"y": 2}))
    assert fired and outputs == {"x": 1, "y": 2}
    assert progress["seen"] == {}
    _, fired, _ = run_group(PRECONDITIONS, progress, upstream("b"))
    assert not fired


def test_preconditions_without_reset_fire_again():
    trigger = {"preconditions": {**PRECONDITIONS["preconditions"], "resetOnSuccess": False}}
    progress, _, _ = run_group(trigger, {}, upstream("a"))
    progress, fired, _ = run_group(trigger, progress, upstream("b"))
    assert fired
    _, fired, _ = run_group(trigger, progress, upstream("a"))
    assert fired


def test_an_upstream_in_another_state_does_not_count():
    progress, _, _ = run_group(PRECONDITIONS, {}, upstream("a", state="FAILED"))
    assert progress["seen"] == {}


def test_a_new_duration_window_forgets_the_last():
    progress, _, _ = run_group(PRECONDITIONS, {}, upstream("a"))
    _, fired, _ = run_group(PRECONDITIONS, progress, upstream("b"), MOMENT + timedelta(days=1))
    assert not fired


def test_a_sliding_window_forgets_what_is_too_old():
    trigger = {"preconditions": {**PRECONDITIONS["preconditions"],
                                 "timeWindow": {"type": "SLIDING_WINDOW", "window": "PT1H"}}}
    progress, _, _ = run_group(trigger, {}, upstream("a"))
    _, fired, _ = run_group(trigger, progress, upstream("b"), MOMENT + timedelta(minutes=59))
    assert fired
    progress, _, _ = run_group(trigger, {}, upstream("a"))
    _, fired, _ = run_group(trigger, progress, upstream("b"), MOMENT + timedelta(minutes=61))
    assert not fired


def test_a_daily_window_counts_only_inside_its_hours():
    trigger = {"preconditions": {**PRECONDITIONS["preconditions"],
                                 "timeWindow": {"type": "DAILY_TIME_WINDOW", "startTime": "11:00:00",
                                                "endTime": "12:00:00"}}}
    progress, _, _ = run_group(trigger, {}, upstream("a"))
    assert progress["seen"] == {}


def test_where_filters_and_their_operand():
    trigger = {"preconditions": {"id": "p", "where": [
        {"id": "one", "filters": [{"field": "NAMESPACE", "type": "STARTS_WITH", "value": "company"},
                                  {"field": "FLOW_ID", "type": "IN", "values": ["a", "c"]}]},
        {"id": "two", "operand": "OR", "filters": [{"field": "FLOW_ID", "type": "EQUAL_TO", "value": "b"},
                                                   {"field": "STATE", "type": "EQUAL_TO", "value": "WARNING"}]},
    ]}}
    group, = core.groups(trigger, upstream("a"), never)
    assert group.met == {"where:one"}
    group, = core.groups(trigger, upstream("x", state="WARNING"), never)
    assert group.met == {"where:two"}


def test_multiple_condition_names_its_conditions():
    trigger = {"conditions": [
        {"type": "io.kestra.plugin.core.condition.ExecutionStatus", "in": ["SUCCESS"]},
        {"id": "multiple", "type": "io.kestra.plugin.core.condition.MultipleCondition", "window": "P1D",
         "windowAdvance": "P0D", "conditions": {
             "flow-a": {"type": "io.kestra.plugin.core.condition.ExecutionFlow", "namespace": "company.team",
                        "flowId": "a"},
             "flow-b": {"type": "io.kestra.plugin.core.condition.ExecutionFlow", "namespace": "company.team",
                        "flowId": "b"}}},
    ]}
    assert core.plain_conditions_hold(trigger, upstream("a"), never)
    assert not core.plain_conditions_hold(trigger, upstream("a", state="FAILED"), never)
    group, = core.groups(trigger, upstream("a"), never)
    assert group.required == ("flow-a", "flow-b") and group.met == {"flow-a"}
    assert core.window_bounds(group.window, MOMENT)[0] == datetime(2024, 6, 3, tzinfo=timezone.utc)


def test_trigger_context_flattens_the_variables():
    from executor.core.context import trigger_context

    stored = {"id": "t", "type": "io.kestra.plugin.core.trigger.Flow", "variables": {"executionId": "e"}}
    context = trigger_context(stored)
    assert context["executionId"] == "e" and context["type"] == stored["type"]
    assert context["variables"] == {"executionId": "e"}
    assert trigger_context(None) == {}

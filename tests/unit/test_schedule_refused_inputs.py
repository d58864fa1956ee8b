"""A Schedule's inputs rendered one by one, and the reason its date's execution failed at once
when they are refused (the FAILED execution itself: tests/integration/test_trigger_stops_and_skips.py)."""

from __future__ import annotations

import pytest

from orchestrator.inputs import InvalidInputs
from scheduler.service import ScheduleTrigger, refusal, render_inputs

CONTEXT = {"trigger": {"date": "2025-01-01T10:00:00.000Z"}, "flow": {"id": "report", "namespace": "company.team"}}


def test_inputs_render_with_the_trigger_and_flow():
    rendered = render_inputs({"day": "{{ trigger.date }}", "flow": "{{ flow.id }}", "size": 3, "list": ["{{ 1 + 1 }}"]},
                             CONTEXT)
    assert rendered == {"day": "2025-01-01T10:00:00.000Z", "flow": "report", "size": 3, "list": ["2"]}
    assert render_inputs(None, CONTEXT) == {}


def test_each_input_that_cannot_be_rendered_is_named():
    with pytest.raises(InvalidInputs) as caught:
        render_inputs({"ok": "{{ flow.id }}", "bad": "{{ trigger.nowhere.x }}", "worse": "{{ 1 + }}"}, CONTEXT)
    assert [error["input"] for error in caught.value.errors] == ["bad", "worse"]
    assert all(error["message"].startswith("cannot be rendered: ") for error in caught.value.errors)
    assert "nowhere" in caught.value.errors[0]["message"]


def test_the_reason_names_the_trigger_the_date_and_every_refused_input_on_one_line():
    trigger = ScheduleTrigger("company.team", "report", {"id": "hourly", "cron": "0 * * * *"})
    refused = InvalidInputs([{"input": "count", "message": "'x' is not a whole number"},
                             {"input": "day", "message": "a value is required"}])
    assert refusal(trigger, "2025-01-01T10:00:00.000Z", refused) == (
        "Trigger hourly of company.team.report could not start the execution of 2025-01-01T10:00:00.000Z: its "
        "inputs were refused: input `count`: 'x' is not a whole number; input `day`: a value is required")

"""Flow SLAs through real processes: MAX_DURATION fired by the delay loop, EXECUTION_ASSERTION
checked at the end, each with its behavior and labels."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def labels(outcome):
    return {label["key"]: label["value"] for label in outcome.execution.labels}


def test_an_execution_running_past_its_max_duration_fails_with_the_sla_labels(run_flow):
    source = """
id: slow
namespace: tests
sla:
  - id: quick
    type: MAX_DURATION
    behavior: FAIL
    duration: PT1S
    labels:
      sla: missed
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""
    outcome = run_flow(source, timeout=20, expect_logs=1)
    assert outcome.state == "FAILED"
    assert outcome.run("sleep").state == "KILLED"
    assert labels(outcome)["sla"] == "missed"
    assert any("SLA quick violated: the execution ran longer than PT1S" in log.message for log in outcome.logs)
    duration = (outcome.execution.end_date - outcome.execution.start_date).total_seconds()
    assert 1 <= duration < 5


def test_a_none_behavior_only_labels_and_a_false_assertion_cancels(run_flow):
    source = """
id: checked
namespace: tests
sla:
  - id: long
    type: MAX_DURATION
    behavior: NONE
    duration: PT0.2S
    labels: {slow: "yes"}
  - id: value
    type: EXECUTION_ASSERTION
    behavior: CANCEL
    assert: "{{ outputs.compute.value == 'expected' }}"
    labels: {wrong: "yes"}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: compute
    type: io.kestra.plugin.core.debug.Return
    format: unexpected
"""
    outcome = run_flow(source, timeout=20, expect_logs=2)
    assert outcome.state == "CANCELLED"
    assert outcome.run("compute").state == "SUCCESS"
    assert labels(outcome)["slow"] == "yes" and labels(outcome)["wrong"] == "yes"


def test_a_kept_sla_changes_nothing(run_flow):
    source = """
id: fine
namespace: tests
sla:
  - id: generous
    type: MAX_DURATION
    behavior: FAIL
    duration: PT1H
  - id: value
    type: EXECUTION_ASSERTION
    behavior: FAIL
    assert: "{{ outputs.compute.value == 'expected' }}"
tasks:
  - id: compute
    type: io.kestra.plugin.core.debug.Return
    format: expected
"""
    outcome = run_flow(source)
    assert outcome.state == "SUCCESS"
    assert not outcome.logs
    from orchestrator.models import Delay
    assert not Delay.objects.filter(execution_id=outcome.execution.id).exists()  # removed with the execution's end

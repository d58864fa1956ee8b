"""Subflows through real processes: the child execution, its labels and trigger, the parent
waiting for it, and a child that cannot start."""

from __future__ import annotations

import pytest

from orchestrator.models import Execution
from orchestrator.repository import deploy
from tests.harness import with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHILD = """
id: child
namespace: tests
inputs:
  - id: name
    type: STRING
labels:
  level: child
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.name }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.greet.value }}"
"""

PARENT = """
id: parent
namespace: tests
labels:
  team: data
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {namespace}
    flowId: child
    inputs:
      name: "{{{{ flow.id }}}}"
    inheritLabels: true
    labels:
      called: "yes"
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.call.outputs.greeting }}}} / {{{{ outputs.call.state }}}}"
"""


def test_a_subflow_runs_a_child_execution_and_its_outputs_reach_the_parent(run_flow, namespace):
    deploy(with_namespace(CHILD, namespace))
    outcome = run_flow(PARENT.format(namespace=namespace))
    assert outcome.state == "SUCCESS"
    assert outcome.run("use").outputs == {"value": "hello parent / SUCCESS"}
    child = Execution.objects.get(id=outcome.run("call").outputs["executionId"])
    assert child.parent_id == outcome.execution.id and child.state == "SUCCESS"
    labels = {label["key"]: label["value"] for label in child.labels}
    parent_labels = {label["key"]: label["value"] for label in outcome.execution.labels}
    assert labels["team"] == "data" and labels["called"] == "yes" and labels["level"] == "child"
    assert labels["system.correlationId"] == parent_labels["system.correlationId"] == outcome.execution.id
    assert child.trigger["variables"]["executionId"] == outcome.execution.id
    assert child.trigger["variables"]["taskId"] == "call"


def test_a_subflow_of_a_flow_that_does_not_exist_fails_with_the_reason(run_flow, namespace):
    source = f"""
id: orphan
namespace: tests
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {namespace}
    flowId: nowhere
"""
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "FAILED"
    assert any("nowhere does not exist" in line for line in outcome.logs_of("call"))

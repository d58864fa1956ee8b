"""A flow's retry with behavior CREATE_NEW_EXECUTION, through real processes."""

from __future__ import annotations

import pytest

from orchestrator.models import Execution
from orchestrator.repository import create_execution, deploy
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLAKY = """
id: flaky-flow
namespace: tests
retry:
  behavior: CREATE_NEW_EXECUTION
  type: constant
  interval: PT0.2S
  maxAttempt: 3
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
"""


def test_a_failed_execution_is_retried_as_new_executions_up_to_max_attempt(cluster, namespace):
    flow, _ = deploy(with_namespace(FLAKY, namespace))
    first = create_execution(flow.namespace, flow.flow_id, inputs={})

    def attempts():
        return list(Execution.objects.filter(namespace=flow.namespace, flow_id=flow.flow_id).order_by("start_date"))

    def three_ended():
        chain = attempts()
        return attempts() if len(chain) == 3 and finished(chain[-1].id) else None  # read again: the last one ended

    chain = wait_for(three_ended, 30, "three attempts")
    assert [execution.state for execution in chain] == ["RETRIED", "RETRIED", "FAILED"]
    assert [(execution.metadata or {}).get("attemptNumber", 1) for execution in chain] == [1, 2, 3]
    assert all(execution.original_id == first.id for execution in chain[1:])
    assert chain[1].labels == first.labels  # the correlation label goes with every attempt


def test_a_subflow_waits_for_the_retries_of_its_child(run_flow, namespace):
    deploy(with_namespace(FLAKY, namespace))
    parent = f"""
id: parent-of-flaky
namespace: tests
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {namespace}
    flowId: flaky-flow
"""
    outcome = run_flow(parent, timeout=30)
    assert outcome.state == "FAILED"
    children = Execution.objects.filter(namespace=namespace, flow_id="flaky-flow")
    assert children.count() == 3 and children.filter(state="FAILED").count() == 1

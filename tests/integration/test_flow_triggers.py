"""Flow triggers through real executor and worker processes: Kestra's corpus flows
(trigger-flow*.yaml, trigger-multiplecondition-*, flow-trigger-preconditions-*) behave as
Kestra's FlowTriggerCaseTest and MultipleConditionTriggerCaseTest assert, plus trigger
variables, outputs, disabled triggers and idempotence."""

from __future__ import annotations

import time

import pytest

from tests.compat.test_kestra_cases import VALIDS
from tests.harness import finished, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def settled():
    """Leave no execution running for the tables' flush after the test (the executions a
    trigger started are not all awaited by the test itself)."""
    yield
    from orchestrator.models import Execution
    from orchestrator.states import TERMINAL

    terminal = [state.value for state in TERMINAL]
    wait_for(lambda: not Execution.objects.exclude(state__in=terminal).exists(), 60, "executions to settle")

TRIGGER_NS = "io.kestra.tests.trigger"


def deploy_corpus(*names: str) -> None:
    from orchestrator.repository import deploy

    for name in names:
        deploy((VALIDS / name).read_text(encoding="utf-8"))


def run(namespace: str, flow_id: str):
    from orchestrator.repository import create_execution

    execution = create_execution(namespace, flow_id)
    return wait_for(lambda: finished(execution.id), 60, f"{namespace}.{flow_id}")


def executions_of(namespace: str, flow_id: str, count: int = 1, timeout: float = 60):
    """Wait for `count` ended executions of a flow, and return them."""
    from orchestrator.models import Execution
    from orchestrator.states import TERMINAL

    terminal = [state.value for state in TERMINAL]

    def ended():
        found = list(Execution.objects.filter(namespace=namespace, flow_id=flow_id, state__in=terminal)
                     .order_by("start_date"))
        return found if len(found) >= count else None

    return wait_for(ended, timeout, f"{count} execution(s) of {namespace}.{flow_id}")


def none_of(namespace: str, flow_id: str, settle: float = 3.0) -> None:
    """No execution of the flow appears within `settle` seconds (after the upstream ended)."""
    from orchestrator.models import Execution

    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        assert not Execution.objects.filter(namespace=namespace, flow_id=flow_id).exists()
        time.sleep(0.1)


def test_trigger_flow_starts_its_listeners(cluster):
    deploy_corpus("trigger-flow.yaml", "trigger-flow-listener.yaml", "trigger-flow-listener-no-inputs.yaml",
                  "trigger-flow-listener-namespace-condition.yaml", "trigger-flow-listener-invalid.yaml")
    upstream = run(TRIGGER_NS, "trigger-flow")
    assert upstream.state == "SUCCESS"

    listener = executions_of(TRIGGER_NS, "trigger-flow-listener")[0]
    assert listener.state == "SUCCESS"
    runs = list(listener.task_runs.all())
    assert len(runs) == 1
    assert runs[0].outputs["value"] == f"childs: from parents: {upstream.id}"
    variables = listener.trigger["variables"]
    assert (variables["executionId"], variables["namespace"], variables["flowId"]) == (
        upstream.id, TRIGGER_NS, "trigger-flow")
    assert variables["state"] == "SUCCESS" and variables["flowRevision"] == upstream.flow_revision
    assert listener.trigger["type"] == "io.kestra.plugin.core.trigger.Flow"

    no_inputs = executions_of(TRIGGER_NS, "trigger-flow-listener-no-inputs")[0]
    assert no_inputs.state == "SUCCESS"
    assert [run.outputs["value"] for run in no_inputs.task_runs.all()] == [f"v1: {upstream.id}"]
    assert no_inputs.trigger["variables"]["executionId"] == upstream.id

    by_namespace = executions_of(TRIGGER_NS, "trigger-flow-listener-namespace-condition")[0]
    assert by_namespace.state == "SUCCESS"
    assert by_namespace.task_runs.count() == 1
    assert by_namespace.trigger["variables"]["namespace"] == TRIGGER_NS
    assert by_namespace.trigger["variables"]["flowId"] in (
        "trigger-flow", "trigger-flow-listener-no-inputs", "trigger-flow-listener")

    # Its input renders `outputs.invalid.value`, which trigger-flow has not: nothing starts,
    # and the upstream says why.
    none_of(TRIGGER_NS, "trigger-flow-listener-invalid", settle=1)
    from orchestrator.models import LogEntry

    assert LogEntry.objects.filter(execution_id=upstream.id, level="WARN",
                                   message__contains="listen-flow-invalid").exists()


def test_listener_without_matching_execution_does_not_fire(cluster):
    """The `listen-flow-failed` trigger of trigger-flow-listener-no-inputs waits for a FAILED
    `other-flow`: a successful trigger-flow starts it only once (through `listen-flow`)."""
    deploy_corpus("trigger-flow.yaml", "trigger-flow-listener-no-inputs.yaml")
    upstream = run(TRIGGER_NS, "trigger-flow")
    listeners = executions_of(TRIGGER_NS, "trigger-flow-listener-no-inputs")
    time.sleep(1)
    from orchestrator.models import Execution

    started = Execution.objects.filter(namespace=TRIGGER_NS, flow_id="trigger-flow-listener-no-inputs")
    assert started.count() == 1
    assert listeners[0].trigger["id"] == "listen-flow"
    assert listeners[0].trigger["variables"]["executionId"] == upstream.id


def test_trigger_on_running_paused_and_ended_states(cluster):
    """trigger-flow-listener-with-pause listens for RUNNING, PAUSED and the ends: a flow that
    pauses once runs twice, so 4 executions (Kestra's triggerWithPause)."""
    ns = "io.kestra.tests.trigger.pause"
    deploy_corpus("trigger-flow-with-pause.yaml", "trigger-flow-listener-with-pause.yaml")
    upstream = run(ns, "trigger-flow-with-pause")
    assert upstream.state == "SUCCESS" and upstream.task_runs.count() == 3
    started = executions_of(ns, "trigger-flow-listener-with-pause", count=4)
    statuses = sorted((execution.outputs or {}).get("status") for execution in started)
    assert statuses == ["PAUSED", "RUNNING", "RUNNING", "SUCCESS"]
    time.sleep(1)
    from orchestrator.models import Execution

    assert Execution.objects.filter(namespace=ns, flow_id="trigger-flow-listener-with-pause").count() == 4


def test_multiple_condition_fires_once_both_flows_succeeded(cluster):
    deploy_corpus("trigger-multiplecondition-flow-a.yaml", "trigger-multiplecondition-flow-b.yaml",
                  "trigger-multiplecondition-listener.yaml")
    run(TRIGGER_NS, "trigger-multiplecondition-flow-a")
    none_of(TRIGGER_NS, "trigger-multiplecondition-listener", settle=1.5)
    run(TRIGGER_NS, "trigger-multiplecondition-flow-b")
    listener = executions_of(TRIGGER_NS, "trigger-multiplecondition-listener")[0]
    assert listener.state == "SUCCESS" and listener.task_runs.count() == 1
    # The window was reset on success: flow-a alone does not fire it again.
    run(TRIGGER_NS, "trigger-multiplecondition-flow-a")
    time.sleep(1.5)
    from orchestrator.models import Execution

    assert Execution.objects.filter(namespace=TRIGGER_NS, flow_id="trigger-multiplecondition-listener").count() == 1


def test_multiple_condition_with_a_failed_flow_does_not_fire(cluster):
    """trigger-multiplecondition-failed needs flow-c and flow-d, each SUCCESS: flow-c fails."""
    deploy_corpus("trigger-multiplecondition-flow-c.yaml", "trigger-multiplecondition-flow-d.yaml",
                  "trigger-multiplecondition-failed.yaml")
    assert run(TRIGGER_NS, "trigger-multiplecondition-flow-c").state == "FAILED"
    assert run(TRIGGER_NS, "trigger-multiplecondition-flow-d").state == "SUCCESS"
    none_of(TRIGGER_NS, "trigger-multiplecondition-failed")


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_preconditions_fire_once_both_upstreams_ran(cluster, order):
    ns = "io.kestra.tests.trigger.preconditions"
    deploy_corpus("flow-trigger-preconditions-flow-a.yaml", "flow-trigger-preconditions-flow-b.yaml",
                  "flow-trigger-preconditions-flow-listen.yaml")
    first, second = (f"flow-trigger-preconditions-flow-{name}" for name in order)
    run(ns, first)
    none_of(ns, "flow-trigger-preconditions-flow-listen", settle=1.5)
    upstream = run(ns, second)
    listener = executions_of(ns, "flow-trigger-preconditions-flow-listen")[0]
    assert listener.state == "SUCCESS" and listener.task_runs.count() == 1
    assert listener.trigger["variables"]["executionId"] == upstream.id


def test_preconditions_where_filters_are_checked(cluster):
    """flow-a counts only with its label `some: label` (the EXPRESSION filter): redeployed
    without it, flow-a and flow-b together do not fire the listener."""
    from orchestrator.repository import deploy

    ns = "io.kestra.tests.trigger.preconditions"
    source = (VALIDS / "flow-trigger-preconditions-flow-a.yaml").read_text(encoding="utf-8")
    # A revision of its own (revisions are cached by number, and the tables are emptied between tests).
    deploy(source)
    deploy(source.replace("  some: label", "  some: other"))
    deploy_corpus("flow-trigger-preconditions-flow-b.yaml", "flow-trigger-preconditions-flow-listen.yaml")
    run(ns, "flow-trigger-preconditions-flow-a")
    run(ns, "flow-trigger-preconditions-flow-b")
    none_of(ns, "flow-trigger-preconditions-flow-listen")


def in_namespace(source: str, namespace: str) -> str:
    return source.replace("tests.flowtrigger", namespace)


UPSTREAM = """
id: upstream
namespace: tests.flowtrigger
labels:
  team: data
tasks:
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: hello
outputs:
  - id: word
    type: STRING
    value: "{{ outputs.say.value }}"
"""

LISTENER = """
id: listener
namespace: tests.flowtrigger
inputs:
  - id: received
    type: STRING
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.received }} {{ trigger.outputs.word }} {{ trigger.labels.team }} {{ trigger.state }}"
triggers:
  - id: on-upstream
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      received: "{{ outputs.say.value }}"
    labels:
      started-by: flow-trigger
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: tests.flowtrigger
        flowId: upstream
      - type: io.kestra.plugin.core.condition.ExecutionLabels
        labels:
          team: data
      - type: io.kestra.plugin.core.condition.ExecutionOutputs
        expression: "{{ trigger.outputs.word == 'hello' }}"
"""


def test_trigger_variables_outputs_and_labels(cluster, namespace):
    from orchestrator.repository import deploy

    deploy(in_namespace(UPSTREAM, namespace))
    deploy(in_namespace(LISTENER, namespace))
    upstream = run(namespace, "upstream")
    listener = executions_of(namespace, "listener")[0]
    assert listener.state == "SUCCESS"
    assert [run.outputs["value"] for run in listener.task_runs.all()] == ["hello hello data SUCCESS"]
    labels = {label["key"]: label["value"] for label in listener.labels}
    assert labels["started-by"] == "flow-trigger"
    # The chain keeps the correlation id of the execution that started it.
    assert labels["system.correlationId"] == upstream.id
    from orchestrator.models import FlowTriggerFired

    fired = FlowTriggerFired.objects.get(source_execution_id=upstream.id)
    assert fired.execution_id == listener.id


def test_expression_on_outputs_false_does_not_fire(cluster, namespace):
    from orchestrator.repository import create_execution, deploy

    deploy(in_namespace(UPSTREAM.replace("format: hello", "format: bye"), namespace))
    deploy(in_namespace(LISTENER, namespace))
    execution = create_execution(namespace, "upstream")
    wait_for(lambda: finished(execution.id), 60, "upstream")
    none_of(namespace, "listener")


def test_disabled_trigger_and_disabled_flow_do_not_fire(cluster, namespace):
    from orchestrator.repository import deploy

    deploy(in_namespace(UPSTREAM, namespace))
    deploy(in_namespace(LISTENER.replace("    type: io.kestra.plugin.core.trigger.Flow\n",
                                           "    type: io.kestra.plugin.core.trigger.Flow\n    disabled: true\n"),
                          namespace))
    run(namespace, "upstream")
    none_of(namespace, "listener", settle=1.5)
    deploy(in_namespace(LISTENER + "disabled: true\n", namespace))
    run(namespace, "upstream")
    none_of(namespace, "listener", settle=1.5)


def test_a_second_evaluation_of_the_same_change_starts_nothing(cluster, namespace):
    """The unique key (upstream, state occurrence, flow, trigger) holds even when the same
    change is evaluated again."""
    from django.db import transaction

    from executor import flow_triggers
    from orchestrator.models import Execution
    from orchestrator.repository import deploy, now

    deploy(in_namespace(UPSTREAM, namespace))
    deploy(in_namespace(LISTENER, namespace))
    upstream = run(namespace, "upstream")
    executions_of(namespace, "listener")
    with transaction.atomic():
        flow_triggers.on_state_change(upstream, upstream.state, len(upstream.state_history) - 1, now(), [])
    time.sleep(1)
    assert Execution.objects.filter(namespace=namespace, flow_id="listener").count() == 1

"""`io.kestra.plugin.core.flow.Subflow` (and the older `io.kestra.core.tasks.flows.Flow`): start an
execution of another flow.

The first step renders `namespace`, `flowId`, `inputs` and `labels` and asks the shell to start
the child (StartSubflow); the shell records the child's id as the task run's output
`executionId`. With `wait` (Subflow's default) the task run stays RUNNING until the child ends,
then takes its state — a failed or killed child fails the task only with `transmitFailed` —
and the outputs `executionId`, `state` and `outputs`: the child's flow outputs plus the older
`outputs` property, rendered against the child's execution. Without `wait` it succeeds as soon
as the child exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from executor.core.actions import SetTaskRunState, StartSubflow
from executor.core.decide import StepContext, flowable
from executor.core.flowables.common import FlowableError, guarded
from executor.core.model import TaskNode, TaskRunView
from orchestrator.input_types import Invalid, parse_datetime
from orchestrator.states import State
from orchestrator.templating import TemplateError, render_value

SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
OLD_FLOW = "io.kestra.core.tasks.flows.Flow"


def _defaults(node: TaskNode) -> tuple[bool, bool]:
    """(wait, transmitFailed): on by default for Subflow, off for the older Flow task."""
    default = node.type != OLD_FLOW
    definition = node.definition
    return (bool(definition.get("wait", default)), bool(definition.get("transmitFailed", default)))


@flowable(SUBFLOW)
@flowable(OLD_FLOW)
@guarded
def subflow(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    wait, transmit_failed = _defaults(node)
    known = ctx.details.outputs(run) or {}
    child_id = known.get("executionId")
    if child_id is None:
        if (run.id, "start") not in ctx.view.scheduled:
            ctx.actions.append(_start(ctx, node, run))
        return None
    if not wait:
        return State.SUCCESS
    child = ctx.details.execution(child_id)
    if child is None:
        raise FlowableError(f"The subflow execution {child_id} no longer exists")
    state = State(child["state"])
    if not state.is_terminal:
        return None
    outputs: dict[str, Any] = dict(child.get("outputs") or {})
    extract = node.definition.get("outputs")
    if isinstance(extract, Mapping):
        try:
            outputs.update(render_value(dict(extract), child["context"]))
        except TemplateError as error:
            raise FlowableError(f"Unable to render the outputs of the subflow execution {child_id}: {error}") \
                from None
    ctx.actions.append(SetTaskRunState(run.id, State.RUNNING, outputs={
        "executionId": child_id, "state": state.value, "outputs": outputs,
    }))
    if state in (State.FAILED, State.KILLED, State.CANCELLED):
        return (State.KILLED if state is State.KILLED else State.FAILED) if transmit_failed else State.SUCCESS
    return State.WARNING if state is State.WARNING else State.SUCCESS


def _start(ctx: StepContext, node: TaskNode, run: TaskRunView) -> StartSubflow:
    definition = node.definition
    try:
        namespace = ctx.renderer.render(node, run, definition.get("namespace"))
        flow_id = ctx.renderer.render(node, run, definition.get("flowId"))
        inputs = ctx.renderer.render(node, run, definition.get("inputs") or {})
        labels = ctx.renderer.render(node, run, definition.get("labels") or {})
        scheduled = ctx.renderer.render(node, run, definition.get("scheduleDate"))
    except TemplateError as error:
        raise FlowableError(f"Unable to render the subflow to start: {error}") from None
    if not isinstance(namespace, str) or not isinstance(flow_id, str) or not namespace or not flow_id:
        raise FlowableError(f"The subflow's namespace and flowId must be text, got {namespace!r} and {flow_id!r}")
    if not isinstance(inputs, Mapping):
        raise FlowableError(f"The subflow's inputs must be a map, got {inputs!r}")
    revision = definition.get("revision")
    return StartSubflow(
        task_run_id=run.id, namespace=namespace, flow_id=flow_id,
        revision=revision if isinstance(revision, int) else None, inputs=dict(inputs), labels=labels,
        inherit_labels=bool(definition.get("inheritLabels", False)), wait=_defaults(node)[0],
        schedule_date=schedule_date(scheduled),
    )


def schedule_date(rendered: Any) -> datetime | None:
    """The rendered `scheduleDate` property: when the child execution starts (now when absent)."""
    if rendered is None or rendered == "":
        return None
    try:
        return parse_datetime(str(rendered))
    except Invalid as error:
        raise FlowableError(f"The subflow's scheduleDate: {error}") from None

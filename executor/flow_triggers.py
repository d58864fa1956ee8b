"""Flow triggers, the shell: keep the index of flows that listen (at deploy), and, when an
execution changes state, start the executions of the flows whose Flow trigger fires.

Evaluated by the executor step that changes the state, in its transaction, under the
execution's row lock: the listeners' executions are created in that transaction (each in a
savepoint) and sent to the executor once it commits, so a step that rolls back starts nothing
and a committed one cannot lose them. Nothing here runs unless the state changed, and then it
costs one query on the small index table (executor/core/flow_triggers.py decides the rest).

- A trigger fires once per change: FlowTriggerFired's unique key is (upstream execution,
  position of the state in its history, listening flow, trigger id).
- A flow never triggers itself (Kestra neither: a namespace listener would loop forever).
- Windowed groups (preconditions, MultipleCondition) keep their progress in FlowTriggerProgress,
  locked row by row in one order (flow, trigger, group) so that two executions ending together
  cannot deadlock.
- Inputs the trigger does not give stay null even when required (Kestra starts a listener
  without checking them); a trigger whose inputs cannot be rendered, or are refused by their
  types, starts nothing: the reason is logged on the upstream execution.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from django.db import IntegrityError, transaction

from executor.core import flow_triggers as core
from orchestrator.models import Execution, FlowTriggerFired, FlowTriggerListener, FlowTriggerProgress, LogEntry
from orchestrator.templating import TemplateError, is_truthy, render_value
from workers.environment import ambient

logger = logging.getLogger("harrier.executor.flow_triggers")


def index_flow(flow, data: Mapping[str, Any]) -> None:
    """Rewrite the index rows of a deployed flow from its definition."""
    triggers = [t for t in data.get("triggers") or () if isinstance(t, Mapping)
                and t.get("type") in core.FLOW_TRIGGER_TYPES]
    FlowTriggerListener.objects.filter(flow=flow).exclude(trigger_id__in=[t.get("id") for t in triggers]).delete()
    for trigger in triggers:
        FlowTriggerListener.objects.update_or_create(
            flow=flow, trigger_id=str(trigger.get("id")),
            defaults={"revision": flow.revision, "states": sorted(core.listened_states(trigger))},
        )


def rebuild_index() -> None:
    """Index every flow's Flow triggers again from its current revision (after an upgrade)."""
    from orchestrator.flowlang import parse_flow
    from orchestrator.models import Flow

    for flow in Flow.objects.filter(deleted=False).iterator():
        try:
            index_flow(flow, parse_flow(flow.source).data)
        except Exception:  # a flow that no longer parses keeps no listener, and the rest go on
            logger.exception("could not index the flow triggers of %s", flow)


def on_state_change(execution: Execution, state: str, occurrence: int, moment, logs: list[LogEntry]) -> None:
    """Fire the Flow triggers listening for `state`, which `execution` has just entered: the
    `occurrence`-th entry of its history; and stop the trigger that started `execution` if its
    `stopAfter` names that state."""
    _stop_after(execution, state)
    listeners = [row for row in FlowTriggerListener.objects.select_related("flow").filter(
        flow__disabled=False, flow__deleted=False).order_by("flow__namespace", "flow__flow_id", "trigger_id")
        if state in row.states]
    switched_off = _switched_off(listeners)
    listeners = [row for row in listeners if (row.flow.namespace, row.flow.flow_id, row.trigger_id) not in switched_off]
    if not listeners:
        return
    up = core.Upstream(
        execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
        flow_revision=execution.flow_revision, state=state,
        labels={label["key"]: label["value"] for label in execution.labels or ()},
        outputs=execution.outputs if state in core.DEFAULT_STATES else None,
    )
    context = _Context(execution, up)
    for row in listeners:
        flow = row.flow
        if (flow.namespace, flow.flow_id) == (execution.namespace, execution.flow_id):
            continue
        try:
            _evaluate(row, up, context, occurrence, moment, logs)
        except core.UnknownCondition as unknown:
            logger.warning("flow trigger %s of %s.%s: unsupported condition %s, not fired",
                           row.trigger_id, flow.namespace, flow.flow_id, unknown)


def _switched_off(listeners: list[FlowTriggerListener]) -> set[tuple[str, str, str]]:
    """The listeners whose trigger state is disabled (by hand, or by stopAfter)."""
    from scheduler.models import TriggerState

    if not listeners:
        return set()
    return set(TriggerState.objects.filter(
        disabled=True, flow_id__in={row.flow.flow_id for row in listeners},
        trigger_id__in={row.trigger_id for row in listeners},
    ).values_list("namespace", "flow_id", "trigger_id"))


def _stop_after(execution: Execution, state: str) -> None:
    """Switch off the trigger that started `execution` — a Flow trigger, and as in Kestra any
    other (a Schedule at once, not at its next date) — when it ends in a state of the trigger's
    `stopAfter` (its state keeps the execution; enabling it again starts afresh)."""
    from orchestrator.repository import flow_graph
    from scheduler import actions

    started_by = execution.trigger or {}
    if state not in core.DEFAULT_STATES or not started_by.get("id") or execution.parent_id:
        return
    try:
        graph = flow_graph(execution.namespace, execution.flow_id, execution.flow_revision)
    except LookupError:
        return
    trigger = next((t for t in graph.data.get("triggers") or () if t.get("id") == started_by.get("id")), None)
    if trigger is not None and core.stops(trigger, state):
        try:
            actions.stop(execution.namespace, execution.flow_id, str(trigger["id"]), execution.id, state)
        except actions.TriggerNotFound:  # the flow's current revision no longer has the trigger
            pass


def _evaluate(row: FlowTriggerListener, up: core.Upstream, context: "_Context", occurrence: int, moment,
              logs: list[LogEntry]) -> None:
    from orchestrator.repository import flow_graph

    flow = row.flow
    graph = flow_graph(flow.namespace, flow.flow_id, row.revision)
    trigger = next((t for t in graph.data.get("triggers") or () if t.get("id") == row.trigger_id), None)
    if trigger is None or trigger.get("disabled") or up.state not in core.listened_states(trigger):
        return
    truth = context.truth(flow, trigger)
    if not core.plain_conditions_hold(trigger, up, truth):
        return
    variables = up.variables()
    groups = core.groups(trigger, up, truth)
    if groups:
        fired, outputs = _advance_groups(flow, row.trigger_id, groups, up, moment)
        if not fired:
            return
        if outputs:
            variables["outputs"] = outputs
    _start(flow, trigger, variables, context, occurrence, logs)


def _advance_groups(flow, trigger_id: str, groups: list[core.Group], up: core.Upstream, moment
                    ) -> tuple[bool, dict[str, Any]]:
    """Record what this execution meets in each group; True when every group is complete."""
    complete, outputs = True, {}
    for group in sorted(groups, key=lambda g: g.id):
        key = {"namespace": flow.namespace, "flow_id": flow.flow_id, "trigger_id": trigger_id, "group": group.id}
        FlowTriggerProgress.objects.bulk_create([FlowTriggerProgress(**key)], ignore_conflicts=True)
        row = FlowTriggerProgress.objects.select_for_update().get(**key)
        progress, done, merged = core.advance(row.progress, group, up, moment)
        if progress != row.progress:
            row.progress = progress
            row.save(update_fields=["progress", "updated"])
        complete = complete and done
        outputs.update(merged)
    return complete, outputs


def _start(flow, trigger: Mapping[str, Any], variables: dict[str, Any], context: "_Context", occurrence: int,
           logs: list[LogEntry]) -> None:
    from orchestrator.repository import CORRELATION_LABEL, create_execution, labels_list, merge_labels

    upstream = context.execution
    try:
        with transaction.atomic():
            fired = FlowTriggerFired.objects.create(
                source_execution_id=upstream.id, occurrence=occurrence, namespace=flow.namespace,
                flow_id=flow.flow_id, trigger_id=str(trigger.get("id")))
    except IntegrityError:
        return  # this change already fired this trigger
    correlation = [label for label in upstream.labels or () if label["key"] == CORRELATION_LABEL]
    try:
        with transaction.atomic():
            inputs = render_value(trigger.get("inputs") or {}, context.full())
            started = create_execution(
                flow.namespace, flow.flow_id, inputs=inputs,
                labels=merge_labels(correlation, labels_list(trigger.get("labels"))),
                trigger={"id": trigger.get("id"), "type": trigger.get("type"), "variables": variables},
                missing_inputs_allowed=True,
            )
    except (TemplateError, LookupError, ValueError, TypeError) as error:
        fired.delete()
        logs.append(LogEntry(
            execution_id=upstream.id, namespace=upstream.namespace, flow_id=upstream.flow_id, level="WARN",
            message=f"The flow trigger {trigger.get('id')} of {flow.namespace}.{flow.flow_id} did not start an "
                    f"execution: {error}", timestamp=context.moment(),
        ))
        return
    FlowTriggerFired.objects.filter(pk=fired.pk).update(execution_id=started.id)


class _Context:
    """What expressions of a trigger see, built once per state change and only as far as used:
    the upstream execution's variables; its task outputs are read only for `inputs`."""

    def __init__(self, execution: Execution, up: core.Upstream) -> None:
        self.execution = execution
        self.up = up
        self._outputs: dict[str, Any] | None = None

    def moment(self):
        from orchestrator.repository import now
        return now()

    def base(self) -> dict[str, Any]:
        execution = self.execution
        return {
            "flow": {"id": execution.flow_id, "namespace": execution.namespace, "revision": execution.flow_revision},
            "execution": {"id": execution.id, "state": execution.state,
                          "startDate": execution.state_history[0]["date"] if execution.state_history else None},
            "inputs": dict(execution.inputs or {}),
            "labels": dict(self.up.labels),
            "trigger": self.up.variables(),
            **ambient(),
        }

    def full(self) -> dict[str, Any]:
        if self._outputs is None:
            from executor import store
            from executor.core.context import outputs_of

            self._outputs = outputs_of(row[:3] for row in store.outputs_rows(self.execution.id, None))
        return {**self.base(), "outputs": self._outputs}

    def truth(self, flow, trigger: Mapping[str, Any]) -> Callable[[str], bool]:
        def holds(expression: str) -> bool:
            context = self.full() if "outputs" in expression else self.base()
            try:
                return is_truthy(render_value(expression, context))
            except TemplateError as error:
                logger.info("flow trigger %s of %s.%s: %s", trigger.get("id"), flow.namespace, flow.flow_id, error)
                return False

        return holds

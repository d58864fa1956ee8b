"""`io.kestra.plugin.core.flow.ForEachItem`: one subflow execution per batch of a file's items.

The ForEachItem runs its three generated tasks in sequence (executor/flowables/for_each_item.py
makes them): `<id>_split` and `<id>_merge` are worker jobs, `<id>_items` is decided here.

`<id>_items` names every batch from the split's outputs alone (`numberOfBatches`, `extension`:
batch `n` is `<n><extension>` among the split task run's files), so starting a batch costs
nothing that grows with the file. It starts the subflows `START_PER_STEP` at a time (each step
its own transaction, the next step asked for by the shell once the children are committed), and
reads how far they are as counts by state (`details.subflows`), never the children one by one:
a step costs the same for 10 batches as for 10,000. Its outputs are Kestra's `numberOfBatches`
and `iterations` (the subflow executions by state, kept up to date while it waits).

With `wait`, it ends once every subflow has: with `transmitFailed`, FAILED when one failed or was
cancelled, else KILLED when one was killed, else WARNING when one ended so, else SUCCESS (the
rule of Subflow); without `transmitFailed`, SUCCESS. Without `wait`, it succeeds once every subflow
is started. An empty file makes no batch: SUCCESS, without outputs.
"""

from __future__ import annotations

from typing import Mapping

from executor.core.actions import SetTaskRunState, StartSubflow
from executor.core.decide import StepContext, SubflowCounts, enabled, flowable, run_in_sequence
from executor.core.flowables.common import FlowableError, guarded
from executor.core.flowables.subflow import schedule_date
from executor.core.model import BRANCH_ERRORS, BRANCH_FINALLY, TaskNode, TaskRunView
from executor.flowables.for_each_item import (
    ITEMS, ITEMS_SUFFIX, NAME, SPLIT_SUFFIX, batch_file_name, subflow_outputs_prefix,
)
from orchestrator.states import State
from orchestrator.storage.uris import InvalidStorageURI, execution_location
from orchestrator.templating import TemplateError

# Subflow executions started in one executor step at most: 10,000 batches start over 100 short
# transactions rather than one that holds the execution's lock for minutes.
START_PER_STEP = 100

# The order `iterations` lists states in: Kestra's two counters first, always there.
_ALWAYS = (State.CREATED, State.RUNNING)


@flowable(NAME)
def for_each_item(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    return run_in_sequence(ctx, run.id, enabled(node.branch("tasks")), enabled(node.branch(BRANCH_ERRORS)),
                           enabled(node.branch(BRANCH_FINALLY)))


@flowable(ITEMS)
@guarded
def items(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    definition = node.definition
    wait = bool(definition.get("wait", True))
    transmit_failed = bool(definition.get("transmitFailed", True))
    split = _split_run(ctx, node, run)
    split_outputs = ctx.details.outputs(split) or {}
    total = split_outputs.get("numberOfBatches")
    extension = split_outputs.get("extension", "")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0 or not isinstance(extension, str):
        raise FlowableError(f"{split.task_id} did not say how many batches it made")
    if total == 0:
        return State.SUCCESS
    counts = ctx.details.subflows(run)
    starts = []
    if counts.started < total and (run.id, "start") not in ctx.view.scheduled:
        last = min(total, counts.started + START_PER_STEP)
        starts = _start(ctx, node, run, split, extension, range(counts.started, last), wait)
    outputs = {"numberOfBatches": total, "iterations": iterations(counts, total, wait)}
    if dict(ctx.details.outputs(run) or {}) != outputs:
        ctx.actions.append(SetTaskRunState(run.id, State.RUNNING, outputs=outputs))
    # After the outputs: a batch that cannot start fails the task run, which nothing may undo.
    ctx.actions.extend(starts)
    if counts.started < total:
        return None
    if not wait:
        return State.SUCCESS
    if not _all_ended(counts):
        return None
    return outcome(counts.states) if transmit_failed else State.SUCCESS


def iterations(counts: SubflowCounts, total: int, wait: bool) -> dict[str, int]:
    """Kestra's `iterations`: the subflow executions by state, the batches not started yet as
    CREATED. Without `wait` a started subflow counts as SUCCESS, its own course unwatched."""
    if not wait:
        waiting = {"CREATED": total - counts.started} if counts.started < total else {}
        return {**waiting, "RUNNING": 0, "SUCCESS": counts.started}
    by_state = {state.value: 0 for state in _ALWAYS}
    by_state[State.CREATED.value] = total - counts.started
    for state in State:
        count = counts.states.get(state.value, 0)
        if count:
            by_state[state.value] = by_state.get(state.value, 0) + count
    return by_state


def outcome(states: Mapping[str, int]) -> State:
    """The state of `<id>_items` from its ended subflows', with `transmitFailed`."""
    if states.get(State.FAILED.value) or states.get(State.CANCELLED.value):
        return State.FAILED
    if states.get(State.KILLED.value):
        return State.KILLED
    if states.get(State.WARNING.value):
        return State.WARNING
    return State.SUCCESS


def _all_ended(counts: SubflowCounts) -> bool:
    ended = 0
    for name, count in counts.states.items():
        if count and not State(name).is_terminal:
            return False
        ended += count
    # A subflow a flow retry replaced is not counted until its next attempt exists.
    return ended >= counts.started


def _split_run(ctx: StepContext, node: TaskNode, run: TaskRunView) -> TaskRunView:
    split_id = node.id.removesuffix(ITEMS_SUFFIX) + SPLIT_SUFFIX
    found = ctx.latest_by_task(run.parent_id).get(split_id)
    if found is None or found.state not in (State.SUCCESS, State.WARNING):
        raise FlowableError(f"{node.id} needs the batches of {split_id}, which did not end successfully")
    return found


def _start(ctx: StepContext, node: TaskNode, run: TaskRunView, split: TaskRunView, extension: str,
           batches: range, wait: bool) -> list[StartSubflow]:
    """One StartSubflow per batch, every property rendered before any is proposed, so that a
    failure to render starts none of them."""
    definition = node.definition
    view = ctx.view
    try:
        namespace = ctx.render(node, run, definition.get("namespace"))
        flow_id = ctx.render(node, run, definition.get("flowId"))
    except TemplateError as error:
        raise FlowableError(f"Unable to render the subflow to start: {error}") from None
    if not isinstance(namespace, str) or not isinstance(flow_id, str) or not namespace or not flow_id:
        raise FlowableError(f"The subflow's namespace and flowId must be text, got {namespace!r} and {flow_id!r}")
    revision = definition.get("revision")
    owner = ctx.view.run(run.parent_id)  # the ForEachItem's own task run
    try:
        split_files = execution_location(view.namespace, view.flow_id, view.id).child("tasks", split.task_id, split.id)
        outputs_prefix = subflow_outputs_prefix(view.namespace, view.flow_id, view.id, owner.task_id, owner.id)
        names = [(iteration, split_files.child(batch_file_name(iteration, extension)).uri) for iteration in batches]
    except InvalidStorageURI as error:
        raise FlowableError(f"Unable to name the batch files: {error}") from None
    actions = []
    for iteration, uri in names:
        batch = {"items": uri, "iteration": iteration}
        try:
            inputs = ctx.render(node, run, definition.get("inputs") or {}, taskrun=batch)
            labels = ctx.render(node, run, definition.get("labels") or {}, taskrun=batch)
            scheduled = ctx.render(node, run, definition.get("scheduleDate"), taskrun=batch)
        except TemplateError as error:
            raise FlowableError(f"Unable to render the inputs of the subflow for batch {iteration}: {error}") \
                from None
        if not isinstance(inputs, Mapping):
            raise FlowableError(f"The subflow's inputs must be a map, got {inputs!r}")
        actions.append(StartSubflow(
            task_run_id=run.id, namespace=namespace, flow_id=flow_id,
            revision=revision if isinstance(revision, int) else None, inputs=dict(inputs), labels=labels,
            inherit_labels=bool(definition.get("inheritLabels", False)), wait=wait, iteration=iteration,
            outputs_uri=outputs_prefix.child(f"{iteration}.ion").uri if wait else None,
            schedule_date=schedule_date(scheduled),
        ))
    return actions

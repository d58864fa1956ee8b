"""`io.kestra.plugin.core.execution.Resume`: resume a paused execution with `inputs` as its
Pause's `onResume`. The current execution (the default) is resumed in this very step; another
one is resumed by the shell (ResumeExecution), which records `resumed` in this task's outputs,
or fails it with the reason when it cannot be — it does not exist or is not paused."""

from __future__ import annotations

from executor.core.actions import ResumeExecution, SetExecutionState, SetTaskRunState
from executor.core.decide import StepContext, flowable
from executor.core.flowables.common import FlowableError, guarded
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import ACTIVE, State
from orchestrator.templating import TemplateError

RESUME = "io.kestra.plugin.core.execution.Resume"


@flowable(RESUME)
@guarded
def resume_task(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    try:
        target = ctx.renderer.render(node, run, node.definition.get("executionId")) or ctx.view.id
        inputs = ctx.renderer.render(node, run, node.definition.get("inputs") or {})
    except TemplateError as error:
        raise FlowableError(f"Unable to render what to resume: {error}") from None
    if not isinstance(inputs, dict):
        raise FlowableError(f"`inputs` must be a map, got {inputs!r}")
    if target != ctx.view.id:
        if (ctx.details.outputs(run) or {}).get("resumed"):
            return State.SUCCESS  # the shell has resumed it (or failed this task run with the reason)
        if (run.id, "resume") not in ctx.view.scheduled:
            ctx.actions.append(ResumeExecution(run.id, str(target), inputs))
        return None
    ctx.whole_view()
    paused = [other for other in ctx.view.task_runs if other.state is State.PAUSED]
    if not paused:
        if _others_active(ctx, run):
            return None  # a Pause beside it may not have paused yet: look again next round
        raise FlowableError(f"execution {ctx.view.id} has no paused task to resume")
    ctx.actions += [SetTaskRunState(other.id, State.RUNNING, outputs={"onResume": dict(inputs)}) for other in paused]
    if ctx.view.state is State.PAUSED:
        ctx.actions.append(SetExecutionState(State.RUNNING))
    return State.SUCCESS


def _others_active(ctx: StepContext, run: TaskRunView) -> bool:
    """Whether a task run other than this one and the flowables holding it is still active."""
    runs = {item.id: item for item in ctx.view.task_runs}
    holders = {run.id}
    parent = run.parent_id
    while parent is not None and parent in runs and parent not in holders:
        holders.add(parent)
        parent = runs[parent].parent_id
    return any(item.state in ACTIVE for item in ctx.view.task_runs if item.id not in holders)

"""`io.kestra.plugin.core.execution.Exit`: the task run succeeds and the execution ends in the
state `state` renders to (SUCCESS by default; Kestra spells CANCELLED `CANCELED` here and both
are read). With KILLED every other task run still active is killed too; with another state the
tasks still running elsewhere (a parallel branch) are left to end, as in Kestra, and their
results no longer change the execution."""

from __future__ import annotations

from executor.core.actions import SetExecutionState, SetTaskRunState
from executor.core.decide import StepContext, flowable
from executor.core.flowables.common import FlowableError, guarded
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import ACTIVE, State
from orchestrator.templating import TemplateError

EXIT = "io.kestra.plugin.core.execution.Exit"
_STATES = {"SUCCESS": State.SUCCESS, "WARNING": State.WARNING, "FAILED": State.FAILED, "KILLED": State.KILLED,
           "CANCELED": State.CANCELLED, "CANCELLED": State.CANCELLED}


@flowable(EXIT)
@guarded
def exit_execution(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    ctx.whole_view()
    try:
        written = ctx.renderer.render(node, run, node.definition.get("state", "SUCCESS"))
    except TemplateError as error:
        raise FlowableError(f"Unable to render the exit state: {error}") from None
    state = _STATES.get(str(written).strip().upper())
    if state is None:
        raise FlowableError(f"{written!r} is not an exit state: use one of SUCCESS, WARNING, FAILED, CANCELED, KILLED")
    ctx.actions.append(SetTaskRunState(run.id, State.SUCCESS))
    if state is State.KILLED:
        ctx.actions.append(SetExecutionState(State.KILLING))
        ctx.actions += [SetTaskRunState(other.id, State.KILLED) for other in ctx.view.task_runs
                        if other.state in ACTIVE and other.id != run.id]
    ctx.actions.append(SetExecutionState(state))
    return None

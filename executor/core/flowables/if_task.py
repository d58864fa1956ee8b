"""`io.kestra.plugin.core.flow.If`: evaluate `condition` once, when the If starts, and run `then`
or `else` in sequence (no `else`: the If succeeds with nothing to run), with the If's own
`errors` and `finally`. The evaluation is kept in the output `evaluationResult`, as in Kestra;
later steps tell the branch taken by the task runs it made, so a condition whose inputs change
meanwhile (a KV entry, the time) never switches branches halfway."""

from __future__ import annotations

from executor.core.actions import SetTaskRunState
from executor.core.decide import StepContext, enabled, flowable, run_in_sequence
from executor.core.flowables.common import FlowableError, chosen_branch, guarded
from executor.core.model import BRANCH_ERRORS, BRANCH_FINALLY, TaskNode, TaskRunView
from orchestrator.states import State
from orchestrator.templating import TemplateError, is_truthy


@flowable("io.kestra.plugin.core.flow.If")
@guarded
def if_task(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    children = ctx.by_parent.get(run.id, ())
    if children:
        branch = chosen_branch(children, (node.branch("then"), node.branch("else")))
    else:
        try:
            result = is_truthy(ctx.render(node, run, node.definition.get("condition")))
        except TemplateError as error:
            raise FlowableError(f"Unable to evaluate the condition: {error}") from None
        ctx.actions.append(SetTaskRunState(run.id, State.RUNNING, outputs={"evaluationResult": result}))
        branch = node.branch("then" if result else "else")
    return run_in_sequence(ctx, run.id, enabled(branch), enabled(node.branch(BRANCH_ERRORS)),
                           enabled(node.branch(BRANCH_FINALLY)))

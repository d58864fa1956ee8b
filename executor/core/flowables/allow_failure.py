"""`io.kestra.plugin.core.flow.AllowFailure`: run the tasks in sequence; when one fails, the
AllowFailure's own `errors` branch runs and the AllowFailure ends in WARNING instead of FAILED,
so that what follows it runs. A KILLED child stays KILLED: killing is not a failure to forgive."""

from __future__ import annotations

from executor.core.decide import StepContext, enabled, flowable, run_in_sequence
from executor.core.flowables.common import guarded
from executor.core.model import BRANCH_ERRORS, BRANCH_FINALLY, TaskNode, TaskRunView
from orchestrator.states import State


@flowable("io.kestra.plugin.core.flow.AllowFailure")
@guarded
def allow_failure(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    outcome = run_in_sequence(ctx, run.id, enabled(node.branch("tasks")), enabled(node.branch(BRANCH_ERRORS)),
                              enabled(node.branch(BRANCH_FINALLY)))
    return State.WARNING if outcome is State.FAILED else outcome

"""`io.kestra.plugin.core.flow.EachSequential` (deprecated by Kestra for ForEach): ForEach over
`value`, one value after the other."""

from __future__ import annotations

from executor.core.decide import StepContext, enabled, flowable
from executor.core.flowables.common import guarded, loop_groups
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import State


@flowable("io.kestra.plugin.core.flow.EachSequential")
@guarded
def each_sequential(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    return loop_groups(ctx, node, run, "value", enabled(node.branch("tasks")), per_task=False, limit=1,
                       side_limit=1)

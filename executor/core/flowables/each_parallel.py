"""`io.kestra.plugin.core.flow.EachParallel` (deprecated by Kestra for ForEach): every task of
every value of `value` at once, at most `concurrent` task runs at a time (0: no bound). Unlike
ForEach, the tasks of one value do not wait for each other (wrap them in a Sequential for that).
As with Parallel, `errors` and `finally` run in parallel."""

from __future__ import annotations

from executor.core.decide import StepContext, enabled, flowable
from executor.core.flowables.common import guarded, int_property, loop_groups
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import State


@flowable("io.kestra.plugin.core.flow.EachParallel")
@guarded
def each_parallel(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    limit = int_property(node, "concurrent", 0)
    return loop_groups(ctx, node, run, "value", enabled(node.branch("tasks")), per_task=True, limit=limit,
                       side_limit=limit)

"""`io.kestra.plugin.core.flow.Parallel`: start the tasks together, at most `concurrent` at once
(0: no bound). After a failure no other task starts, the running ones end on their own, and the
`errors` branch starts at once. As in Kestra, `errors` and `finally` run in parallel too."""

from __future__ import annotations

from executor.core.decide import StepContext, enabled, flowable
from executor.core.flowables.common import Group, guarded, int_property, run_groups
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import State


@flowable("io.kestra.plugin.core.flow.Parallel")
@guarded
def parallel(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    limit = int_property(node, "concurrent", 0)
    groups = [Group((task,)) for task in enabled(node.branch("tasks"))]
    return run_groups(ctx, node, run, groups, limit=limit, side_limit=limit)

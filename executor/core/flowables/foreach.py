"""`io.kestra.plugin.core.flow.ForEach`: run the tasks once per distinct value of `values` (a list,
or a JSON array as a string), the tasks of one value in sequence, at most `concurrencyLimit`
values at once (1, the default: one after the other; 0: all together). The direct children of an
iteration carry its value as text (`taskrun.value`) and its index (`taskrun.iteration`).
`errors` and `finally` run in sequence."""

from __future__ import annotations

from executor.core.decide import StepContext, enabled, flowable
from executor.core.flowables.common import guarded, int_property, loop_groups
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import State


@flowable("io.kestra.plugin.core.flow.ForEach")
@guarded
def foreach(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    return loop_groups(ctx, node, run, "values", enabled(node.branch("tasks")), per_task=False,
                       limit=int_property(node, "concurrencyLimit", 1), side_limit=1)

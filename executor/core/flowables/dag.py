"""`io.kestra.plugin.core.flow.Dag`: start every task whose `dependsOn` have all ended without
failing, at most `concurrent` at once (0: no bound). A failure stops the Dag as it stops a
Parallel: nothing new starts, the running tasks end, `errors` runs (in parallel, as in Kestra).
A disabled task counts as done for the tasks that depend on it: disabling removes a task from the
flow, not the tasks after it."""

from __future__ import annotations

from typing import Any, Mapping

from executor.core.decide import StepContext, enabled, flowable
from executor.core.flowables.common import Group, RunKey, guarded, int_property, nested_nodes, run_groups
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import FAILED_STATES, State


@flowable("io.kestra.plugin.core.flow.Dag")
@guarded
def dag(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    items: list[Mapping[str, Any]] = [item for item in node.definition.get("tasks") or () if isinstance(item, Mapping)]
    tasks = enabled(nested_nodes(ctx, node, (item.get("task") for item in items)))
    disabled = {item["task"]["id"] for item in items} - {task.id for task in tasks}
    depends = {item["task"]["id"]: [dep for dep in item.get("dependsOn") or () if dep not in disabled]
               for item in items}

    def ready(group: Group, latest: Mapping[RunKey, TaskRunView]) -> bool:
        for dep in depends[group.nodes[0].id]:
            done = latest.get((None, dep))
            if done is None or not done.state.is_terminal or done.state in FAILED_STATES:
                return False
        return True

    limit = int_property(node, "concurrent", 0)
    return run_groups(ctx, node, run, [Group((task,)) for task in tasks], limit=limit, ready=ready, side_limit=limit)


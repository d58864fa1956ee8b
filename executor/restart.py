"""Restarting a parent execution restarts the failed subflow executions it waits for, as Kestra
does (`restartBehavior: RETRY_FAILED`, the default): each keeps its id and runs its own failed
tasks again, and the parent's task waits for it as before. The core names the task runs
concerned (executor/core/control.py, `restarted_subflows`); this restarts their children.
"""

from __future__ import annotations

from typing import Callable

from executor.core.actions import Action, SetTaskRunState
from executor.core.control import restarted_subflows
from executor.core.model import ExecutionView, FlowGraph
from executor.flowables.for_each_item import ITEMS
from orchestrator.models import Execution
from orchestrator.repository import merge_labels
from orchestrator.states import State

# The label Kestra puts on a subflow execution restarted with its parent.
RESTARTED_LABEL = {"key": "system.restarted", "value": "true"}
_FAILED = [State.FAILED.value, State.KILLED.value]


def restart_subflows(graph: FlowGraph, view: ExecutionView,
                     restart_child: Callable[[str], object]) -> list[Action]:
    """Restart the failed subflow executions of the task runs a restart of `view` reopens, under
    the parent's lock and before the parent decides again, so that it finds them running (the
    parent's lock is taken before its children's, as a kill takes them). Returns the actions
    that go with it: a Subflow whose child cannot restart (it was cancelled) starts a new one.
    `restart_child` restarts one execution, raising ValueError or LookupError when it cannot."""
    actions: list[Action] = []
    for run in restarted_subflows(graph, view):
        children = Execution.objects.filter(parent_id=view.id, trigger__variables__taskRunId=run.id,
                                            state__in=_FAILED).order_by("start_date")
        restarted = 0
        for child_id in children.values_list("id", flat=True):
            try:
                restart_child(child_id)
            except (ValueError, LookupError):
                continue
            _label_restarted(child_id)
            restarted += 1
        if not restarted and graph.nodes[run.task_id].type != ITEMS:
            actions.append(SetTaskRunState(run.id, State.RUNNING, outputs={}))
    return actions


def _label_restarted(execution_id: str) -> None:
    child = Execution.objects.select_for_update().get(id=execution_id)
    child.labels = merge_labels(child.labels or [], [RESTARTED_LABEL])
    child.save(update_fields=["labels"])

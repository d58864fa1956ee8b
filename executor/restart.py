"""What a restart needs from the executor shell beyond the core's decision (executor/core/control.py).

- **Attempts a kill cut short.** A task killed while its worker ran it has no attempt recorded
  (the worker's late result is not applied to an ended execution), yet that attempt's number is
  taken: its claim exists, and its kept result waits under it. The restart's new attempt must take
  the next number, or the worker would drop it as a copy and the old result would be applied in
  its place. So the attempt is recorded first, KILLED (`record_killed_attempts`).
- **Subflows.** Restarting a parent execution restarts the failed subflow executions it waits
  for, as Kestra does (`restartBehavior: RETRY_FAILED`, the default): each keeps its id and runs
  its own failed tasks again, and the parent's task waits for it as before. The core names the
  task runs concerned (`restarted_subflows`); this restarts their children.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from executor import store
from executor.core.actions import Action, SetTaskRunState
from executor.core.control import restart, restarted_subflows
from executor.core.model import ExecutionView, FlowGraph
from executor.flowables.for_each_item import ITEMS
from orchestrator.models import Execution
from orchestrator.repository import iso, merge_labels, now
from orchestrator.states import State
from workers.claims import claim_key, get_claims

# The label Kestra puts on a subflow execution restarted with its parent.
RESTARTED_LABEL = {"key": "system.restarted", "value": "true"}
_FAILED = [State.FAILED.value, State.KILLED.value]


def restart_actions(graph: FlowGraph, view: ExecutionView, restart_child: Callable[[str], object]) -> list[Action]:
    """The actions of restarting `view` (raises ValueError when it cannot restart), with the
    shell's part done first: attempts a kill cut short recorded, failed subflows restarted."""
    view = record_killed_attempts(graph, view)
    return restart(graph, view) + restart_subflows(graph, view, restart_child)


def record_killed_attempts(graph: FlowGraph, view: ExecutionView) -> ExecutionView:
    """Record, KILLED, the attempt each killed worker job had in flight (its claim is taken), and
    return the view with those attempts counted."""
    killed = [run for run in view.task_runs if run.state is State.KILLED and run.task_id in graph.nodes
              and graph.nodes[run.task_id].dispatched]
    if not killed:
        return view
    owners = get_claims().claim_owners([claim_key(run.id, run.attempts + 1) for run in killed])
    taken = {run.id: owner for run, owner in zip(killed, owners) if owner is not None}
    if not taken:
        return view
    stamp = iso(now())
    for stored in store.task_runs(view.id, list(taken)):
        ended = stored.state_history[-1]["date"] if stored.state_history else stamp
        stored.attempts = [*stored.attempts, {"workerId": taken[stored.id], "state": {
            "current": State.KILLED.value, "histories": [{"state": State.RUNNING.value, "date": ended},
                                                         {"state": State.KILLED.value, "date": ended}]}}]
        stored.attempt_count = len(stored.attempts)
        store.update_run(stored)
    return view.replace_runs(replace(run, attempts=run.attempts + 1) if run.id in taken else run
                             for run in view.task_runs)


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

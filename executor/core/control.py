"""Actions a person takes on an execution, decided by the pure core: kill, resume, restart,
change a task run's state, and what a replay keeps.

Restart, change of state and replay share one rule, *reopening*: the task runs to run again go
back to work, every flowable above them becomes RUNNING again, and what those flowables ran
because something had failed or ended — their `errors` and `finally` branches — is removed, to
run again when the time comes. The decisions that follow are the executor's usual ones.

A task that waits for subflow executions — a Subflow with `wait`, a ForEachItem's `<id>_items` —
is reopened with its children: the shell restarts its failed subflow executions under their own
ids (`restarted_subflows`) before the task looks at them again, and the batches or child that
succeeded are kept. A Subflow whose `restartBehavior` is NEW_EXECUTION starts a new child
instead (its output `executionId` is dropped).

The tasks of a WorkingDirectory ran on a worker in a directory that is gone: none of them runs
again alone. A restart runs the whole WorkingDirectory again (a new attempt, its earlier task
runs removed), a replay from one of its tasks replays from the WorkingDirectory, and their
states cannot be changed by hand.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from executor.core.actions import Action, DeleteTaskRun, Dispatch, SetExecutionState, SetTaskRunState
from executor.core.flowables.subflow import OLD_FLOW, SUBFLOW
from executor.core.model import BRANCH_AFTER, BRANCH_ERRORS, BRANCH_FINALLY, ExecutionView, FlowGraph, TaskRunView
from executor.flowables.for_each_item import ITEMS
from orchestrator.states import ACTIVE, State

# The states an execution can be restarted from.
RESTARTABLE = frozenset({State.FAILED, State.KILLED})
# The branches that run because of how the rest went: reopening removes what they ran.
SIDE_BRANCHES = (BRANCH_ERRORS, BRANCH_FINALLY, BRANCH_AFTER)
# The states a person may give a task run.
SETTABLE = frozenset({State.SUCCESS, State.WARNING, State.FAILED})
# A Subflow's `restartBehavior` that starts a new child rather than restarting the failed one.
NEW_EXECUTION = "NEW_EXECUTION"


def kill(view: ExecutionView) -> list[Action]:
    """Kill an execution: KILLING, every task run still active KILLED (workers stop the attempts
    they run when they see the execution killed), then KILLED. Raises ValueError when the
    execution has already ended."""
    if view.state.is_terminal:
        raise ValueError(f"execution {view.id} has already ended ({view.state}): there is nothing to kill")
    actions: list[Action] = [SetExecutionState(State.KILLING)]
    actions += [SetTaskRunState(run.id, State.KILLED) for run in view.task_runs if run.state in ACTIVE]
    actions.append(SetExecutionState(State.KILLED))
    return actions


def end_now(view: ExecutionView, state: State) -> list[Action]:
    """End a running execution at once in `state` (an SLA's FAIL or CANCEL): every task run
    still active is KILLED, as a kill would."""
    if view.state.is_terminal:
        return []
    actions: list[Action] = [SetTaskRunState(run.id, State.KILLED) for run in view.task_runs if run.state in ACTIVE]
    actions.append(SetExecutionState(state))
    return actions


def resume(view: ExecutionView, on_resume: Mapping[str, Any] | None = None) -> list[Action]:
    """Resume a PAUSED execution: its paused task runs go on, with the inputs given on resume
    as their output `onResume`. Raises ValueError when the execution is not paused."""
    if view.state is not State.PAUSED:
        raise ValueError(f"execution {view.id} is {view.state}, not PAUSED: only a paused execution resumes")
    actions: list[Action] = [
        SetTaskRunState(run.id, State.RUNNING, outputs={"onResume": dict(on_resume or {})})
        for run in view.task_runs if run.state is State.PAUSED
    ]
    actions.append(SetExecutionState(State.RUNNING))
    return actions


def restart(flow: FlowGraph, view: ExecutionView) -> list[Action]:
    """Restart a FAILED or KILLED execution under the same id: its failed and killed task runs
    run again (runnables with a new attempt on the same task run), from where they stopped."""
    if view.state not in RESTARTABLE:
        raise ValueError(f"execution {view.id} is {view.state}: only a FAILED or KILLED execution can be restarted")
    targets = _restart_targets(flow, view)
    actions: list[Action] = [SetExecutionState(State.RESTARTED), SetExecutionState(State.RUNNING)]
    actions += _reopen(flow, view, {run.id: None for run in targets})
    # Without the id of its child, the Subflow starts a new one.
    actions += [SetTaskRunState(run.id, State.RUNNING, outputs={}) for run in targets
                if _subflow_restart(flow, run) == NEW_EXECUTION]
    return actions


def restarted_subflows(flow: FlowGraph, view: ExecutionView) -> list[TaskRunView]:
    """The task runs a restart reopens whose failed subflow executions restart with them (a
    Subflow with `wait` and restartBehavior RETRY_FAILED, a ForEachItem's `<id>_items`)."""
    if view.state not in RESTARTABLE:
        return []
    return [run for run in _restart_targets(flow, view) if _subflow_restart(flow, run) == "RETRY_FAILED"]


def _restart_targets(flow: FlowGraph, view: ExecutionView) -> list[TaskRunView]:
    """The failed and killed task runs a restart runs again."""
    # A failure inside an `errors` or `finally` branch is not restarted: the branch is removed,
    # and runs again if what it handles fails again.
    failed = [run for run in view.task_runs
              if run.state in (State.FAILED, State.KILLED) and not _in_side_branch(flow, view, run)
              and _worker_job_of(flow, view, run) is None]
    # Only the deepest failures run again: a flowable that failed because a child did is reopened
    # as the child's ancestor.
    parents_of_failed = {run.parent_id for run in failed}
    return [run for run in failed if run.id not in parents_of_failed or _is_runnable(flow, run)]


def _subflow_restart(flow: FlowGraph, run: TaskRunView) -> str | None:
    """How a task run waiting for subflow executions restarts: RETRY_FAILED or NEW_EXECUTION;
    None for any other task (a Subflow without `wait` has ended with its child's start)."""
    node = flow.nodes.get(run.task_id)
    if node is None:
        return None
    if node.type == ITEMS:
        return "RETRY_FAILED"  # each batch is one execution of its own: it is restarted
    if node.type not in (SUBFLOW, OLD_FLOW) or not node.definition.get("wait", node.type == SUBFLOW):
        return None
    return NEW_EXECUTION if node.definition.get("restartBehavior") == NEW_EXECUTION else "RETRY_FAILED"


def change_state(flow: FlowGraph, view: ExecutionView, task_run_id: str, state: State) -> list[Action]:
    """Give an ended task run another state (SUCCESS, WARNING or FAILED) and let the execution
    go on from there: a task marked SUCCESS lets the next ones run."""
    if state not in SETTABLE:
        raise ValueError(f"a task run can be set to {', '.join(sorted(s.value for s in SETTABLE))}, not {state}")
    run = _find(view, task_run_id)
    holder = _worker_job_of(flow, view, run)
    if holder is not None:
        raise ValueError(f"task run {task_run_id} ({run.task_id}) ran inside the WorkingDirectory {holder.task_id}, "
                         f"whose directory is gone: change the state of {holder.task_id} instead")
    if not run.state.is_terminal:
        raise ValueError(f"task run {task_run_id} ({run.task_id}) is {run.state}: only an ended task run can change "
                         f"state")
    actions: list[Action] = []
    if view.state.is_terminal:
        actions += [SetExecutionState(State.RESTARTED), SetExecutionState(State.RUNNING)]
    actions += _reopen(flow, view, {task_run_id: state})
    return actions


def replay_runs(flow: FlowGraph, view: ExecutionView, task_run_id: str | None) -> list[TaskRunView]:
    """The task runs a replay from `task_run_id` keeps (None: from the start, none): every one
    created before it except the branches reopened, with the flowables above it RUNNING again.
    The replayed task run itself and everything after it run again in the new execution."""
    if not view.state.is_terminal:
        raise ValueError(f"execution {view.id} is {view.state}: only an ended execution can be replayed")
    if task_run_id is None:
        return []
    target = _find(view, task_run_id)
    target = _worker_job_of(flow, view, target) or target  # its directory is gone: replay all of it
    ancestors = _ancestors(view, target)
    removed = {run.id for run in view.task_runs if run.seq >= target.seq and run.id not in ancestors}
    removed |= _side_branches(flow, view, ancestors)
    removed = _with_descendants(view, removed)
    return [run.with_state(State.RUNNING) if run.id in ancestors else run
            for run in view.task_runs if run.id not in removed]


def _reopen(flow: FlowGraph, view: ExecutionView, targets: Mapping[str, State | None]) -> list[Action]:
    """Actions that put `targets` back to work — to the state given, or, for None, running again
    (a runnable gets its next attempt) — with their ancestors RUNNING and the `errors` and
    `finally` task runs of those ancestors removed."""
    actions: list[Action] = []
    ancestors: set[str] = set()
    for run_id in targets:
        ancestors |= _ancestors(view, _find(view, run_id))
    removed = _with_descendants(view, _side_branches(flow, view, ancestors) - set(targets))
    for run in view.task_runs:
        if run.id in removed:
            actions.append(DeleteTaskRun(run.id))
        elif run.id in targets:
            actions += _reopen_one(flow, run, targets[run.id])
            if targets[run.id] is None and _is_worker_job(flow, run):
                # Its next attempt runs every task again, in a new directory.
                actions += [DeleteTaskRun(child.id) for child in view.children(run.id)]
        elif run.id in ancestors and run.state is not State.RUNNING:
            if run.state.is_terminal:
                actions.append(SetTaskRunState(run.id, State.RESTARTED))
            actions.append(SetTaskRunState(run.id, State.RUNNING))
    return actions


def _reopen_one(flow: FlowGraph, run: TaskRunView, state: State | None) -> list[Action]:
    if state is not None:
        return [SetTaskRunState(run.id, state)]
    actions: list[Action] = [SetTaskRunState(run.id, State.RESTARTED)]
    if _is_runnable(flow, run):
        actions += [SetTaskRunState(run.id, State.CREATED), Dispatch(run.id, run.attempts + 1)]
    else:
        actions.append(SetTaskRunState(run.id, State.RUNNING))
    return actions


def _is_runnable(flow: FlowGraph, run: TaskRunView) -> bool:
    """Whether it runs again as a new attempt on a worker (a WorkingDirectory too)."""
    node = flow.nodes.get(run.task_id)
    return node is not None and node.dispatched


def _is_worker_job(flow: FlowGraph, run: TaskRunView) -> bool:
    node = flow.nodes.get(run.task_id)
    return node is not None and node.worker_job


def _worker_job_of(flow: FlowGraph, view: ExecutionView, run: TaskRunView) -> TaskRunView | None:
    """The WorkingDirectory task run that ran `run` on its worker, if one did."""
    if run.parent_id is None:
        return None
    try:
        parent = view.run(run.parent_id)
    except KeyError:
        return None
    return parent if _is_worker_job(flow, parent) else None


def _find(view: ExecutionView, task_run_id: str) -> TaskRunView:
    try:
        return view.run(task_run_id)
    except KeyError:
        raise ValueError(f"execution {view.id} has no task run {task_run_id}") from None


def _ancestors(view: ExecutionView, run: TaskRunView) -> set[str]:
    runs = {item.id: item for item in view.task_runs}
    found: set[str] = set()
    parent = run.parent_id
    while parent is not None and parent in runs and parent not in found:
        found.add(parent)
        parent = runs[parent].parent_id
    return found


def _side_branches(flow: FlowGraph, view: ExecutionView, ancestors: Iterable[str]) -> set[str]:
    """The task runs of the `errors` and `finally` branches of these task runs and of the flow,
    and of the flow's `afterExecution`."""
    side: set[str] = set()
    owners: list[tuple[str | None, Any]] = [(None, flow.root)]
    for run_id in ancestors:
        node = flow.nodes.get(view.run(run_id).task_id)
        if node is not None:
            owners.append((run_id, node))
    for owner_id, node in owners:
        ids = {child.id for name in SIDE_BRANCHES for child in node.branch(name)}
        side |= {run.id for run in view.task_runs if run.parent_id == owner_id and run.task_id in ids}
    return side


def _in_side_branch(flow: FlowGraph, view: ExecutionView, run: TaskRunView) -> bool:
    runs = {item.id: item for item in view.task_runs}
    current: TaskRunView | None = run
    while current is not None:
        parent = runs.get(current.parent_id) if current.parent_id is not None else None
        owner = flow.root if parent is None else flow.nodes.get(parent.task_id)
        if owner is not None and any(child.id == current.task_id for name in SIDE_BRANCHES
                                     for child in owner.branch(name)):
            return True
        current = parent
    return False


def _with_descendants(view: ExecutionView, roots: set[str]) -> set[str]:
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for run in view.task_runs:
            if run.parent_id in found and run.id not in found:
                found.add(run.id)
                changed = True
    return found

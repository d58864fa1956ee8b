"""The executor shell's part of WorkingDirectory (the decisions are in
executor/core/flowables/working_directory.py): the task runs of what its tasks did on the worker,
made from the worker's notices of progress while the job runs and settled by its result.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from django.db import transaction
from django.db.models import Max

from executor import store
from executor.core.flowables.working_directory import ChildAttempt, ChildResult, accepted_children, supersedes
from orchestrator.models import Execution, TaskRun
from orchestrator.repository import FlowNotFound, flow_graph
from orchestrator.states import State


def apply_progress(message: Mapping[str, Any]) -> None:
    """Create or move on the task runs of a WorkingDirectory's tasks as its worker reports them,
    under the execution's lock. A notice for an attempt that is not the current one, or once the
    WorkingDirectory or its execution has ended, changes nothing: the result has settled it."""
    notice = message.get("progress")
    if not isinstance(notice, Mapping) or not isinstance(notice.get("attempt"), int):
        return
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(id=message.get("executionId")).first()
        if execution is None or State(execution.state).is_terminal:
            return
        holder = TaskRun.objects.filter(execution_id=execution.id, id=notice.get("taskRunId")).first()
        if holder is None or holder.state not in (State.CREATED.value, State.RUNNING.value) \
                or holder.attempt_count != notice["attempt"] - 1:
            return
        try:
            node = flow_graph(execution.namespace, execution.flow_id, execution.flow_revision).nodes.get(holder.task_id)
        except FlowNotFound:
            return
        if node is None or not node.worker_job:
            return
        children = accepted_children(node, notice.get("children"), running=True)
        if not children:
            return
        new, changed = child_task_runs(execution, holder, children, notice.get("workerId"),
                                       next_seq(execution.id), existing=existing_children(holder, children))
        if holder.state == State.CREATED.value:  # the indexer's notice may not have come yet
            holder.state = State.RUNNING.value
            holder.state_history = [*holder.state_history, {"state": State.RUNNING.value,
                                                            "date": children[0].start_date}]
            changed.append(holder)
        with store.batch():
            store.insert_runs(new)
            for run in changed:
                store.update_run(run)


def next_seq(execution_id: str) -> int:
    top = TaskRun.objects.filter(execution_id=execution_id).aggregate(top=Max("seq"))["top"]
    return 0 if top is None else top + 1


def child_task_runs(execution: Execution, holder: TaskRun, children: Iterable[ChildResult], worker_id: str | None,
                    first_seq: int, existing: Mapping[str, TaskRun]) -> tuple[list[TaskRun], list[TaskRun]]:
    """(new task runs, changed ones) for these children, each with its attempts; the new ones
    numbered from `first_seq`, in order."""
    new: list[TaskRun] = []
    changed: list[TaskRun] = []
    seq = first_seq
    for child in children:
        attempts = [_attempt(attempt, worker_id) for attempt in child.attempts]
        stored = existing.get(child.id)
        if stored is None:
            history = [{"state": State.CREATED.value, "date": child.start_date}]
            if child.ran:
                history.append({"state": State.RUNNING.value, "date": child.start_date})
            if child.state is not State.RUNNING:
                history.append({"state": child.state.value, "date": child.end_date})
            new.append(TaskRun(
                id=child.id, execution=execution, task_id=child.task_id, parent_task_run_id=holder.id,
                state=child.state.value, seq=seq, state_history=history, attempts=attempts,
                attempt_count=len(attempts), outputs=dict(child.outputs) if child.outputs else None,
            ))
            seq += 1
        elif supersedes(State(stored.state), stored.attempt_count, child):
            if stored.state != child.state.value:
                stored.state_history = [*stored.state_history, {"state": child.state.value, "date": child.end_date}]
                stored.state = child.state.value
            stored.attempts, stored.attempt_count = attempts, len(attempts)
            stored.outputs = dict(child.outputs) if child.outputs else None
            changed.append(stored)
    return new, changed


def existing_children(holder: TaskRun, children: list[ChildResult]) -> dict[str, TaskRun]:
    """The task runs that notices of progress have already made for these children."""
    runs = TaskRun.objects.filter(execution_id=holder.execution_id, parent_task_run_id=holder.id,
                                  id__in=[child.id for child in children])
    return {run.id: run for run in runs}


def _attempt(attempt: ChildAttempt, worker_id: str | None) -> dict[str, Any]:
    histories = [{"state": State.RUNNING.value, "date": attempt.start_date}]
    if attempt.end_date is not None and attempt.state is not State.RUNNING:
        histories.append({"state": attempt.state.value, "date": attempt.end_date})
    recorded: dict[str, Any] = {"workerId": worker_id, "state": {"current": attempt.state.value,
                                                                 "histories": histories}}
    if attempt.error:
        recorded["error"] = attempt.error
    return recorded


def end_lost_children(holder: TaskRun, stamp: str, reason: str) -> None:
    """The task its worker was running when an attempt of the WorkingDirectory was lost with
    that worker ends FAILED: no result will ever settle it (the next attempt has tasks of its own)."""
    for run in TaskRun.objects.filter(execution_id=holder.execution_id, parent_task_run_id=holder.id,
                                      state=State.RUNNING.value):
        run.state = State.FAILED.value
        run.state_history = [*run.state_history, {"state": State.FAILED.value, "date": stamp}]
        if run.attempts and run.attempts[-1]["state"]["current"] == State.RUNNING.value:
            last = run.attempts[-1]
            run.attempts = [*run.attempts[:-1], {**last, "lost": True, "error": reason, "state": {
                "current": State.FAILED.value,
                "histories": [*last["state"]["histories"], {"state": State.FAILED.value, "date": stamp}]}}]
        store.update_run(run)

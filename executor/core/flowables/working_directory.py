"""`io.kestra.plugin.core.flow.WorkingDirectory`: runnable tasks run one after the other on one
worker, in one directory, so that the files one writes are there for the next.

The executor does not run the children one by one: a directory lives on one machine, and a
child dispatched alone could land on any worker. The WorkingDirectory's task run is created
CREATED and dispatched like a runnable's (`TaskNode.worker_job`), so claims, lost jobs, kills,
timeouts and retries work for it as for any job. Its worker runs the children in sequence — then
`errors` when one failed, then `finally` — and sends one result that lists what each child did.
Applying that result, the shell creates the children's task runs (`accepted_children`) and
gives the WorkingDirectory the state `outcome` decides. A duplicate result changes nothing:
the WorkingDirectory has ended by then (`judge_result`).

Between dispatch and result there is nothing for the executor to decide, so the handler only
waits. (A worker says the job runs, which makes the task run RUNNING and visited here.) While it
waits, the worker's notices of progress create and move on the children's task runs
(`accepted_children` with `running`, `supersedes`), so that a user sees each task as it runs; the
result then settles them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from executor.core.decide import StepContext, enabled, flowable, tolerate
from executor.core.model import BRANCH_ERRORS, BRANCH_FINALLY, TaskNode, TaskRunView
from orchestrator.states import FAILED_STATES, TERMINAL, State, worst

NAME = "io.kestra.plugin.core.flow.WorkingDirectory"


@flowable(NAME)
def working_directory(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    return None  # its job is on a worker; its result decides (see the module's docstring)


@dataclass(frozen=True, slots=True)
class ChildAttempt:
    """One attempt of a child, run on the worker (its own `retry` makes several)."""

    state: State  # RUNNING while it runs
    start_date: str
    end_date: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ChildResult:
    """What a worker reports of one child of a WorkingDirectory, checked against the flow."""

    id: str
    task_id: str
    state: State  # after the child's own allowFailure and allowWarning
    reported: State  # as its attempt ended
    outputs: Mapping[str, Any] | None
    start_date: str
    end_date: str
    error: str | None = None
    labels: tuple[Mapping[str, str], ...] = ()
    attempts: tuple[ChildAttempt, ...] = ()

    @property
    def ran(self) -> bool:
        """Whether it had an attempt (a child whose runIf was false did not)."""
        return self.state is not State.SKIPPED


def accepted_children(node: TaskNode, reported: Iterable[Mapping[str, Any]] | None, *,
                      running: bool = False) -> list[ChildResult]:
    """The children a worker reports, in order, keeping only those that can be: a task of the
    WorkingDirectory (main branch, `errors` or `finally`), once each, in a terminal state (or
    RUNNING, in a notice of progress: `running`). A worker sends what the flow says, so anything
    else is a message from elsewhere: dropped."""
    allowed = TERMINAL | {State.RUNNING} if running else TERMINAL
    known = {child.id: child for name in ("tasks", BRANCH_ERRORS, BRANCH_FINALLY) for child in node.branch(name)}
    accepted: list[ChildResult] = []
    seen_ids: set[str] = set()
    seen_tasks: set[str] = set()
    for item in reported or ():
        if not isinstance(item, Mapping):
            continue
        task = known.get(item.get("taskId"))  # type: ignore[arg-type]
        run_id = item.get("taskRunId")
        try:
            state = State(item.get("state"))
        except ValueError:
            continue
        if task is None or not isinstance(run_id, str) or state not in allowed or run_id in seen_ids \
                or task.id in seen_tasks:
            continue
        seen_ids.add(run_id)
        seen_tasks.add(task.id)
        outputs = item.get("outputs")
        accepted.append(ChildResult(
            id=run_id, task_id=task.id, state=tolerate(task, state), reported=state,
            outputs=dict(outputs) if isinstance(outputs, Mapping) else None,
            start_date=str(item.get("startDate")), end_date=str(item.get("endDate")),
            error=item.get("error") if isinstance(item.get("error"), str) else None,
            labels=tuple(label for label in item.get("labels") or () if isinstance(label, Mapping)),
            attempts=_attempts(item, state),
        ))
    return accepted


def _attempts(item: Mapping[str, Any], state: State) -> tuple[ChildAttempt, ...]:
    """The attempts a child reports; one made of its own dates when it lists none."""
    listed = item.get("attempts")
    if isinstance(listed, list) and listed:
        attempts = []
        for attempt in listed:
            try:
                attempts.append(ChildAttempt(
                    state=State(attempt["state"]), start_date=str(attempt["startDate"]),
                    end_date=str(attempt["endDate"]) if attempt.get("endDate") is not None else None,
                    error=attempt["error"] if isinstance(attempt.get("error"), str) else None))
            except (KeyError, TypeError, ValueError):
                continue
        return tuple(attempts)
    if state is State.SKIPPED:
        return ()
    error = item.get("error") if isinstance(item.get("error"), str) else None
    end = None if state is State.RUNNING else str(item.get("endDate"))
    return (ChildAttempt(state=state, start_date=str(item.get("startDate")), end_date=end, error=error),)


def supersedes(stored: State, stored_attempts: int, child: ChildResult) -> bool:
    """Whether what a worker reports of a child already recorded moves it on. Notices can arrive
    late or out of order: an ended child never changes again, and a RUNNING report counts only if
    it is about the same attempt or a later one."""
    if stored.is_terminal:
        return False
    return child.state.is_terminal or len(child.attempts) >= stored_attempts


def outcome(node: TaskNode, reported: State, children: Iterable[ChildResult]) -> State:
    """The WorkingDirectory's own state, before its allowFailure: the worst of what its worker
    reported for it (FAILED when the directory could not be prepared or it ran out of time) and
    of its children, and FAILED when a task of its main branch failed — `errors` reacts to a
    failure, it does not undo it, as for every flowable."""
    children = list(children)
    main = {child.id for child in enabled(node.branch("tasks"))}
    states = [reported, *(child.state for child in children)]
    result = worst(states)
    if any(child.task_id in main and child.state in FAILED_STATES for child in children) \
            and result not in FAILED_STATES:
        result = State.FAILED
    return result

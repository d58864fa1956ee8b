"""The message contracts between components: small, versioned, JSON-only payloads.

Every message may be lost or delivered twice; receivers are idempotent. Pure Python (workers
and the executor's pure core import this).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

VERSION = 1

# Queue names. Worker groups are queues `worker.<key>`.
EXECUTOR_QUEUE = "executor"
INDEXER_QUEUE = "indexer"
SCHEDULER_QUEUE = "scheduler"
DEFAULT_WORKER_GROUP = "default"

# Celery task names of the consumers, one per queue kind.
EXECUTOR_TASK = "harrier.executor.process"
WORKER_TASK = "harrier.worker.run"
INDEXER_TASK = "harrier.indexer.ingest"
# A worker's notice that an attempt is still running (sent only for attempts that outlast a
# quarter of a second, so that quick tasks cost no message): the task run shows RUNNING.
RUNNING_TASK = "harrier.indexer.running"
# A polling trigger's evaluation, to a worker of its group; its outcome, back to the scheduler.
POLL_TASK = "harrier.worker.poll"
POLLED_TASK = "harrier.scheduler.polled"


class RunningNotice(TypedDict):
    executionId: str
    taskRunId: str
    attempt: int
    startDate: str


def worker_queue(group: str | None) -> str:
    return f"worker.{group or DEFAULT_WORKER_GROUP}"


class ExecutorMessage(TypedDict):
    """To the executor: look at this execution again, possibly with a worker's result."""

    v: int
    kind: Literal["evaluate", "send", "result", "progress"]
    executionId: str
    result: NotRequired["TaskResult"]
    # A WorkingDirectory's worker telling how its tasks are going, while its job runs.
    progress: NotRequired["Progress"]
    # Task runs whose job seems lost (sent long ago, claimed by no worker): send again.
    redispatch: NotRequired[list[str]]
    # Attempts whose worker stopped responding while it ran them: end them, send the next.
    lost: NotRequired[list["LostAttempt"]]
    # The task runs an evaluation is about (a subflow execution's end concerns the task run
    # waiting for it): the step may then read only those and what is above them.
    about: NotRequired[list[str]]


class LostAttempt(TypedDict):
    taskRunId: str
    attempt: int
    workerId: str  # the claim's owner, whose heartbeat has expired


class TaskResult(TypedDict):
    taskRunId: str
    attempt: int  # 1-based number of the attempt this result is for
    state: str  # SUCCESS | WARNING | FAILED | KILLED
    outputs: dict[str, Any] | None
    startDate: str  # ISO-8601
    endDate: str
    workerId: str
    error: NotRequired[str]
    # Labels the task sets on its execution (the Labels task): [{key, value}]
    labels: NotRequired[list[dict[str, str]]]
    # A WorkingDirectory's: what each of its tasks did on the worker, in the order they ran.
    children: NotRequired[list["ChildResult"]]


class ChildResult(TypedDict):
    """One task run inside a WorkingDirectory: its id is made by the worker (workers/ids.py).
    RUNNING only in a Progress; its `attempts` (none when its `runIf` was false: SKIPPED) were
    retried on the worker by its own `retry`."""

    taskRunId: str
    taskId: str
    state: str
    outputs: dict[str, Any] | None
    startDate: str
    endDate: str
    error: NotRequired[str]
    labels: NotRequired[list[dict[str, str]]]
    attempts: NotRequired[list["ChildAttempt"]]


class ChildAttempt(TypedDict):
    state: str  # RUNNING while it runs, then how it ended
    startDate: str
    endDate: NotRequired[str]
    error: NotRequired[str]


class Progress(TypedDict):
    """The tasks a WorkingDirectory's attempt has run so far and the one it runs now, sent as
    each starts and ends so that their task runs show while the job goes on. Every notice
    repeats the whole list: one lost or late changes nothing that a later one does not set."""

    taskRunId: str  # the WorkingDirectory's
    attempt: int
    workerId: str
    children: list[ChildResult]


class WorkerJob(TypedDict):
    """To a worker: everything it needs to run one attempt of one task run, no lookups."""

    v: int
    executionId: str
    taskRunId: str
    attempt: int
    task: dict[str, Any]  # the task's definition as written in the flow
    context: dict[str, Any]  # the run context for expressions
    namespace: str
    flowId: str
    # For tasks that call errorLogs(): the errors of the execution's failed task runs so far.
    errorLogs: NotRequired[list[dict[str, Any]]]
    # A task inside a loop: the worker notes its kept result among the execution's finished ones,
    # for the executor to apply together with others (ClaimStore.take_finished).
    gather: NotRequired[bool]


class LogRecord(TypedDict):
    id: str
    executionId: str
    namespace: str
    flowId: str
    taskId: str | None
    taskRunId: str | None
    attempt: int | None
    level: str
    message: str
    timestamp: str


def evaluate(execution_id: str, redispatch: list[str] | None = None,
             lost: list[LostAttempt] | None = None, about: list[str] | None = None) -> ExecutorMessage:
    message: ExecutorMessage = {"v": VERSION, "kind": "evaluate", "executionId": execution_id}
    if redispatch:
        message["redispatch"] = redispatch
    if lost:
        message["lost"] = lost
    if about:
        message["about"] = about
    return message


def send(execution_id: str) -> ExecutorMessage:
    """Send the next batch of the jobs a step left unsent (HARRIER_DISPATCH_BATCH); nothing else
    changed."""
    return {"v": VERSION, "kind": "send", "executionId": execution_id}


def result(execution_id: str, task_result: TaskResult) -> ExecutorMessage:
    return {"v": VERSION, "kind": "result", "executionId": execution_id, "result": task_result}


def progress(execution_id: str, notice: Progress) -> ExecutorMessage:
    return {"v": VERSION, "kind": "progress", "executionId": execution_id, "progress": notice}


class PollJob(TypedDict):
    """To a worker: evaluate one polling trigger once. `evaluationId` is the evaluation's lease
    (the trigger state's `locked_by`) and the id of the execution it would start."""

    v: int
    evaluationId: str
    namespace: str
    flowId: str
    flowRevision: int
    trigger: dict[str, Any]  # the trigger's definition as written in the flow
    deadline: str  # ISO-8601: the lease ends then; a job not started before is dropped
    state: NotRequired[dict[str, Any] | None]  # what the trigger remembers (poll_state)


class PollResult(TypedDict):
    """To the scheduler: what one evaluation found. `variables` (when it fired) become the
    execution's `trigger` variables; `state` replaces what the trigger remembers."""

    v: int
    evaluationId: str
    namespace: str
    flowId: str
    triggerId: str
    fired: bool
    startDate: str  # ISO-8601: when the evaluation started on the worker (the interval counts from it)
    variables: NotRequired[dict[str, Any]]
    state: NotRequired[dict[str, Any] | None]
    error: NotRequired[str]
    workerId: str

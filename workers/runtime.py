"""The worker runtime: run one attempt of one task run from a self-contained job.

A worker never touches the repository: it renders, runs, ships logs to the indexer and sends
exactly one result to the executor, all through the bus.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import ValidationError

from orchestrator import bus, messages
from orchestrator.states import State
from orchestrator.templating import TemplateError
from workers import registry
from workers import liveness
from workers.claims import claim_key, get_claims, result_key, running_entry
from orchestrator.flowlang.types import parse_duration
from workers.context import RunContext, TaskFailure, iso_now
from workers.watch import KILLED, TIMEOUT, watch

logger = logging.getLogger("harrier.worker")

# Properties every task has that the worker must not render: the executor interprets them.
_COMMON_RAW = frozenset({"id", "type", "description", "disabled", "allowFailure", "allowWarning", "runIf",
                         "timeout", "retry", "workerGroup", "logLevel", "logToFile"})


def _emit_logs(batch: list[messages.LogRecord]) -> None:
    bus.publish(messages.INDEXER_QUEUE, messages.INDEXER_TASK, batch)


def handle_job(job: messages.WorkerJob) -> None:
    """Consume one worker job; a copy of a job already claimed elsewhere is dropped."""
    if job.get("v") != messages.VERSION:
        logger.error("dropping worker job of unknown version: %r", job.get("v"))
        return
    claims = get_claims()
    # Normally started with the worker (workers/liveness.py); a job must never run unwatched.
    liveness.start((job["task"].get("workerGroup") or {}).get("key"))
    me = liveness.worker_id()
    # A copy of an attempt the executor has declared lost finds the claim taken (by the worker
    # that died, or by the executor's marker) and is dropped here too.
    if not claims.claim(claim_key(job["taskRunId"], job["attempt"]), me):
        logger.info("job %s attempt %s already claimed", job["taskRunId"], job["attempt"])
        return
    if claims.killed({job["executionId"]}):
        return  # its execution was killed while the job waited: the task run is KILLED already
    entry = running_entry(job["executionId"], job["taskRunId"], job["attempt"])
    claims.start_attempt(me, entry)
    message = messages.result(job["executionId"], run_job(job))
    claims.keep_result(result_key(job["taskRunId"], job["attempt"]), orjson.dumps(message),
                       job["executionId"] if job.get("gather") else None)
    claims.end_attempt(me, entry)  # after the copy: a worker dying in between leaves a result to re-send
    bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, message)


def run_job(job: messages.WorkerJob, ctx: RunContext | None = None) -> messages.TaskResult:
    """Run one attempt; `ctx` is given for a task run inside another (a WorkingDirectory's)."""
    ctx = ctx or RunContext(job, _emit_logs)
    start = iso_now()
    outputs: dict[str, Any] | None = None
    error: str | None = None
    timeout = parse_duration(job["task"].get("timeout"))
    token = watch.track(ctx, job["executionId"], timeout.total_seconds() if timeout is not None else None)
    try:
        outputs = execute(job["task"], ctx)
        state = State.WARNING if ctx.warning else State.SUCCESS
    except TaskFailure as failure:
        state, error = State.FAILED, str(failure)
    except TemplateError as failure:
        state, error = State.FAILED, str(failure)
    except ValidationError as failure:
        state, error = State.FAILED, describe_validation_error(failure)
    except Exception as failure:  # a task's bug must end its attempt, not the worker
        logger.exception("task %s failed unexpectedly", job["task"].get("id"))
        state, error = State.FAILED, f"{type(failure).__name__}: {failure}"
    finally:
        watch.untrack(token)
    if ctx.stop_reason == TIMEOUT:
        limit = job["task"].get("timeout")
        # Without a timeout of its own, it was stopped with the WorkingDirectory holding it.
        error = f"Timeout: the task ran longer than {limit}" if limit else \
            "Timeout: stopped when the task holding it ran longer than its timeout"
        state, outputs = State.FAILED, None
    elif ctx.stop_reason == KILLED:
        state, error, outputs = State.KILLED, None, None
        ctx.log("WARN", "The execution was killed: the task stopped")
    if error:
        ctx.log("ERROR", error)
    ctx.flush_logs()
    result: messages.TaskResult = {
        "taskRunId": job["taskRunId"],
        "attempt": job["attempt"],
        "state": state.value,
        "outputs": ctx.hooks.mask(outputs) or None,
        "startDate": start,
        "endDate": iso_now(),
        "workerId": liveness.worker_id(),
    }
    if error:
        result["error"] = ctx.hooks.mask(error)
    elif ctx.labels:
        result["labels"] = ctx.labels
    if ctx.children:
        result["children"] = ctx.children
    return result


def execute(task: dict[str, Any], ctx: RunContext) -> dict[str, Any] | None:
    task_type = registry.get(task["type"])
    if task_type is None or task_type.run is None:
        raise TaskFailure(f"task type {task['type']} cannot run on a worker")
    skip = _COMMON_RAW | task_type.raw_properties
    rendered = {key: (value if key in skip else ctx.render(value)) for key, value in task.items()}
    properties = task_type.properties.model_validate(rendered)
    return task_type.run(properties, ctx)


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "(task)"
        parts.append(f"{path}: {item['msg']}")
    return "invalid task properties after rendering: " + "; ".join(parts)

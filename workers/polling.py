"""A worker's side of polling triggers: evaluate one trigger once, as a `harrier.worker.poll`
job of the trigger's worker group, and send what it found to the scheduler.

The job is self-contained (the trigger's definition, what it remembers, the flow's identity)
and carries its lease's end: a job that waited in the queue past it is dropped, and a running
evaluation is asked to stop then (its HTTP connections aborted, its query's statement_timeout
reached), so that an evaluation never outlives the lease that keeps it the only one. The
scheduler decides what becomes of the result (scheduler/polling.py).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from pydantic import ValidationError

from orchestrator import bus, messages
from orchestrator.templating import TemplateError
from scheduler import triggers
from scheduler.triggers.polling_base import RAW_PROPERTIES
from workers import liveness
from workers.claims import get_claims, poll_claim_key
from workers.context import RunContext, TaskFailure, iso_now
from workers.runtime import describe_validation_error
from workers.triggers import Evaluation
from workers.watch import TIMEOUT

logger = logging.getLogger("harrier.worker")


def handle_poll(job: messages.PollJob) -> None:
    if job.get("v") != messages.VERSION:
        logger.error("dropping polling job of unknown version: %r", job.get("v"))
        return
    liveness.start((job["trigger"].get("workerGroup") or {}).get("key"))
    left = _seconds_left(job)
    if left <= 0:
        logger.info("dropping the evaluation %s of trigger %s: its lease ended while it waited",
                    job["evaluationId"], job["trigger"].get("id"))
        return
    # A copy of the job (redelivered by the broker) finds the evaluation taken.
    if not get_claims().claim(poll_claim_key(job["evaluationId"]), liveness.worker_id()):
        return
    start = iso_now()
    evaluation = evaluate(job, left)
    result: messages.PollResult = {
        "v": messages.VERSION, "evaluationId": job["evaluationId"], "namespace": job["namespace"],
        "flowId": job["flowId"], "triggerId": str(job["trigger"]["id"]), "fired": evaluation.fired,
        "startDate": evaluation.started or start, "variables": evaluation.variables, "state": evaluation.state,
        "workerId": liveness.worker_id(),
    }
    if evaluation.error:
        result["error"] = evaluation.error
    bus.publish(messages.SCHEDULER_QUEUE, messages.POLLED_TASK, result)


def evaluate(job: messages.PollJob, seconds_left: float) -> Evaluation:
    """Render the trigger's properties, run its type's evaluation, and never raise: a failure is
    an evaluation that did not fire, with the reason."""
    ctx = RunContext(_as_task_job(job), _log_records)
    stopper = threading.Timer(seconds_left, ctx.stop, args=(TIMEOUT,))
    stopper.daemon = True
    stopper.start()
    try:
        return _run(job, ctx, seconds_left)
    except (TaskFailure, TemplateError) as failure:
        return Evaluation(fired=False, state=job.get("state"), error=str(failure))
    except ValidationError as failure:
        return Evaluation(fired=False, state=job.get("state"), error=describe_validation_error(failure))
    except Exception as failure:  # a bug must end this evaluation, not the worker
        logger.exception("evaluating trigger %s failed unexpectedly", job["trigger"].get("id"))
        return Evaluation(fired=False, state=job.get("state"), error=f"{type(failure).__name__}: {failure}")
    finally:
        stopper.cancel()


def _run(job: messages.PollJob, ctx: RunContext, seconds_left: float) -> Evaluation:
    from scheduler.triggers import http_trigger, jdbc_trigger, storage_trigger
    from workers.triggers import http, postgresql, storage

    trigger = job["trigger"]
    declared = triggers.get(str(trigger.get("type")))
    if declared is None or declared.kind != "polling":
        raise TaskFailure(f"trigger type {trigger.get('type')} cannot be evaluated on a worker")
    raw = RAW_PROPERTIES | (http.RAW if declared.name == http_trigger.NAME else frozenset())
    rendered = {key: (value if key in raw else ctx.render(value)) for key, value in trigger.items()}
    props = declared.properties.model_validate(rendered)
    started = iso_now()  # the interval separates calls to the outside world: counted from here
    if declared.name == http_trigger.NAME:
        evaluation = http.evaluate(props, ctx)
    elif declared.name == jdbc_trigger.POSTGRESQL:
        evaluation = postgresql.evaluate(props, ctx, seconds_left)
    elif declared.name in (storage_trigger.AWS, storage_trigger.MINIO):
        evaluation = storage.evaluate(props, ctx, job.get("state"))
    else:
        raise TaskFailure(f"trigger type {declared.name} has no evaluation on workers")
    evaluation.started = started
    return evaluation


def _as_task_job(job: messages.PollJob) -> messages.WorkerJob:
    """The evaluation seen as a task's job, for the run context (rendering, secrets, storage
    functions, logs): its execution is the one it would start."""
    flow = {"id": job["flowId"], "namespace": job["namespace"], "revision": job["flowRevision"]}
    return {"v": messages.VERSION, "executionId": job["evaluationId"], "taskRunId": job["evaluationId"],
            "attempt": 1, "task": job["trigger"], "namespace": job["namespace"], "flowId": job["flowId"],
            "context": {"flow": flow, "execution": {"id": job["evaluationId"]}}}


def _log_records(batch: list[messages.LogRecord]) -> None:
    """An evaluation's log lines go to the worker's log: until it fires there is no execution
    to hold them."""
    for record in batch:
        logger.log(_LEVELS.get(record["level"], logging.INFO), "trigger %s of %s.%s: %s", record["taskId"],
                   record["namespace"], record["flowId"], record["message"])


_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "ERROR": logging.ERROR}


def _seconds_left(job: messages.PollJob) -> float:
    deadline = datetime.fromisoformat(job["deadline"].replace("Z", "+00:00"))
    return (deadline - datetime.now(timezone.utc)).total_seconds()

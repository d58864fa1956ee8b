"""`io.harrier.celery.Task`: send an existing Celery task by name, wait for its result and make
it the task run's output, so that Celery code already written is orchestrated declaratively.

The task goes to the user's Celery cluster, not to Harrier's: a Celery app of its own
(`client()`), configured by HARRIER_CELERY_TASKS_BROKER and HARRIER_CELERY_RESULT_BACKEND, which
default to Harrier's broker. Harrier's own app keeps no results (PostgreSQL is its source of
truth); this one reads them, and only the ones it asked for. docs/celery-tasks.md has the setup.

Waiting is a poll of the result backend (a GET of one key, backing off to POLL_MAX), which stops
as soon as the attempt is asked to stop (its `timeout`, or a kill): Celery's own `get()` would
block on a subscription that cannot be interrupted, and refuses to run inside a Celery task.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from pydantic import Field

from workers.context import RunContext, TaskFailure
from workers.registry import TaskBase, TaskType, register

NAME = "io.harrier.celery.Task"

POLL_FIRST = 0.02  # seconds; quick tasks answer within a few polls
POLL_MAX = 0.5
# Celery's states (celery.states) this task tells apart.
SUCCESS, FAILURE, REVOKED = "SUCCESS", "FAILURE", "REVOKED"


class CeleryTaskProperties(TaskBase):
    task: str = Field(description="The name the Celery task is registered under (`proj.tasks.add`).")
    args: list[Any] = Field(default_factory=list, description="Positional arguments, rendered; JSON values.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments, rendered; JSON values.")
    queue: str | None = Field(None, description="The queue to send it to (default HARRIER_CELERY_TASKS_QUEUE, "
                                                "`celery` unless set: Celery's default queue).")
    priority: int | None = Field(None, ge=0, le=255, description="The message priority, as the broker reads it "
                                                                 "(Redis: 0-9, 0 first).")
    revokeOnStop: bool = Field(True, description="Revoke the Celery task when the attempt stops waiting (its "
                                                 "timeout, or a kill): a task not started yet is then dropped.")


# --- the user's Celery app -------------------------------------------------------------------

_client = None
_client_lock = threading.Lock()


def client():
    """The Celery app that sends users' tasks and reads their results, made once per process
    on first use (after a prefork worker has forked). Never the current app: Harrier's own tasks
    keep sending through Harrier's app, without results."""
    global _client
    with _client_lock:
        if _client is None:
            from celery import Celery
            from django.conf import settings

            app = Celery("harrier-celery-tasks", set_as_current=False)
            app.conf.update(
                broker_url=settings.HARRIER_CELERY_TASKS_BROKER,
                result_backend=settings.HARRIER_CELERY_RESULT_BACKEND,
                # JSON both ways: a pickled result is refused, never loaded.
                task_serializer="json", result_serializer="json", accept_content=["json"],
                result_accept_content=["json"], broker_connection_retry_on_startup=True,
                task_default_queue=settings.HARRIER_CELERY_TASKS_QUEUE,
            )
            if settings.HARRIER_CELERY_RESULT_KEY_PREFIX:
                app.conf.result_backend_transport_options = {
                    "global_keyprefix": settings.HARRIER_CELERY_RESULT_KEY_PREFIX}
            _client = app
        return _client


# --- the task ---------------------------------------------------------------------------------

def run(props: CeleryTaskProperties, ctx: RunContext) -> dict[str, Any]:
    from django.conf import settings

    if not settings.HARRIER_CELERY_RESULT_BACKEND:
        raise TaskFailure("no result backend to read Celery results from: set HARRIER_CELERY_RESULT_BACKEND to the "
                          "Redis your Celery workers store results in")
    app = client()
    backend = app.backend
    if not hasattr(backend, "get_key_for_task"):
        raise TaskFailure(f"the result backend {type(backend).__name__} cannot be read: set "
                          f"HARRIER_CELERY_RESULT_BACKEND to the Redis your Celery workers store results in")
    _check_json("args", props.args)
    _check_json("kwargs", props.kwargs)
    queue = props.queue or app.conf.task_default_queue
    options: dict[str, Any] = {"queue": queue}
    if props.priority is not None:
        options["priority"] = props.priority
    try:
        sent = app.send_task(props.task, args=props.args, kwargs=props.kwargs, **options)
    except Exception as error:  # kombu's connection errors, after its own retries
        raise TaskFailure(f"cannot send Celery task {props.task} to queue {queue}: {type(error).__name__}: "
                          f"{error}") from None
    task_id = sent.id
    ctx.log("INFO", f"Sent Celery task {props.task} ({task_id}) to queue {queue}")
    meta = _wait(backend, task_id, props, ctx)
    state = meta.get("status")
    if state == FAILURE:
        backend.forget(task_id)
        raise TaskFailure(f"Celery task {props.task} ({task_id}) failed: {_describe_failure(meta.get('result'))}")
    if state == REVOKED:
        raise TaskFailure(f"Celery task {props.task} ({task_id}) was revoked")
    result = meta.get("result")
    backend.forget(task_id)  # read once: nothing else waits for it
    _check_json("the result", result, task=props.task, task_id=task_id)
    return {"result": result, "taskId": task_id, "state": state}


def _wait(backend, task_id: str, props: CeleryTaskProperties, ctx: RunContext) -> dict[str, Any]:
    key = backend.get_key_for_task(task_id)
    interval = POLL_FIRST
    while True:
        try:
            meta = backend.decode(backend.get(key))
        except Exception as error:  # not JSON (a pickled result), or the backend unreachable
            raise TaskFailure(f"cannot read the result of Celery task {props.task} ({task_id}): "
                              f"{type(error).__name__}: {error}") from None
        if isinstance(meta, dict) and meta.get("status") in (SUCCESS, FAILURE, REVOKED):
            return meta
        if ctx.stop_requested.wait(interval):
            _stop(props, task_id, ctx)
        interval = min(interval * 2, POLL_MAX)


def _stop(props: CeleryTaskProperties, task_id: str, ctx: RunContext) -> None:
    revoked = ""
    if props.revokeOnStop:
        try:
            client().control.revoke(task_id)
            revoked = "; it was revoked"
        except Exception as error:  # the stop must not wait on a broker that is away
            revoked = f"; revoking it failed: {type(error).__name__}: {error}"
    ctx.log("WARN", f"Stopped waiting for Celery task {props.task} ({task_id}){revoked}")
    raise TaskFailure(f"stopped waiting for Celery task {props.task} ({task_id}): the task was asked to stop")


def _describe_failure(stored: Any) -> str:
    """The remote exception as `Type: message`, read from the stored fields: the exception is
    never rebuilt, since that would import a module a remote result names."""
    if not isinstance(stored, dict):
        return str(stored)
    kind = stored.get("exc_type") or "Exception"
    message = stored.get("exc_message")
    if isinstance(message, (list, tuple)):
        message = ", ".join(str(part) for part in message) if len(message) != 1 else str(message[0])
    return f"{kind}: {message}" if message not in (None, "") else str(kind)


def _check_json(what: str, value: Any, task: str | None = None, task_id: str | None = None) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        where = f" of Celery task {task} ({task_id})" if task else ""
        raise TaskFailure(f"{what}{where} is not JSON: {error}") from None


register(TaskType(name=NAME, properties=CeleryTaskProperties, kind="runnable", run=run,
                  title="Run a Celery task and wait for its result"))

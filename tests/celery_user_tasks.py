"""A user's own Celery project, as `io.harrier.celery.Task` meets it: a separate app with its
tasks, a result backend (Redis) and a queue of its own. Started as a real `celery worker` by the
`user_celery_worker` fixture (tests/integration/test_celery_task.py). Imports no Django."""

from __future__ import annotations

import os
import threading

from celery import Celery

# Where Harrier sends these tasks and reads their results (its settings' defaults: its broker).
BROKER = os.environ.get("HARRIER_CELERY_TASKS_BROKER") or os.environ["CELERY_BROKER_URL"]

app = Celery("user_tasks", broker=BROKER, backend=os.environ.get("HARRIER_CELERY_RESULT_BACKEND") or BROKER)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                result_expires=600, broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)

_stop = threading.Event()  # never set: `slow` waits out its seconds, as real work would


@app.task(name="user.add")
def add(x: int, y: int) -> int:
    return int(x) + int(y)


@app.task(name="user.boom")
def boom(message: str) -> None:
    raise ValueError(message)


@app.task(name="user.slow")
def slow(seconds: float) -> str:
    _stop.wait(float(seconds))
    return "done"


@app.task(name="user.moment")
def moment() -> object:
    """A result JSON cannot hold as it is (kombu sends it tagged, and reads back a datetime)."""
    from datetime import datetime, timezone

    return datetime(2024, 1, 2, tzinfo=timezone.utc)

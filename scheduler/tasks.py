"""The Scheduler's Celery consumer (queue `scheduler`): thin adapters over scheduler/service.py.
celery beat sends these, from the PeriodicTasks the service keeps in step with the flows."""

from __future__ import annotations

import time

from orchestrator.celery import app
from orchestrator.messages import POLLED_TASK
from scheduler import FIRE_TASK, SWEEP_TASK

# The sweep also puts edited or missing PeriodicTasks back, at most this often per process.
RESYNC_SECONDS = 60.0
_last_sync = [0.0]


@app.task(name=FIRE_TASK, ignore_result=True)
def fire(message: dict) -> None:
    from scheduler.service import fire as fire_trigger

    fire_trigger(message["namespace"], message["flowId"], message["triggerId"])


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep(message: dict | None = None) -> None:
    from scheduler import service

    if time.monotonic() - _last_sync[0] >= RESYNC_SECONDS:
        _last_sync[0] = time.monotonic()
        service.sync_all()
    service.fire_due()


@app.task(name=POLLED_TASK, ignore_result=True)
def polled(result: dict) -> None:
    from scheduler.polling import apply_result

    apply_result(result)

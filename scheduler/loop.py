"""`server local` has no beat and no broker: a thread evaluates the Schedule triggers and
dispatches polling triggers instead, with the same service functions the Celery consumer and
the scheduler's dispatch thread call (one step per second)."""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections

logger = logging.getLogger("harrier.scheduler")

INTERVAL_SECONDS = 1.0
RESYNC_SECONDS = 60.0


def step(last_sync: float) -> float:
    """Fire what is due; re-sync the triggers with the flows once a minute. Returns when it last synced."""
    from scheduler import polling, service

    if time.monotonic() - last_sync >= RESYNC_SECONDS:
        service.sync_all()
        last_sync = time.monotonic()
    service.fire_due()
    polling.dispatch_due()
    return last_sync


def run_forever(stop: threading.Event) -> None:
    last_sync = 0.0
    while not stop.is_set():
        try:
            last_sync = step(last_sync)
        except Exception:  # the database may be busy or restarting: try again next second
            logger.exception("schedule loop pass failed")
        finally:
            close_old_connections()
        stop.wait(INTERVAL_SECONDS)


def start_thread() -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(stop,), name="harrier-schedules", daemon=True).start()
    return stop

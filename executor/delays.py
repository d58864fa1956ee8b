"""The delay loop: fires what the executor scheduled for later (a retry's next attempt…).

Delays are rows of the repository, not broker messages with an ETA: they survive every restart,
and Redis cannot redeliver them early. Each executor process runs this loop in a thread. It
sleeps until the next delay is due — at most POLL_SECONDS, so that delays written by another
executor process are seen within that — and is woken at once when its own process writes one.
Firing one runs an executor step under the execution's lock that also deletes the row, so two
loops racing for the same delay fire it once.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from django.db import close_old_connections

from orchestrator.models import Delay
from orchestrator.repository import now

logger = logging.getLogger("harrier.delays")

POLL_SECONDS = 0.5
BATCH = 200

_wake = threading.Event()


def notify() -> None:
    """A delay was just committed in this process: look again now."""
    _wake.set()


def fire_due(limit: int = BATCH) -> int:
    """Fire every delay that is due; returns how many were fired."""
    from executor.service import fire_delay

    due = list(
        Delay.objects.filter(fire_at__lte=now()).order_by("fire_at").values_list("id", "execution_id")[:limit]
    )
    fired = 0
    for delay_id, execution_id in due:
        try:
            fired += fire_delay(delay_id, execution_id)
        except Exception:  # one bad execution must not hold back the others
            logger.exception("firing delay %s of execution %s failed", delay_id, execution_id)
    return fired


def next_due() -> datetime | None:
    return Delay.objects.order_by("fire_at").values_list("fire_at", flat=True).first()


def seconds_to_wait() -> float:
    upcoming = next_due()
    if upcoming is None:
        return POLL_SECONDS
    return min(max((upcoming - now()).total_seconds(), 0.0), POLL_SECONDS)


def run_forever(stop: threading.Event) -> None:
    while not stop.is_set():
        wait = POLL_SECONDS
        try:
            if fire_due() < BATCH:
                wait = seconds_to_wait()
            else:
                wait = 0.0  # more are due: go on at once
        except Exception:  # the database may be restarting: try again next round
            logger.exception("delay loop pass failed")
        finally:
            close_old_connections()
        if wait > 0 and _wake.wait(wait):
            _wake.clear()


def start_thread() -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(stop,), name="harrier-delays", daemon=True).start()
    return stop

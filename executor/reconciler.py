"""The reconciler: re-sends what a lost message would have sent.

PostgreSQL is the truth and the broker only transport, so a message can be lost between a
commit and its publish, or with a consumer that dies. Every few seconds this finds executions
that should be moving but have not changed for a while, and asks the executor to look again —
with the task runs whose job no worker has claimed, so that those jobs are sent again.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import close_old_connections

from orchestrator import bus, messages
from orchestrator.models import Execution, TaskRun
from orchestrator.repository import now
from orchestrator.states import State
from workers.claims import claim_key, get_claims, result_key

logger = logging.getLogger("harrier.reconciler")

# QUEUED too: the message that starts a queued execution when a slot frees can be lost as well.
MOVING = [State.CREATED.value, State.QUEUED.value, State.RUNNING.value, State.KILLING.value]


def reconcile_once(*, idle_seconds: float | None = None, limit: int = 500) -> int:
    """One pass; returns how many executions were sent to the executor again."""
    idle = settings.HARRIER_RECONCILE_AFTER if idle_seconds is None else idle_seconds
    cutoff = now() - timedelta(seconds=idle)
    stale = list(
        Execution.objects.filter(state__in=MOVING, updated__lt=cutoff).order_by("updated")
        .values_list("id", flat=True)[:limit]
    )
    if not stale:
        return 0
    in_flight: dict[str, list[tuple[str, int]]] = {}
    for run_id, execution_id, attempt_count in TaskRun.objects.filter(
        execution_id__in=stale, state=State.CREATED.value, dispatched__isnull=False, dispatched__lt=cutoff
    ).values_list("id", "execution_id", "attempt_count"):
        in_flight.setdefault(execution_id, []).append((run_id, attempt_count + 1))
    claims = get_claims()
    sent = 0
    for execution_id in stale:
        waiting = in_flight.get(execution_id, [])
        lost = []
        for run_id, attempt in waiting:
            if not claims.is_claimed(claim_key(run_id, attempt)):
                lost.append(run_id)
                continue
            kept = claims.kept_result(result_key(run_id, attempt))
            if kept is not None:  # the worker finished but its result never arrived
                bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, orjson.loads(kept))
                sent += 1
        if waiting and not lost:
            continue  # every job is on a worker, or its result was sent again
        bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, messages.evaluate(execution_id, lost))
        sent += 1
    if sent:
        logger.info("reconciler sent %d execution(s) to the executor again", sent)
    return sent


def run_forever(stop: threading.Event) -> None:
    """The reconciler loop, for a thread of the executor process."""
    while not stop.is_set():
        try:
            reconcile_once()
        except Exception:  # the database may be restarting: try again next round
            logger.exception("reconciler pass failed")
        finally:
            close_old_connections()
        stop.wait(settings.HARRIER_RECONCILE_INTERVAL)


def start_thread() -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(stop,), name="harrier-reconciler", daemon=True).start()
    return stop

"""The reconciler: re-sends what a lost message would have sent, and the work of dead workers.

PostgreSQL is the truth and the broker only transport, so a message can be lost between a
commit and its publish, or with a consumer that dies. Every few seconds this finds executions
that should be moving but have not changed for a while, and asks the executor to look again —
with the task runs whose job no worker has claimed, so that those jobs are sent again, and the
attempts whose claim's owner has no heartbeat any more, so that they run again as new attempts.

Workers whose heartbeat has expired are found first, without waiting for their executions to
idle: each worker lists the attempts it runs (workers/liveness.py, docs/workers.md).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections

from orchestrator import bus, messages
from orchestrator.models import Execution, TaskRun
from orchestrator.repository import now
from orchestrator.states import State
from workers.claims import claim_key, get_claims, parse_running_entry, result_key

logger = logging.getLogger("harrier.reconciler")

# QUEUED too: the message that starts a queued execution when a slot frees can be lost as well.
MOVING = [State.CREATED.value, State.QUEUED.value, State.RUNNING.value, State.KILLING.value]
# A task run whose job is sent and not answered: CREATED, or RUNNING once its worker said so.
IN_FLIGHT = [State.CREATED.value, State.RUNNING.value]


def reap_once() -> int:
    """One pass over the workers whose heartbeat has expired: the attempts each was running go
    to the executor, which ends them as lost and sends the next attempts. Returns how many
    executions were told. Several executors may run this at once: removing the worker from the
    list of workers is the claim on its attempts, and only one remover proceeds."""
    claims = get_claims()
    told = 0
    for worker in claims.silent_workers(settings.HARRIER_HEARTBEAT_TTL):
        if not claims.forget_worker(worker):
            continue
        lost: dict[str, list[messages.LostAttempt]] = {}
        for entry in claims.attempts_of(worker):
            execution_id, run_id, attempt = parse_running_entry(entry)
            lost.setdefault(execution_id, []).append({"taskRunId": run_id, "attempt": attempt, "workerId": worker})
        for execution_id, attempts in lost.items():
            bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, messages.evaluate(execution_id, lost=attempts))
        # Should this process die before here, reconcile_once still finds these attempts.
        claims.drop_attempts(worker)
        told += len(lost)
        logger.warning("worker %s stopped responding: %d attempt(s) of %d execution(s) go to the executor again",
                       worker, sum(len(attempts) for attempts in lost.values()), len(lost))
    return told


def reconcile_once(*, idle_seconds: float | None = None, limit: int = 500) -> int:
    """One pass; returns how many executions were sent to the executor again."""
    idle = settings.HARRIER_RECONCILE_AFTER if idle_seconds is None else idle_seconds
    cutoff = now() - timedelta(seconds=idle)
    stale = list(
        # An execution waiting for its scheduleDate is not stuck: its START delay starts it.
        Execution.objects.filter(state__in=MOVING, updated__lt=cutoff).exclude(schedule_date__gt=now())
        .order_by("updated").values_list("id", flat=True)[:limit]
    )
    if not stale:
        return 0
    in_flight: dict[str, list[tuple[str, int]]] = {}
    for run_id, execution_id, attempt_count in TaskRun.objects.filter(
        execution_id__in=stale, state__in=IN_FLIGHT, dispatched__isnull=False, dispatched__lt=cutoff
    ).values_list("id", "execution_id", "attempt_count"):
        in_flight.setdefault(execution_id, []).append((run_id, attempt_count + 1))
    claims = get_claims()
    waiting_jobs = [job for execution_id in stale for job in in_flight.get(execution_id, [])]
    owners = dict(zip(waiting_jobs, claims.claim_owners([claim_key(*job) for job in waiting_jobs])))
    alive = claims.alive({owner for owner in owners.values() if owner is not None})
    claimed = [job for job in waiting_jobs if owners[job] is not None]
    finished = {job for job, kept in zip(claimed, claims.kept_results([result_key(*job) for job in claimed]))
                if kept is not None}
    sent = 0
    for execution_id in stale:
        waiting = in_flight.get(execution_id, [])
        unclaimed, dead, results_waiting = [], [], False
        for run_id, attempt in waiting:
            owner = owners[(run_id, attempt)]
            if owner is None:
                unclaimed.append(run_id)
            elif (run_id, attempt) in finished:
                # The worker finished, its result is not applied yet: one evaluation applies every
                # kept result of the execution (rather than one message per result, which would
                # pile onto a queue that may only be busy).
                results_waiting = True
            elif owner not in alive:  # its worker died and the pass over silent workers missed it
                dead.append({"taskRunId": run_id, "attempt": attempt, "workerId": owner})
        if waiting and not unclaimed and not dead and not results_waiting:
            continue  # every job is on a live worker
        bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK,
                    messages.evaluate(execution_id, unclaimed, dead))
        sent += 1
    if sent:
        logger.info("reconciler sent %d execution(s) to the executor again", sent)
    return sent


def run_forever(stop: threading.Event) -> None:
    """The reconciler loop, for a thread of the executor process."""
    while not stop.is_set():
        try:
            reap_once()
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

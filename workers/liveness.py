"""Worker liveness: heartbeats, and which live workers serve which group.

Every process that runs jobs — each child of a prefork pool, or the one process of a threads or
solo pool — refreshes a heartbeat in the broker's Redis (never the database) from a thread of
its own, every HARRIER_HEARTBEAT_INTERVAL seconds, and the heartbeat expires after
HARRIER_HEARTBEAT_TTL. Its id is the one its claims name as their owner, `host:pid`, so a
heartbeat proves that the very process running an attempt is alive: a prefork parent whose
child was killed keeps beating under its own id, not the child's.

The executor's reconciler (executor/reconciler.py) turns a silent worker's attempts into new
attempts; `live_workers` tells the API and the UI who serves a group, and so why a job waits.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timezone
from typing import Any

import orjson

from orchestrator import messages
from workers.claims import get_claims

logger = logging.getLogger("harrier.worker")

_HOST = socket.gethostname()
_WORKER_PREFIX = messages.worker_queue("")[: -len(messages.DEFAULT_WORKER_GROUP)]  # "worker."

_lock = threading.Lock()
_groups: tuple[str, ...] = ()
_beating_pid: int | None = None  # the process whose heartbeat thread runs (threads do not survive fork)
_since = ""
_stopped = threading.Event()


def worker_id() -> str:
    """This process's id as a worker: what its claims and results name. Read per call, not at
    import: a prefork child imports nothing after the fork and must not pass for its parent."""
    return f"{_HOST}:{os.getpid()}"


def interval() -> float:
    from django.conf import settings

    return settings.HARRIER_HEARTBEAT_INTERVAL


def ttl() -> float:
    from django.conf import settings

    return settings.HARRIER_HEARTBEAT_TTL


def serve(groups: list[str] | tuple[str, ...]) -> None:
    """Say which groups this process's jobs come from (before a prefork pool forks, its children
    inherit it)."""
    global _groups
    _groups = tuple(sorted(set(groups)))


def start(group: str | None = None) -> None:
    """Start this process's heartbeat, once per process. `group` names the group when nothing
    told it before (a job arrived first)."""
    global _beating_pid, _since
    with _lock:
        if _beating_pid == os.getpid():
            return
        if not _groups:
            serve([group or messages.DEFAULT_WORKER_GROUP])
        _beating_pid = os.getpid()
        _stopped.clear()
        _since = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        beat()  # alive at once, not one interval later
        threading.Thread(target=_beat_forever, name="harrier-heartbeat", daemon=True).start()


def beat() -> None:
    info = {"host": _HOST, "pid": os.getpid(), "groups": list(_groups), "since": _since}
    get_claims().beat(worker_id(), orjson.dumps(info), ttl())


def _beat_forever() -> None:
    while not _stopped.wait(interval()):
        try:
            beat()
        except Exception:  # Redis may be restarting: the next beat may reach it (TTL > interval)
            logger.warning("worker heartbeat failed", exc_info=True)


def leave() -> None:
    """A worker stopping on purpose: no longer listed (its heartbeat expires by itself)."""
    global _beating_pid
    if _beating_pid != os.getpid():
        return
    _beating_pid = None
    _stopped.set()
    try:
        get_claims().forget_worker(worker_id())
    except Exception:
        logger.warning("could not unregister worker %s", worker_id(), exc_info=True)


def live_workers(group: str | None = None) -> list[dict[str, Any]]:
    """The worker processes alive now — serving `group` when given — each as {id, host, pid,
    groups, since}. An empty list for a group means a job of that group waits in its queue
    until a worker of the group starts; see `waiting_reason`."""
    from django.conf import settings

    if settings.HARRIER_BUS == "local":  # `server local`: this process serves every group
        return [{"id": worker_id(), "host": _HOST, "pid": os.getpid(),
                 "groups": [group or messages.DEFAULT_WORKER_GROUP], "since": None}]
    found = []
    for found_id, info in sorted(get_claims().live_workers().items()):
        details = orjson.loads(info)
        if group is None or group in details.get("groups", ()):
            found.append({"id": found_id, **details})
    return found


def waiting_reason(group: str | None) -> str | None:
    """Why a job of this group is not running, when the reason is that no worker serves it."""
    group = group or messages.DEFAULT_WORKER_GROUP
    if live_workers(group):
        return None
    return (f"no live worker serves worker group '{group}': the job waits in queue "
            f"{messages.worker_queue(group)} until one starts (server worker --worker-group {group})")


# --- Celery wiring (orchestrator/celery.py connects these) ------------------------------------

def on_worker_setup(instance) -> None:
    """A Celery worker has chosen its queues: note the worker groups among them, and start the
    heartbeat here unless a prefork pool runs the jobs in children (each starts its own)."""
    from celery.concurrency.prefork import TaskPool

    groups = [name[len(_WORKER_PREFIX):] for name in instance.app.amqp.queues.consume_from
              if name.startswith(_WORKER_PREFIX)]
    if not groups:
        return  # an executor, an indexer: no jobs here
    serve(groups)
    pool = instance.pool_cls if isinstance(instance.pool_cls, type) else type(instance.pool_cls)
    if not issubclass(pool, TaskPool):
        start()


def on_pool_child() -> None:
    if _groups:
        start()


def on_shutdown() -> None:
    leave()

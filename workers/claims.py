"""Claims on worker jobs, kept in the broker's Redis (never the database).

A job can arrive twice (a re-sent job, a redelivered message). The first worker to claim
`(task run, attempt)` runs it; a second copy sees the claim and is dropped. The executor's
reconciler reads claims to tell a lost job (unclaimed) from a running one, and the claim's
owner to tell a running one from one whose worker has died.

Worker heartbeats live here too (workers/liveness.py sends them): a key per worker process
that expires unless refreshed, a sorted set of the workers by their last heartbeat (Redis
time, so that the hosts' clocks do not matter), and per worker the set of attempts it runs.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

CLAIM_TTL_SECONDS = 7 * 24 * 3600


RESULT_TTL_SECONDS = 24 * 3600


def claim_key(task_run_id: str, attempt: int) -> str:
    return f"harrier:claim:{task_run_id}:{attempt}"


def poll_claim_key(evaluation_id: str) -> str:
    """A polling trigger's evaluation, taken by the first worker that gets a copy of its job."""
    return f"harrier:claim:poll:{evaluation_id}"


def result_key(task_run_id: str, attempt: int) -> str:
    return f"harrier:result:{task_run_id}:{attempt}"


def finished_key(execution_id: str) -> str:
    """The result keys an execution's workers have kept and no step has taken yet (take_finished)."""
    return f"harrier:finished:{execution_id}"


def kill_key(execution_id: str) -> str:
    return f"harrier:killed:{execution_id}"


KILL_TTL_SECONDS = 7 * 24 * 3600

WORKERS_KEY = "harrier:workers"
# The owner the executor writes into the claim of an attempt it has declared lost, so that no
# copy of that attempt runs any more (workers/runtime.py drops a job whose claim is taken).
LOST_OWNER = "lost"


def heartbeat_key(worker_id: str) -> str:
    return f"harrier:worker:{worker_id}"


def running_key(worker_id: str) -> str:
    return f"harrier:running:{worker_id}"


def running_entry(execution_id: str, task_run_id: str, attempt: int) -> str:
    return f"{execution_id} {task_run_id} {attempt}"


def parse_running_entry(entry: str) -> tuple[str, str, int]:
    execution_id, task_run_id, attempt = entry.split(" ")
    return execution_id, task_run_id, int(attempt)


class ClaimStore(Protocol):
    def claim(self, key: str, owner: str) -> bool: ...

    def is_claimed(self, key: str) -> bool: ...

    # A copy of each result, so that a result message lost on its way to the executor can be
    # sent again by the reconciler.
    def keep_result(self, key: str, body: bytes, execution_id: str | None = None) -> None:
        """Keep a result's message; with `execution_id`, also note it among the execution's
        finished results, which take_finished hands to the next step."""
        ...

    def take_finished(self, execution_id: str, count: int) -> list[bytes]:
        """At most `count` of the execution's kept results not taken yet, each taken once (a step
        that fails loses them; their own messages still come)."""
        ...

    def forget_finished(self, execution_id: str) -> None: ...  # the execution has ended

    def kept_result(self, key: str) -> bytes | None: ...

    def kept_results(self, keys: list[str]) -> list[bytes | None]: ...

    # Killed executions: workers stop their running attempts and drop their waiting jobs.
    def mark_killed(self, execution_id: str) -> None: ...

    def killed(self, execution_ids: set[str]) -> set[str]: ...

    def revive(self, execution_id: str) -> None: ...  # restarted: its jobs run again

    def claim_owners(self, keys: list[str]) -> list[str | None]: ...

    # Liveness: each worker process refreshes its heartbeat; one that stops is dead.
    def beat(self, worker_id: str, info: bytes, ttl: float) -> None: ...

    def alive(self, worker_ids: set[str]) -> set[str]: ...

    def live_workers(self) -> dict[str, bytes]: ...  # worker id -> what its heartbeat says

    def silent_workers(self, ttl: float) -> list[str]: ...  # no heartbeat for `ttl` seconds

    def forget_worker(self, worker_id: str) -> bool: ...  # True for the one caller that removed it

    # What each worker runs, so that a dead worker's attempts are found without a scan.
    def start_attempt(self, worker_id: str, entry: str) -> None: ...

    def end_attempt(self, worker_id: str, entry: str) -> None: ...

    def attempts_of(self, worker_id: str) -> list[str]: ...

    def drop_attempts(self, worker_id: str) -> None: ...


class RedisClaims:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def claim(self, key: str, owner: str) -> bool:
        return bool(self._redis.set(key, owner, nx=True, ex=CLAIM_TTL_SECONDS))

    def is_claimed(self, key: str) -> bool:
        return bool(self._redis.exists(key))

    def keep_result(self, key: str, body: bytes, execution_id: str | None = None) -> None:
        if execution_id is None:
            self._redis.set(key, body, ex=RESULT_TTL_SECONDS)
            return
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(key, body, ex=RESULT_TTL_SECONDS)
            pipe.sadd(finished_key(execution_id), key)
            pipe.expire(finished_key(execution_id), RESULT_TTL_SECONDS)
            pipe.execute()

    def take_finished(self, execution_id: str, count: int) -> list[bytes]:
        keys = self._redis.spop(finished_key(execution_id), count) or []
        return [body for body in self.kept_results([key.decode() for key in keys]) if body is not None]

    def forget_finished(self, execution_id: str) -> None:
        self._redis.delete(finished_key(execution_id))

    def kept_result(self, key: str) -> bytes | None:
        return self._redis.get(key)

    def kept_results(self, keys: list[str]) -> list[bytes | None]:
        found: list[bytes | None] = []
        for start in range(0, len(keys), 1000):  # bounded commands for a very wide step
            found += self._redis.mget(keys[start:start + 1000])
        return found

    def mark_killed(self, execution_id: str) -> None:
        self._redis.set(kill_key(execution_id), 1, ex=KILL_TTL_SECONDS)

    def revive(self, execution_id: str) -> None:
        self._redis.delete(kill_key(execution_id))

    def killed(self, execution_ids: set[str]) -> set[str]:
        ids = sorted(execution_ids)
        if not ids:
            return set()
        found = self._redis.mget([kill_key(execution_id) for execution_id in ids])
        return {execution_id for execution_id, value in zip(ids, found) if value is not None}

    def claim_owners(self, keys: list[str]) -> list[str | None]:
        return [None if owner is None else owner.decode() for owner in self.kept_results(keys)]

    def _time(self) -> float:
        seconds, micros = self._redis.time()
        return seconds + micros / 1e6

    def beat(self, worker_id: str, info: bytes, ttl: float) -> None:
        moment = self._time()
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(heartbeat_key(worker_id), info, px=int(ttl * 1000))
        pipe.zadd(WORKERS_KEY, {worker_id: moment})
        pipe.execute()

    def alive(self, worker_ids: set[str]) -> set[str]:
        ids = sorted(worker_ids)
        if not ids:
            return set()
        found = self._redis.mget([heartbeat_key(worker_id) for worker_id in ids])
        return {worker_id for worker_id, value in zip(ids, found) if value is not None}

    def live_workers(self) -> dict[str, bytes]:
        ids = [worker_id.decode() for worker_id in self._redis.zrange(WORKERS_KEY, 0, -1)]
        if not ids:
            return {}
        found = self._redis.mget([heartbeat_key(worker_id) for worker_id in ids])
        return {worker_id: info for worker_id, info in zip(ids, found) if info is not None}

    def silent_workers(self, ttl: float) -> list[str]:
        # The sorted set finds the candidates; the expired heartbeat key decides.
        candidates = {worker_id.decode() for worker_id in
                      self._redis.zrangebyscore(WORKERS_KEY, "-inf", self._time() - ttl)}
        return sorted(candidates - self.alive(candidates))

    def forget_worker(self, worker_id: str) -> bool:
        return self._redis.zrem(WORKERS_KEY, worker_id) == 1

    def start_attempt(self, worker_id: str, entry: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(running_key(worker_id), entry)
        pipe.expire(running_key(worker_id), CLAIM_TTL_SECONDS)
        pipe.execute()

    def end_attempt(self, worker_id: str, entry: str) -> None:
        self._redis.srem(running_key(worker_id), entry)

    def attempts_of(self, worker_id: str) -> list[str]:
        return sorted(entry.decode() for entry in self._redis.smembers(running_key(worker_id)))

    def drop_attempts(self, worker_id: str) -> None:
        self._redis.delete(running_key(worker_id))


class MemoryClaims:
    """For the in-process bus of `server local` and `flow run`. Workers there are threads of
    the one process: whoever asks is alive with them, so every worker counts as alive."""

    def __init__(self) -> None:
        self._claims: dict[str, tuple[str, float]] = {}
        self._results: dict[str, bytes] = {}
        self._killed: set[str] = set()
        self._beats: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def claim(self, key: str, owner: str) -> bool:
        with self._lock:
            if key in self._claims:
                return False
            self._claims[key] = (owner, time.monotonic())
            return True

    def is_claimed(self, key: str) -> bool:
        with self._lock:
            return key in self._claims

    def keep_result(self, key: str, body: bytes, execution_id: str | None = None) -> None:
        with self._lock:
            self._results[key] = body

    def take_finished(self, execution_id: str, count: int) -> list[bytes]:
        # Only a step over part of an execution takes them (PostgreSQL); `server local` runs on
        # SQLite, whose steps find the kept results of their execution's task runs themselves.
        return []

    def forget_finished(self, execution_id: str) -> None:
        pass

    def kept_result(self, key: str) -> bytes | None:
        with self._lock:
            return self._results.get(key)

    def kept_results(self, keys: list[str]) -> list[bytes | None]:
        with self._lock:
            return [self._results.get(key) for key in keys]

    def mark_killed(self, execution_id: str) -> None:
        with self._lock:
            self._killed.add(execution_id)

    def killed(self, execution_ids: set[str]) -> set[str]:
        with self._lock:
            return execution_ids & self._killed

    def revive(self, execution_id: str) -> None:
        with self._lock:
            self._killed.discard(execution_id)

    def claim_owners(self, keys: list[str]) -> list[str | None]:
        with self._lock:
            return [self._claims[key][0] if key in self._claims else None for key in keys]

    def beat(self, worker_id: str, info: bytes, ttl: float) -> None:
        with self._lock:
            self._beats[worker_id] = info

    def alive(self, worker_ids: set[str]) -> set[str]:
        return set(worker_ids)

    def live_workers(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._beats)

    def silent_workers(self, ttl: float) -> list[str]:
        return []

    def forget_worker(self, worker_id: str) -> bool:
        return False

    def start_attempt(self, worker_id: str, entry: str) -> None:
        pass

    def end_attempt(self, worker_id: str, entry: str) -> None:
        pass

    def attempts_of(self, worker_id: str) -> list[str]:
        return []

    def drop_attempts(self, worker_id: str) -> None:
        pass


_store: ClaimStore | None = None


def get_claims() -> ClaimStore:
    global _store
    if _store is None:
        from django.conf import settings

        if settings.HARRIER_BUS == "local" or not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
            _store = MemoryClaims()
        else:
            _store = RedisClaims(settings.CELERY_BROKER_URL)
    return _store


def set_claims(store: ClaimStore | None) -> None:
    global _store
    _store = store

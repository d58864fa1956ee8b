"""Claims on worker jobs, kept in the broker's Redis (never the database).

A job can arrive twice (a re-sent job, a redelivered message). The first worker to claim
`(task run, attempt)` runs it; a second copy sees the claim and is dropped. The executor's
reconciler reads claims to tell a lost job (unclaimed) from a running one.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

CLAIM_TTL_SECONDS = 7 * 24 * 3600


RESULT_TTL_SECONDS = 24 * 3600


def claim_key(task_run_id: str, attempt: int) -> str:
    return f"harrier:claim:{task_run_id}:{attempt}"


def result_key(task_run_id: str, attempt: int) -> str:
    return f"harrier:result:{task_run_id}:{attempt}"


def kill_key(execution_id: str) -> str:
    return f"harrier:killed:{execution_id}"


KILL_TTL_SECONDS = 7 * 24 * 3600


class ClaimStore(Protocol):
    def claim(self, key: str, owner: str) -> bool: ...

    def is_claimed(self, key: str) -> bool: ...

    # A copy of each result, so that a result message lost on its way to the executor can be
    # sent again by the reconciler.
    def keep_result(self, key: str, body: bytes) -> None: ...

    def kept_result(self, key: str) -> bytes | None: ...

    def kept_results(self, keys: list[str]) -> list[bytes | None]: ...

    # Killed executions: workers stop their running attempts and drop their waiting jobs.
    def mark_killed(self, execution_id: str) -> None: ...

    def killed(self, execution_ids: set[str]) -> set[str]: ...

    def revive(self, execution_id: str) -> None: ...  # restarted: its jobs run again


class RedisClaims:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def claim(self, key: str, owner: str) -> bool:
        return bool(self._redis.set(key, owner, nx=True, ex=CLAIM_TTL_SECONDS))

    def is_claimed(self, key: str) -> bool:
        return bool(self._redis.exists(key))

    def keep_result(self, key: str, body: bytes) -> None:
        self._redis.set(key, body, ex=RESULT_TTL_SECONDS)

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


class MemoryClaims:
    """For the in-process bus of `server local` and `flow run`."""

    def __init__(self) -> None:
        self._claims: dict[str, tuple[str, float]] = {}
        self._results: dict[str, bytes] = {}
        self._killed: set[str] = set()
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

    def keep_result(self, key: str, body: bytes) -> None:
        with self._lock:
            self._results[key] = body

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

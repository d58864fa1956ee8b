"""Watching attempts on a worker: stopping them when they outlive their task's `timeout` or
their execution is killed, and saying they run once they outlast one round (so that the task
run shows RUNNING; quick tasks send nothing).

One thread per worker process looks at the attempts running there every WATCH_INTERVAL
seconds: it asks the attempt to stop (`RunContext.stop`) when its deadline has passed or its
execution is marked killed in the claim store (one Redis round trip for all of them). A task
ends early when it waits on `RunContext.stop_requested` (Sleep) or runs a process (scripts,
which are terminated); pure-Python work that never looks finishes on its own, and its result is
then judged as the stop says (FAILED for a timeout, KILLED for a kill).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

from workers.claims import get_claims

logger = logging.getLogger("harrier.worker")

WATCH_INTERVAL = 0.25

TIMEOUT = "timeout"
KILLED = "killed"


class Watch:
    def __init__(self, interval: float = WATCH_INTERVAL) -> None:
        self._interval = interval
        self._tracked: dict[int, tuple[object, str, float | None]] = {}
        self._started: dict[int, float] = {}
        self._announced: set[int] = set()
        self._ids = itertools.count()
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    def track(self, ctx, execution_id: str, timeout: float | None) -> int:
        deadline = time.monotonic() + timeout if timeout is not None else None
        with self._lock:
            token = next(self._ids)
            self._tracked[token] = (ctx, execution_id, deadline)
            self._started[token] = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="harrier-watch", daemon=True)
                self._thread.start()
            self._lock.notify()
        return token

    def untrack(self, token: int) -> None:
        with self._lock:
            self._tracked.pop(token, None)
            self._started.pop(token, None)
            self._announced.discard(token)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._tracked:
                    self._lock.wait()
                tracked = list(self._tracked.values())
                due = [(token, self._tracked[token][0]) for token, started in self._started.items()
                       if token not in self._announced and time.monotonic() - started >= self._interval]
                self._announced.update(token for token, _ in due)
            try:
                self.announce([ctx for _, ctx in due])
                self.check(tracked)
            except Exception:  # the claim store may be restarting: look again next round
                logger.exception("watching running attempts failed")
            time.sleep(self._interval)

    @staticmethod
    def announce(contexts: list) -> None:
        """Tell the indexer these attempts are running (they outlasted one watch interval)."""
        from orchestrator import bus, messages

        for ctx in contexts:
            job = ctx.job
            bus.publish(messages.INDEXER_QUEUE, messages.RUNNING_TASK, {
                "executionId": job["executionId"], "taskRunId": job["taskRunId"], "attempt": job["attempt"],
                "startDate": ctx.started,
            })

    @staticmethod
    def check(tracked: list[tuple[object, str, float | None]]) -> None:
        now = time.monotonic()
        for ctx, _, deadline in tracked:
            if deadline is not None and now >= deadline:
                ctx.stop(TIMEOUT)
        killed = get_claims().killed({execution_id for _, execution_id, _ in tracked})
        for ctx, execution_id, _ in tracked:
            if execution_id in killed:
                ctx.stop(KILLED)


watch = Watch()

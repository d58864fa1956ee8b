"""What a running task sees: its rendered context, a logger that ships to the indexer, and the
way to end as WARNING. Created per attempt by the worker runtime."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from orchestrator import messages
from orchestrator.templating import render_value
from workers.environment import ambient
from workers.files import WorkerHooks
from workers.ids import new_id

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
_LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
LEVEL_ALIASES = {"WARNING": "WARN"}


def iso_now() -> str:
    moment = datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TaskFailure(Exception):
    """Raised by a task to end its attempt FAILED with a message for the user."""


class RunContext:
    def __init__(self, job: messages.WorkerJob, emit: Callable[[list[messages.LogRecord]], None]) -> None:
        self.job = job
        self.variables: dict[str, Any] = {**job["context"], **ambient()}
        self.hooks = WorkerHooks(job)  # secrets, and the functions that read the internal storage
        self._inputs_revealed = False
        self._emit = emit
        self._buffer: list[messages.LogRecord] = []
        self._lock = threading.Lock()
        self.min_level = _LEVEL_RANK.get(job["task"].get("logLevel") or "TRACE", 0)
        self.warning = False  # a task sets this to end as WARNING
        self.labels: list[dict[str, str]] = []  # labels to set on the execution
        self.stop_requested = threading.Event()
        self.started = iso_now()  # when the attempt started, for the RUNNING notice
        self.stop_reason: str | None = None  # "timeout" or "killed", once asked to stop
        # Inside a WorkingDirectory (workers/working_directory.py): the directory its tasks share,
        # the results of those that ran, and the one running now (stopped with this attempt).
        self.directory: Path | None = None
        self.children: list[messages.ChildResult] = []
        self._child: RunContext | None = None

    def stop(self, reason: str) -> None:
        """Ask the running task to end now (workers/watch.py); the first reason given stays."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            child = self._child
        self.stop_requested.set()
        if child is not None:
            child.stop(reason)

    def child(self, job: messages.WorkerJob) -> "RunContext":
        """The context of a task run this attempt runs itself (a WorkingDirectory's task): the
        same log stream and directory; stopping this attempt stops it."""
        child = RunContext(job, self._emit)
        child.directory = self.directory
        with self._lock:
            self._child = child
            reason = self.stop_reason
        if reason is not None:
            child.stop(reason)
        return child

    def render(self, value: Any) -> Any:
        if not self._inputs_revealed:
            # SECRET inputs travel encrypted; decrypted here, at the first rendering, so that a
            # key that does not match fails the attempt with the reason.
            self.variables["inputs"] = self.hooks.reveal(self.variables.get("inputs") or {})
            self._inputs_revealed = True
        return render_value(value, self.variables, hooks=self.hooks)

    def log(self, level: str, message: str) -> None:
        level = LEVEL_ALIASES.get(level.upper(), level.upper())
        if _LEVEL_RANK.get(level, 2) < self.min_level:
            return
        message = self.hooks.mask(message)
        record: messages.LogRecord = {
            "id": new_id(),
            "executionId": self.job["executionId"],
            "namespace": self.job["namespace"],
            "flowId": self.job["flowId"],
            "taskId": self.job["task"]["id"],
            "taskRunId": self.job["taskRunId"],
            "attempt": self.job["attempt"],
            "level": level,
            "message": message,
            "timestamp": iso_now(),
        }
        with self._lock:
            self._buffer.append(record)
            full = len(self._buffer) >= 500
        if full:
            self.flush_logs()

    def flush_logs(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if batch:
            self._emit(batch)

    def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the attempt is asked to stop."""
        self.stop_requested.wait(seconds)

"""Following an execution and its log lines over server-sent events, as Kestra's
`GET /api/v1/executions/{executionId}/follow` and `GET /api/v1/logs/{executionId}/follow`.

How it scales (docs/api.md, "Following an execution"):

- One `ChangeWatch` thread per server process notices changes for every open stream at once:
  each tick runs one query per kind — the followed executions' `updated` and state, the number
  of their task runs RUNNING (a worker's start notice changes no execution row), and for
  executions whose logs are followed the number of their lines — however many clients follow.
  A tick comes when a change notice (orchestrator/notify.py: the executor and the indexer send
  them after commit, over Redis pub/sub between processes) names a followed execution, and
  otherwise every HARRIER_FOLLOW_POLL_SECONDS, in case a notice was lost. A stream reads the
  repository only when its execution changed, and gives its database connection back after
  each read.
- A stream sends a keep-alive comment when nothing happened for HARRIER_FOLLOW_KEEPALIVE_SECONDS
  (proxies keep the connection; a client that left is noticed at that write, which ends the
  stream), and ends after HARRIER_FOLLOW_MAX_SECONDS (the client reconnects).
- The WSGI servers give each open stream a thread. HARRIER_FOLLOW_MAX_STREAMS bounds the streams
  of one process, below its thread count, so that followers never starve the rest of the API:
  a stream over the bound is refused with 503 and Retry-After.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Callable, Iterator

import orjson
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema

from orchestrator import notify
from orchestrator.api.base import ERRORS
from orchestrator.api.errors import ApiError
from orchestrator.api.files import ExecutionReader, ExecutionWordView, readable_execution
from orchestrator.api.serializers import Error
from orchestrator.kestra_json import execution_json, log_json
from orchestrator.models import Execution, LogEntry, TaskRun
from orchestrator.states import State

logger = logging.getLogger("harrier.follow")
# After a change notice, the watch waits this long before it looks, so that a burst of notices
# (a step of the executor, then the lines it logged) is one look.
NOTICE_BURST = 0.05
# A line may be stored after lines logged later than it (workers send batches): each read looks
# this far back before the newest line already sent.
LATE_LINES = timedelta(seconds=30)
LINES_PER_READ = 2000
SSE_RESPONSES = {(200, "text/event-stream"): OpenApiTypes.STR, **ERRORS, 503: Error}


class ChangeWatch:
    """Notices changes of the executions open streams follow, for the whole process."""

    def __init__(self, interval: float, run_thread: bool = True) -> None:
        self.interval = interval
        self._run_thread = run_thread
        self._changed = threading.Condition()
        self._followers: dict[tuple[str, bool], int] = {}  # (execution id, with logs) → streams
        self._marks: dict[str, tuple] = {}
        self._versions: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def follow(self, execution_id: str, logs: bool) -> int:
        """Register a stream; returns the execution's version to wait from."""
        with self._changed:
            key = (execution_id, logs)
            self._followers[key] = self._followers.get(key, 0) + 1
            if self._thread is None and self._run_thread:
                self._thread = threading.Thread(target=self._run, name="harrier-follow-watch", daemon=True)
                self._thread.start()
            return self._versions.get(execution_id, 0)

    def unfollow(self, execution_id: str, logs: bool) -> None:
        with self._changed:
            key = (execution_id, logs)
            self._followers[key] -= 1
            if not self._followers[key]:
                del self._followers[key]
            if not any(followed == execution_id for followed, _ in self._followers):
                self._marks.pop(execution_id, None)
                self._versions.pop(execution_id, None)

    def wait(self, execution_id: str, seen: int, timeout: float) -> int:
        """Block until the execution changed after version `seen`, or `timeout` passed; returns
        its version then."""
        with self._changed:
            self._changed.wait_for(lambda: self._versions.get(execution_id, 0) != seen, timeout)
            return self._versions.get(execution_id, 0)

    def tick(self) -> set[str]:
        """One look at every followed execution; returns those that changed (and wakes their
        streams). An execution seen for the first time counts as changed, as its stream may have
        read it just before."""
        with self._changed:
            followed = {execution_id for execution_id, _ in self._followers}
            with_logs = {execution_id for execution_id, logs in self._followers if logs}
        marks = _fingerprints(followed, with_logs)
        with self._changed:
            still = {execution_id for execution_id, _ in self._followers}  # some may have left meanwhile
            changed = {execution_id for execution_id, mark in marks.items()
                       if execution_id in still and self._marks.get(execution_id) != mark}
            for execution_id in changed:
                self._marks[execution_id] = marks[execution_id]
                self._versions[execution_id] = self._versions.get(execution_id, 0) + 1
            if changed:
                self._changed.notify_all()
        return changed

    def notice(self, execution_ids: list[str]) -> None:
        """A change notice: look at once if it names a followed execution."""
        with self._changed:
            followed = {execution_id for execution_id, _ in self._followers}
        if followed.intersection(execution_ids):
            self._wake.set()

    def _run(self) -> None:
        stop = threading.Event()
        notify.listen(self.notice)
        self._subscribe(stop)
        try:
            while True:
                with self._changed:
                    if not self._followers:
                        self._thread = None
                        return
                # Cleared before the tick: a notice during it brings the next one at once.
                self._wake.clear()
                try:
                    self.tick()
                except Exception:  # the database went away: reconnect at the next tick
                    connection.close()
                if self._wake.wait(self.interval):
                    time.sleep(NOTICE_BURST)
        finally:
            stop.set()
            notify.forget(self.notice)
            connection.close()

    def _subscribe(self, stop: threading.Event) -> None:
        """Receive the notices of other processes (Redis pub/sub) until `stop` is set."""
        client = notify.redis_client()
        if client is None:
            return

        def receive() -> None:
            while not stop.is_set():
                try:
                    with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                        pubsub.subscribe(notify.channel(client))
                        while not stop.is_set():
                            message = pubsub.get_message(timeout=1.0)
                            if message:
                                self.notice(notify.decode(message["data"]))
                except Exception as error:  # Redis away: polling goes on; subscribe again soon
                    logger.warning("change notices not received (%s): streams poll meanwhile", error)
                    stop.wait(5)

        threading.Thread(target=receive, name="harrier-follow-notices", daemon=True).start()


def _fingerprints(followed: set[str], with_logs: set[str]) -> dict[str, tuple]:
    """What changes when an execution moves on, for each execution (missing when deleted)."""
    if not followed:
        return {}
    rows = Execution.objects.filter(id__in=followed).values_list("id", "updated", "state")
    running = dict(TaskRun.objects.filter(execution_id__in=followed, state=State.RUNNING.value)
                   .values("execution_id").annotate(n=Count("id")).values_list("execution_id", "n"))
    lines = dict(LogEntry.objects.filter(execution_id__in=with_logs).values("execution_id")
                 .annotate(n=Count("id")).values_list("execution_id", "n")) if with_logs else {}
    return {execution_id: (updated, state, running.get(execution_id, 0), lines.get(execution_id, 0))
            for execution_id, updated, state in rows}


_watch: ChangeWatch | None = None
_slots: threading.BoundedSemaphore | None = None
_setup = threading.Lock()


def watch() -> ChangeWatch:
    global _watch
    with _setup:
        if _watch is None:
            _watch = ChangeWatch(settings.HARRIER_FOLLOW_POLL_SECONDS)
        return _watch


def take_slot() -> threading.BoundedSemaphore:
    """A stream's place among this process's HARRIER_FOLLOW_MAX_STREAMS; 503 when none is free."""
    global _slots
    with _setup:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings.HARRIER_FOLLOW_MAX_STREAMS)
        slots = _slots
    if not slots.acquire(blocking=False):
        error = ApiError(f"This server process already serves {settings.HARRIER_FOLLOW_MAX_STREAMS} followed "
                         "streams (HARRIER_FOLLOW_MAX_STREAMS): retry later, or poll GET /api/v1/executions/{id}",
                         503)
        error.wait = settings.HARRIER_FOLLOW_KEEPALIVE_SECONDS
        raise error
    return slots


def event(name: str, data: dict) -> bytes:
    """One server-sent event: Kestra names its events by `id` (`progress`, `end`)."""
    return b"id: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


KEEP_ALIVE = b": keep-alive\n\n"


class EventStream:
    """A stream's events, and what it holds released when the server closes the response —
    also when the client left before the first event (a generator not started would never run
    its `finally`)."""

    def __init__(self, execution_id: str, logs: bool, events: Callable[[ChangeWatch, int], Iterator[bytes]]) -> None:
        self._slots = take_slot()
        self._watch = watch()
        self._execution_id, self._logs = execution_id, logs
        self._version = self._watch.follow(execution_id, logs)
        self._events = events(self._watch, self._version)
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._events.close()
        self._watch.unfollow(self._execution_id, self._logs)
        self._slots.release()


def _released(read: Callable[[], object]) -> object:
    """A read of the repository that gives the thread's connection back afterwards: a stream
    waits far longer than it reads."""
    try:
        return read()
    finally:
        connection.close()


def execution_events(execution_id: str) -> Callable[[ChangeWatch, int], Iterator[bytes]]:
    def events(changes: ChangeWatch, version: int) -> Iterator[bytes]:
        deadline = time.monotonic() + settings.HARRIER_FOLLOW_MAX_SECONDS
        while True:
            body = _released(lambda: _execution_body(execution_id))
            if body is None:  # deleted meanwhile
                return
            ended = State(body["state"]["current"]).is_terminal
            yield event("end" if ended else "progress", body)
            if ended:
                return
            version = yield from _until_change(changes, execution_id, version, deadline)
            if version is None:
                return
    return events


def _execution_body(execution_id: str) -> dict | None:
    execution = Execution.objects.filter(id=execution_id).first()
    return None if execution is None else execution_json(execution, execution.task_runs.order_by("seq"))


def _until_change(changes: ChangeWatch, execution_id: str, version: int, deadline: float) -> Iterator[bytes]:
    """Keep-alive comments until the execution changes (returns its version) or the stream's
    lifetime is over (returns None)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        current = changes.wait(execution_id, version, min(settings.HARRIER_FOLLOW_KEEPALIVE_SECONDS, remaining))
        if current != version:
            return current
        yield KEEP_ALIVE


def log_events(execution_id: str) -> Callable[[ChangeWatch, int], Iterator[bytes]]:
    """Every line as an event, in order of time, until the execution ended and no line came for
    HARRIER_FOLLOW_LOG_GRACE_SECONDS (the indexer stores lines apart from the executor)."""
    def events(changes: ChangeWatch, version: int) -> Iterator[bytes]:
        deadline = time.monotonic() + settings.HARRIER_FOLLOW_MAX_SECONDS
        cursor = LogCursor(execution_id)
        ended_at = None
        while True:
            state = _released(cursor.state)
            yield from cursor.events()
            if state is None or State(state).is_terminal:
                ended_at = ended_at or time.monotonic()
                limit = min(deadline, ended_at + settings.HARRIER_FOLLOW_LOG_GRACE_SECONDS)
            else:
                limit = deadline
            version = yield from _until_change(changes, execution_id, version, limit)
            if version is None:
                if ended_at is not None:  # a last look: a line stored since the last tick
                    yield from cursor.events()
                return
    return events


class LogCursor:
    """Which lines of an execution a stream sent. Lines are read from shortly before the newest
    one sent (LATE_LINES), and those already sent are left out."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.sent: set[str] = set()
        self.newest: datetime | None = None

    def state(self) -> str | None:
        """The execution's state (None when it was deleted)."""
        return Execution.objects.filter(id=self.execution_id).values_list("state", flat=True).first()

    def events(self) -> Iterator[bytes]:
        """An event for each line not sent yet, in order of time, read in pieces (an execution's
        first read may hold many lines); the database connection is given back afterwards."""
        lines = LogEntry.objects.filter(execution_id=self.execution_id)
        if self.newest is not None:
            lines = lines.filter(timestamp__gte=self.newest - LATE_LINES)
        try:
            for line in lines.order_by("timestamp", "id").iterator(chunk_size=LINES_PER_READ):
                if line.id not in self.sent:
                    self.sent.add(line.id)
                    self.newest = line.timestamp if self.newest is None else max(self.newest, line.timestamp)
                    yield event("progress", log_json(line))
        finally:
            connection.close()


def sse_response(stream: EventStream) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


class ExecutionFollow(ExecutionWordView):
    word = "follow"

    @extend_schema(operation_id="followExecution", tags=["Executions"], responses=SSE_RESPONSES,
                   summary="The execution (as GET /executions/{executionId}) at every change, as server-sent "
                           "events, until it ends: `id: progress` events, then one `id: end`")
    def get(self, request, execution_id: str):
        readable_execution(request, execution_id)
        return sse_response(EventStream(execution_id, False, execution_events(execution_id)))


class LogFollow(ExecutionReader):

    @extend_schema(operation_id="followLogsFromExecution", tags=["Logs"], responses=SSE_RESPONSES,
                   summary="The log lines of an execution as server-sent events (`id: progress`), those already "
                           "stored first, until the execution ended")
    def get(self, request, execution_id: str):
        readable_execution(request, execution_id)
        return sse_response(EventStream(execution_id, True, log_events(execution_id)))

"""How components send each other messages: Celery over the broker, or in-process queues.

`server standalone` and the single-component servers use Celery. `server local` and
`flow run` use `LocalBus`: the same consumers, fed by threads in this process, so that a new
user needs no Redis. Messages go through a JSON round trip either way, so nothing that works
locally can depend on sharing Python objects.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Iterable, Protocol

import orjson

logger = logging.getLogger("harrier.bus")


class Bus(Protocol):
    def publish(self, queue_name: str, task_name: str, payload: Any) -> None: ...


class CeleryBus:
    def publish(self, queue_name: str, task_name: str, payload: Any) -> None:
        from orchestrator.celery import app

        app.send_task(task_name, args=[payload], queue=queue_name)

    def publish_all(self, batch: Iterable[tuple[str, str, Any]]) -> None:
        """Publish several messages over one producer, with one round trip to Redis for the lot.

        kombu's publish batch builds each message exactly as `publish` would and sends them in
        one pipeline; a broker other than Redis sends them one by one. A batch that fails is
        sent again message by message, with Celery's retries: a consumer drops the copy of a
        message that was delivered before the failure, so duplicates are harmless and nothing
        is lost."""
        from orchestrator.celery import app

        messages = list(batch)
        try:
            with app.producer_or_acquire() as producer, producer.batch(max_size=max(len(messages), 1)):
                self._send_each(app, producer, messages)
        except Exception:
            logger.warning("publishing %d messages in one batch failed; sending them one by one",
                           len(messages), exc_info=True)
            with app.producer_or_acquire() as producer:
                self._send_each(app, producer, messages)

    @staticmethod
    def _send_each(app: Any, producer: Any, messages: list[tuple[str, str, Any]]) -> None:
        for queue_name, task_name, payload in messages:
            app.send_task(task_name, args=[payload], queue=queue_name, producer=producer)

    def backlog(self, queue_name: str) -> int:
        """Messages waiting in a queue that no consumer has taken yet (0 for a queue the broker
        does not hold: it never had a message, or all were taken)."""
        from kombu.exceptions import ChannelError

        from orchestrator.celery import app

        with app.connection_for_read() as connection:
            try:
                return connection.default_channel.queue_declare(queue=queue_name, passive=True).message_count
            except ChannelError:
                return 0


Handler = Callable[[Any], None]


class LocalBus:
    """In-process queues, each drained by its own threads."""

    def __init__(self, handlers: dict[str, Handler], threads: dict[str, int] | None = None,
                 default_threads: int = 1) -> None:
        self._handlers = handlers
        self._threads = threads or {}
        self._default_threads = default_threads
        self._queues: dict[str, queue.Queue] = {}
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = False

    def publish(self, queue_name: str, task_name: str, payload: Any) -> None:
        body = orjson.dumps(payload)
        with self._lock:
            q = self._queues.get(queue_name)
            if q is None:
                q = self._queues[queue_name] = queue.Queue()
                for index in range(self._threads.get(queue_name, self._default_threads)):
                    threading.Thread(
                        target=self._consume, args=(q,), name=f"harrier-{queue_name}-{index}", daemon=True
                    ).start()
            self._busy += 1
        q.put((task_name, body))

    def backlog(self, queue_name: str) -> int:
        q = self._queues.get(queue_name)
        return q.qsize() if q is not None else 0

    def _consume(self, q: queue.Queue) -> None:
        while True:
            task_name, body = q.get()
            try:
                handler = self._handlers[task_name]
                handler(orjson.loads(body))
            except Exception:  # a consumer's failure must not stop the queue
                logger.exception("message %s failed", task_name)
            finally:
                with self._lock:
                    self._busy -= 1
                    if self._busy == 0:
                        self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every published message has been handled (True) or time is up."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True


_bus: Bus | None = None


def get_bus() -> Bus:
    global _bus
    if _bus is None:
        _bus = CeleryBus()
    return _bus


def set_bus(bus: Bus | None) -> None:
    global _bus
    _bus = bus


def publish(queue_name: str, task_name: str, payload: Any) -> None:
    get_bus().publish(queue_name, task_name, payload)


def publish_all(batch: Iterable[tuple[str, str, Any]]) -> None:
    """Publish (queue, task, payload) messages in order, over one connection when the bus can."""
    current = get_bus()
    send_all = getattr(current, "publish_all", None)
    if send_all is not None:
        send_all(batch)
        return
    for queue_name, task_name, payload in batch:
        current.publish(queue_name, task_name, payload)


def backlog(queue_name: str) -> int:
    """Messages waiting in a queue, not yet taken by a consumer; 0 from a bus that cannot tell."""
    measure = getattr(get_bus(), "backlog", None)
    return measure(queue_name) if measure is not None else 0


def local_bus(worker_threads: int = 4) -> LocalBus:
    """A LocalBus wired to Harrier's consumers."""
    from executor.service import handle_message
    from orchestrator.indexer import ingest_logs, mark_running
    from scheduler.polling import apply_result
    from workers.polling import handle_poll
    from workers.runtime import handle_job

    return LocalBus(
        handlers={
            "harrier.executor.process": handle_message,
            "harrier.worker.run": handle_job,
            "harrier.indexer.ingest": ingest_logs,
            "harrier.indexer.running": mark_running,
            "harrier.worker.poll": handle_poll,
            "harrier.scheduler.polled": apply_result,
        },
        threads={"executor": 1, "indexer": 1},
        default_threads=worker_threads,
    )

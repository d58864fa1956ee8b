"""Change notices: "these executions changed", sent after commit by whoever changes an execution
(the executor's store) or stores its log lines (the indexer), so that the webserver's followed
streams (orchestrator/api/follow.py) look at once rather than at their next poll.

A notice is a hint, never the truth: PostgreSQL is. A lost notice delays a stream until the next
poll (HARRIER_FOLLOW_POLL_SECONDS), nothing more, so notices are sent without retry and a failure
to send one never fails the change that caused it.

Within one process (`server local`, where the executor and indexer are threads) notices go to
the listeners registered here. Between processes they go over Redis pub/sub on the broker's
Redis, on a channel named after its database number (pub/sub channels are shared by every
database of a Redis server).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Iterable

import orjson

logger = logging.getLogger("harrier.notify")

Listener = Callable[[list[str]], None]
_listeners: list[Listener] = []
_client: tuple[int, object] | None = None
_lock = threading.Lock()


def listen(listener: Listener) -> None:
    """Call `listener` with the ids of each notice sent in this process."""
    _listeners.append(listener)


def forget(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def changed(execution_ids: Iterable[str]) -> None:
    """Tell followers that these executions changed (call it after the change is committed)."""
    ids = list(dict.fromkeys(execution_ids))
    if not ids:
        return
    for listener in list(_listeners):
        listener(ids)
    client = redis_client()
    if client is None:
        return
    try:
        client.publish(channel(client), orjson.dumps(ids))
    except Exception as error:  # a hint: never fail the change itself
        logger.debug("change notice not sent: %s", error)


def redis_client():
    """The broker's Redis, when messages travel through it (not under `server local`), one
    client per process; None otherwise."""
    global _client
    from orchestrator.bus import CeleryBus, get_bus

    if not isinstance(get_bus(), CeleryBus):
        return None
    current = _client
    if current is not None and current[0] == os.getpid():
        return current[1]
    with _lock:
        if _client is None or _client[0] != os.getpid():
            from django.conf import settings

            url = settings.CELERY_BROKER_URL
            if not url.startswith(("redis://", "rediss://", "unix://")):
                return None
            import redis

            _client = (os.getpid(), redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))
        return _client[1]


def channel(client) -> str:
    return f"harrier.changed.{client.connection_pool.connection_kwargs.get('db', 0)}"


def decode(data: bytes) -> list[str]:
    """The ids of a notice read from the channel (nothing when it is not one)."""
    try:
        ids = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    return [value for value in ids if isinstance(value, str)] if isinstance(ids, list) else []

"""Fixtures of the integration tests that drive the executor's steps by hand."""

from __future__ import annotations

import pytest


class QueueBus:
    """Keeps messages per queue, as a broker would hold them until a consumer takes them."""

    def __init__(self):
        self.queues: dict[str, list] = {}

    def publish(self, queue_name, task_name, payload):
        self.queues.setdefault(queue_name, []).append(payload)

    def backlog(self, queue_name):
        return len(self.queues.get(queue_name, []))

    def take(self, queue_name):
        return self.queues.pop(queue_name, [])


@pytest.fixture
def queues():
    """A bus that keeps what the executor publishes, and claims kept in memory."""
    from orchestrator import bus
    from workers.claims import MemoryClaims, set_claims

    keeping = QueueBus()
    bus.set_bus(keeping)
    set_claims(MemoryClaims())
    yield keeping
    bus.set_bus(None)
    set_claims(None)

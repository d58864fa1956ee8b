"""Fixtures shared by the integration tests: API clients, and a bus for driving the executor's
steps by hand."""

from __future__ import annotations

import base64
import json
import os

import pytest
from rest_framework.test import APIClient


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


@pytest.fixture
def staff(django_user_model):
    """An API client of a staff user, by token."""
    from rest_framework.authtoken.models import Token

    user = django_user_model.objects.create_user("ops", password="ops-password-1", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def reader(django_user_model):
    """An API client of a user with no grant, by basic authentication."""
    django_user_model.objects.create_user("viewer", password="viewer-password-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"viewer:viewer-password-1").decode())
    return client


def _executor_idle(client) -> bool:
    """No executor message waiting or being handled (Celery acks them late: those in hand stay in
    kombu's `unacked` hash until done)."""
    from orchestrator.messages import EXECUTOR_QUEUE

    for key in client.scan_iter(match=f"{EXECUTOR_QUEUE}*", _type="list"):
        if client.llen(key):
            return False
    for raw in client.hvals("unacked"):
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key == EXECUTOR_QUEUE:
            return False
    return True


@pytest.fixture(autouse=True)
def _executor_settled(request):
    """After a test that ran the cluster, let the executor finish the messages it still has (a
    subflow execution's end wakes a parent that has ended) before the database is emptied: the
    emptying locks every table in turn and would deadlock with a step holding an execution's row."""
    yield
    if "cluster" not in request.fixturenames:
        return
    import redis

    from tests.harness import wait_for

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    try:
        wait_for(lambda: _executor_idle(client), 10, "the executor to finish its messages", interval=0.05)
    except AssertionError:
        pass  # still busy (a test left executions running): empty the database anyway

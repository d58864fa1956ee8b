"""Test configuration: the real PostgreSQL and Redis of this machine, started if they are down.
(tests/settings.py points Harrier at them.) Unit tests (tests/unit) need neither. Integration tests use pytest-django's test database on
PostgreSQL and real Celery processes started by the `cluster` fixture (tests/integration).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:g}s")
        time.sleep(0.2)


def ensure_services() -> None:
    """Start PostgreSQL and Redis with the commands ARCHITECTURE.md gives, if they are down."""
    if not _reachable(PG_HOST, PG_PORT) and shutil.which("pg_ctlcluster"):
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
        _wait_until(lambda: _reachable(PG_HOST, PG_PORT), 60, "PostgreSQL")
    if not _reachable(REDIS_HOST, REDIS_PORT) and shutil.which("redis-server"):
        Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(REDIS_PORT),
             "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
            check=False,
        )
        _wait_until(lambda: _reachable(REDIS_HOST, REDIS_PORT), 30, "Redis")


def pytest_configure(config: pytest.Config) -> None:
    ensure_services()


TEST_SECRET = "s3cr3t-Token-value"


@pytest.fixture(scope="session")
def cluster(django_db_setup, django_db_blocker):
    """An executor, a default-group worker and an indexer as real processes, for the session."""
    import redis

    from tests.harness import Cluster, database_url

    (ROOT / ".harrier").mkdir(exist_ok=True)
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    env = {**os.environ, "DATABASE_URL": database_url(), "HARRIER_RECONCILE_AFTER": "2",
           "HARRIER_RECONCILE_INTERVAL": "0.5", "PYTHONUNBUFFERED": "1",
           # a secret the workers can reveal (base64, as Kestra's SECRET_ variables)
           "SECRET_API_TOKEN": base64.b64encode(TEST_SECRET.encode()).decode(),
           "ENV_REGION": "eu-west", "HARRIER_GLOBALS": '{"company": "acme"}'}
    running = Cluster(env=env)
    running.start("executor", "executor", "--concurrency", "2")
    running.start("worker", "worker", "--concurrency", "2")
    running.start("indexer", "indexer")
    try:
        running.wait_ready(["executor", "worker.default", "indexer"])
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def namespace() -> str:
    """A namespace of the test's own: flows of one test never meet another's revisions."""
    return f"tests.n{uuid.uuid4().hex[:12]}"


@pytest.fixture
def run_flow(cluster, namespace):
    """Deploy a flow under the test's namespace, execute it and wait for its end."""
    from orchestrator.models import LogEntry
    from orchestrator.repository import create_execution, deploy
    from tests.harness import Outcome, finished, wait_for, with_namespace

    def run(source: str, inputs: dict | None = None, timeout: float = 60, expect_logs: int = 0) -> Outcome:
        flow, _ = deploy(with_namespace(source, namespace))
        execution = create_execution(flow.namespace, flow.flow_id, inputs=inputs or {})
        execution = wait_for(lambda: finished(execution.id, expect_logs), timeout, f"execution {execution.id}")
        return Outcome(
            execution=execution,
            runs=list(execution.task_runs.order_by("seq")),
            logs=list(LogEntry.objects.filter(execution_id=execution.id).order_by("timestamp")),
        )

    return run

"""Test harness: real processes (an executor, workers and an indexer, each a Celery worker
started with `manage.py server …`) against the test database on PostgreSQL and a Redis
database of its own, and helpers to run flows through them. Fixtures live in conftest.py."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


FOCUSED_MISMATCH = "a focused step decided"  # executor/service.py Step._check_focused


@dataclass
class Cluster:
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(ROOT / ".harrier" / f"test-{name}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "server", *args],
            env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        self.processes[name] = process
        return process

    def stop(self, name: str, kill: bool = False) -> None:
        process = self.processes.pop(name)
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        # An executor step over part of an execution that decided otherwise than one over all of
        # it (HARRIER_CHECK_FOCUSED_STEPS) fails only that step, which the reconciler then retries:
        # the test would pass; the run must not.
        log = ROOT / ".harrier" / f"test-{name}.log"
        if log.exists():
            wrong = [line for line in log.read_text(errors="replace").splitlines() if FOCUSED_MISMATCH in line]
            assert not wrong, f"{name}: {wrong[0][:2000]}"

    def wait_ready(self, queues: list[str], timeout: float = 60) -> None:
        """Until a consumer listens on every queue (asked through Celery's remote control)."""
        from orchestrator.celery import app

        def ready():
            replies = app.control.inspect(timeout=0.5).active_queues() or {}
            listening = {q["name"] for queues_ in replies.values() for q in queues_}
            return set(queues) <= listening

        wait_for(ready, timeout, f"consumers on {queues}", interval=0.2)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)





@dataclass
class Outcome:
    execution: object
    runs: list
    logs: list

    @property
    def state(self) -> str:
        return self.execution.state

    def run(self, task_id: str):
        return next(run for run in self.runs if run.task_id == task_id)

    def logs_of(self, task_id: str) -> list[str]:
        return [entry.message for entry in self.logs if entry.task_id == task_id]


def with_namespace(source: str, namespace: str) -> str:
    lines = source.splitlines()
    return "\n".join(f"namespace: {namespace}" if line.startswith("namespace:") else line for line in lines) + "\n"


def finished(execution_id: str, expect_logs: int = 0):
    from orchestrator.models import Execution, LogEntry
    from orchestrator.states import State

    execution = Execution.objects.get(id=execution_id)
    if not State(execution.state).is_terminal:
        return None
    if LogEntry.objects.filter(execution_id=execution_id).count() < expect_logs:
        return None
    return execution


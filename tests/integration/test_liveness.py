"""A worker killed in the middle of a task: its attempt is declared lost and runs again, once,
on another worker (docs/workers.md)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from orchestrator.models import LogEntry, TaskRun
from orchestrator.repository import create_execution, deploy
from orchestrator.states import State
from tests.harness import finished, wait_for, with_namespace
from workers.claims import claim_key, get_claims
from workers.liveness import live_workers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

GROUP = "liveness"  # declared by tests/settings.py; only this module's workers serve it
WORKERS = ("liveness-a", "liveness-b")


@pytest.fixture
def two_workers(cluster):
    """Two workers of their own group (prefork, as `server worker` runs by default)."""
    for name in WORKERS:
        cluster.start(name, "worker", "--worker-group", GROUP, "--concurrency", "2")
    try:
        # Each pool child heartbeats: two per worker.
        wait_for(lambda: len(live_workers(GROUP)) >= 4, 60, "the pool children's heartbeats")
        yield cluster
    finally:
        for name in WORKERS:
            if name in cluster.processes:
                cluster.stop(name)


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def worker_of(cluster, worker_id: str) -> str | None:
    """The name of the worker process (or of the parent of the pool child) with this id."""
    pid = int(worker_id.rsplit(":", 1)[1])
    parent = parent_pid(pid)
    return next((name for name, process in cluster.processes.items() if process.pid in (pid, parent)), None)


def kill_worker(cluster, worker_id: str) -> tuple[str, set[str]]:
    """SIGKILL the worker whose pool child has this id: the Celery process and the child (its
    other children die with it). Returns its name and the ids of its pool children."""
    name = worker_of(cluster, worker_id)
    assert name in WORKERS, f"{worker_id} is not one of this test's workers"
    process = cluster.processes.pop(name)
    children = {worker["id"] for worker in live_workers(GROUP) if parent_pid(worker["pid"]) == process.pid}
    process.send_signal(signal.SIGKILL)
    try:
        os.kill(int(worker_id.rsplit(":", 1)[1]), signal.SIGKILL)
    except ProcessLookupError:
        pass  # the child died with its parent
    process.wait(10)
    return name, children | {worker_id}


def claim_owner(run_id: str, attempt: int) -> str | None:
    return get_claims().claim_owners([claim_key(run_id, attempt)])[0]


def _date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_worker_killed_mid_task_is_replaced_by_a_new_attempt_on_another_worker(two_workers, namespace, tmp_path):
    marks = tmp_path / "marks.txt"
    source = f"""
id: lose-a-worker
namespace: tests
tasks:
  - id: work
    type: io.kestra.plugin.scripts.shell.Commands
    workerGroup:
      key: {GROUP}
    commands:
      - echo "start {{{{ taskrun.attemptsCount }}}}" >> {marks}
      - sleep 6
      - echo "done {{{{ taskrun.attemptsCount }}}}" >> {marks}
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    run = wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id, task_id="work").first(), 30,
                   "the task run")
    wait_for(lambda: marks.exists() and "start 0" in marks.read_text(), 30, "the script to start")
    owner = claim_owner(run.id, 1)
    killed, _ = kill_worker(two_workers, owner)
    killed_at = time.time()

    done = wait_for(lambda: finished(execution.id), 60, "the execution to end after the worker died")
    ended_in = time.time() - killed_at
    assert done.state == State.SUCCESS.value
    assert ended_in < 60

    run = TaskRun.objects.get(id=run.id)
    assert run.state == State.SUCCESS.value
    lost, success = run.attempts
    assert lost["lost"] is True and lost["workerId"] == owner
    assert lost["state"]["current"] == State.FAILED.value
    assert f"The worker {owner} stopped responding while it ran attempt 1" == lost["error"]
    assert success["state"]["current"] == State.SUCCESS.value
    survivor = worker_of(two_workers, success["workerId"])
    assert survivor in WORKERS and survivor != killed  # on the other worker
    # Noticed within 30 s: the lost attempt ends when the executor declares it lost.
    noticed = _date(lost["state"]["histories"][-1]["date"]).timestamp() - killed_at
    assert noticed < 30, noticed
    print(f"\nworker death noticed after {noticed:.1f}s; execution ended {ended_in:.1f}s after the kill")

    # The successful attempt ran the script once; the lost one at most once (its shell, in a
    # session of its own, may outlive the worker).
    lines = marks.read_text().splitlines()
    assert lines.count("start 1") == 1 and lines.count("done 1") == 1
    assert lines.count("start 0") == 1 and lines.count("done 0") <= 1
    assert LogEntry.objects.filter(task_run_id=run.id, level="WARN",
                                   message__contains="attempt 2 is sent again").count() == 1
    # The dead worker's process no longer counts as a live worker of the group.
    assert owner not in {worker["id"] for worker in live_workers(GROUP)}


def test_a_worker_killed_during_a_for_each_of_100_loses_no_iteration(two_workers, namespace, tmp_path):
    marks = tmp_path / "marks.txt"
    source = f"""
id: lose-a-worker-in-a-loop
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps(list(range(100)))}
    concurrencyLimit: 0
    tasks:
      - id: step
        type: io.kestra.plugin.scripts.shell.Commands
        workerGroup:
          key: {GROUP}
        commands:
          - sleep 0.3
          - echo "{{{{ taskrun.value }}}}" >> {marks}
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    steps = TaskRun.objects.filter(execution_id=execution.id, task_id="step")

    def running_attempt():
        if steps.filter(state=State.SUCCESS.value).count() < 10:
            return None
        for run_id, attempts in steps.filter(state__in=[State.CREATED.value, State.RUNNING.value]) \
                .values_list("id", "attempt_count"):
            owner = claim_owner(run_id, attempts + 1)
            if owner and worker_of(two_workers, owner) in WORKERS:
                return owner
        return None

    owner = wait_for(running_attempt, 60, "a worker in the middle of an iteration", interval=0.02)
    _, children = kill_worker(two_workers, owner)

    done = wait_for(lambda: finished(execution.id), 90, "the loop to end after the worker died")
    assert done.state == State.SUCCESS.value
    assert steps.count() == 100
    assert steps.filter(state=State.SUCCESS.value).count() == 100
    assert sorted(int(value) for value in steps.values_list("value", flat=True)) == list(range(100))
    lost = [attempt for attempts in steps.values_list("attempts", flat=True) for attempt in attempts
            if attempt.get("lost")]
    assert lost and {attempt["workerId"] for attempt in lost} <= children
    # Every iteration left its mark; only the dead worker's attempts may have left a second one.
    lines = marks.read_text().splitlines()
    assert set(lines) == {str(value) for value in range(100)}
    assert len(lines) <= 100 + len(lost)

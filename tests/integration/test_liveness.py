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


# --- the executor's and the reconciler's part, step by step ---------------------------------

class RecordingBus:
    def __init__(self):
        self.sent = []

    def publish(self, queue_name, task_name, payload):
        self.sent.append((queue_name, payload))

    def take(self, queue_name):
        found = [payload for name, payload in self.sent if name == queue_name]
        self.sent = [(name, payload) for name, payload in self.sent if name != queue_name]
        return found


@pytest.fixture
def by_hand():
    """Messages kept instead of sent, claims in memory: nothing outside this test acts."""
    from orchestrator import bus
    from workers.claims import MemoryClaims, set_claims

    recording = RecordingBus()
    bus.set_bus(recording)
    set_claims(MemoryClaims())
    yield recording
    bus.set_bus(None)
    set_claims(None)


LONELY = f"""
id: lonely
namespace: tests
tasks:
  - id: work
    type: io.kestra.plugin.core.debug.Return
    format: done
    workerGroup:
      key: {GROUP}
"""


def test_each_lost_attempt_is_recorded_and_the_next_sent_until_losses_count_as_failures(by_hand, namespace):
    from executor.service import handle_message
    from orchestrator import messages
    from workers.claims import LOST_OWNER
    from workers.runtime import run_job

    flow, _ = deploy(with_namespace(LONELY, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    handle_message(messages.evaluate(execution.id))
    [first] = by_hand.take(f"worker.{GROUP}")
    assert first["attempt"] == 1
    by_hand.take("executor")  # the execution's first message, handled by hand above

    def lose(attempt):
        handle_message(messages.evaluate(execution.id, lost=[
            {"taskRunId": first["taskRunId"], "attempt": attempt, "workerId": f"gone:{attempt}"}]))

    lose(1)
    [second] = by_hand.take(f"worker.{GROUP}")
    assert second["attempt"] == 2 and second["taskRunId"] == first["taskRunId"]
    run = TaskRun.objects.get(id=first["taskRunId"])
    assert run.state == State.CREATED.value and run.attempt_count == 1
    assert run.attempts[0]["lost"] is True and run.attempts[0]["workerId"] == "gone:1"
    # The lost attempt's claim is the executor's now: a redelivered copy of it does not run.
    # (A worker claims before it runs: workers/runtime.py.)
    assert get_claims().claim_owners([claim_key(run.id, 1)]) == [LOST_OWNER]
    assert not get_claims().claim(claim_key(run.id, 1), "vm:99")
    # Its worker was only stalled and answers late: ignored, attempt 2 is still the one awaited.
    handle_message(messages.result(execution.id, run_job(first)))
    assert TaskRun.objects.get(id=run.id).attempt_count == 1
    # The same loss told twice (both reconciler passes) changes nothing more.
    lose(1)
    assert by_hand.take(f"worker.{GROUP}") == [] and TaskRun.objects.get(id=run.id).attempt_count == 1

    lose(2)
    lose(3)
    assert [job["attempt"] for job in by_hand.take(f"worker.{GROUP}")] == [3, 4]
    lose(4)  # the fourth loss (HARRIER_LOST_ATTEMPTS = 3) counts as a failed attempt
    assert by_hand.take(f"worker.{GROUP}") == []
    for message in by_hand.take("executor"):
        handle_message(message)
    run = TaskRun.objects.get(id=run.id)
    assert run.state == State.FAILED.value
    assert [attempt.get("lost", False) for attempt in run.attempts] == [True, True, True, False]
    assert run.attempts[-1]["error"] == ("The worker gone:4 stopped responding while it ran attempt 4; 3 attempts "
                                         "were lost with their worker before: this loss counts as a failed attempt")
    wait_for(lambda: finished(execution.id), 5, "the execution to end")
    assert finished(execution.id).state == State.FAILED.value


def test_a_lost_attempt_whose_result_was_kept_is_not_run_again(by_hand, namespace):
    """The worker finished and kept its result, then died before sending it: the result stands."""
    import orjson

    from executor.service import handle_message
    from orchestrator import messages
    from workers.claims import result_key
    from workers.runtime import run_job

    flow, _ = deploy(with_namespace(LONELY, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    handle_message(messages.evaluate(execution.id))
    [job] = by_hand.take(f"worker.{GROUP}")
    by_hand.take("executor")
    kept = messages.result(execution.id, run_job(job))
    get_claims().keep_result(result_key(job["taskRunId"], 1), orjson.dumps(kept))
    handle_message(messages.evaluate(execution.id, lost=[
        {"taskRunId": job["taskRunId"], "attempt": 1, "workerId": "gone:1"}]))
    assert by_hand.take(f"worker.{GROUP}") == []
    for message in by_hand.take("executor"):
        handle_message(message)
    run = TaskRun.objects.get(id=job["taskRunId"])
    assert run.state == State.SUCCESS.value and len(run.attempts) == 1 and "lost" not in run.attempts[0]


def test_the_reconciler_sends_a_silent_workers_attempts_once(by_hand):
    from executor.reconciler import reap_once
    from workers.claims import MemoryClaims, running_entry, set_claims

    class SilentWorker(MemoryClaims):
        """One worker whose heartbeat has expired, listing two attempts."""

        def __init__(self):
            super().__init__()
            self.listed = {"vm:41": [running_entry("e1", "r1", 2), running_entry("e1", "r2", 1),
                                     running_entry("e2", "r3", 1)]}

        def silent_workers(self, ttl):
            return sorted(self.listed)

        def forget_worker(self, worker_id):
            return worker_id in self.listed

        def attempts_of(self, worker_id):
            return self.listed[worker_id]

        def drop_attempts(self, worker_id):
            del self.listed[worker_id]

    store = SilentWorker()
    set_claims(store)
    assert reap_once() == 2
    sent = {message["executionId"]: message["lost"] for message in by_hand.take("executor")}
    assert sent == {
        "e1": [{"taskRunId": "r1", "attempt": 2, "workerId": "vm:41"}, {"taskRunId": "r2", "attempt": 1, "workerId": "vm:41"}],
        "e2": [{"taskRunId": "r3", "attempt": 1, "workerId": "vm:41"}],
    }
    assert reap_once() == 0 and store.listed == {}


def test_the_task_a_lost_working_directory_was_running_ends_with_it(two_workers, namespace, tmp_path):
    marks = tmp_path / "marks.txt"
    source = f"""
id: lose-a-directory
namespace: tests
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    workerGroup:
      key: {GROUP}
    tasks:
      - id: slow
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo "start {{{{ workerTaskrun.attemptsCount }}}}" >> {marks}
          - if [ "{{{{ workerTaskrun.attemptsCount }}}}" = "0" ]; then sleep 60; fi
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    first = wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id, task_id="slow", state="RUNNING")
                     .first(), 30, "the task inside to show RUNNING")
    wait_for(lambda: marks.exists() and "start 0" in marks.read_text(), 30, "the script to start")
    holder = TaskRun.objects.get(execution_id=execution.id, task_id="wd")
    kill_worker(two_workers, claim_owner(holder.id, 1))

    done = wait_for(lambda: finished(execution.id), 90, "the execution to end after the worker died")
    assert done.state == State.SUCCESS.value
    lost = TaskRun.objects.get(id=first.id)
    assert lost.state == State.FAILED.value
    assert lost.attempts[-1]["lost"] is True and "stopped responding" in lost.attempts[-1]["error"]
    again = TaskRun.objects.filter(execution_id=execution.id, task_id="slow").exclude(id=first.id).get()
    assert again.state == State.SUCCESS.value

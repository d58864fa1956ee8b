"""Worker groups: a task with `workerGroup.key` runs only on a worker of that group, and waits in
the group's queue — with the reason said — while no worker serves it (docs/workers.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.models import TaskRun
from orchestrator.repository import create_execution, deploy
from orchestrator.states import State
from tests.harness import finished, wait_for, with_namespace
from workers.liveness import live_workers, waiting_reason

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLOW = """
id: groups
namespace: tests
tasks:
  - id: train
    type: io.kestra.plugin.core.debug.Return
    format: "on the gpu"
    workerGroup:
      key: gpu
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.train.value }}, then anywhere"
"""


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def runs_on(process, worker_id: str) -> bool:
    """Whether the worker with this id is the Celery process or one of its pool children."""
    pid = int(worker_id.rsplit(":", 1)[1])
    return process.pid in (pid, parent_pid(pid))


@pytest.fixture
def no_gpu_worker(cluster):
    # A gpu worker another test stopped leaves the list when it stops, or when its heartbeat expires.
    wait_for(lambda: not live_workers("gpu"), 30, "no live worker in group gpu")
    yield cluster
    if "worker-gpu" in cluster.processes:
        cluster.stop("worker-gpu")


def test_a_group_job_waits_for_its_worker_then_runs_only_there(no_gpu_worker, namespace):
    cluster = no_gpu_worker
    flow, _ = deploy(with_namespace(FLOW, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    train = wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id, task_id="train",
                                                    dispatched__isnull=False).first(), 30, "the gpu job to be sent")
    # Nobody serves the group: the job waits in its queue, and the reason can be said.
    reason = waiting_reason("gpu")
    assert reason == ("no live worker serves worker group 'gpu': the job waits in queue worker.gpu until one "
                      "starts (server worker --worker-group gpu)")
    assert waiting_reason("default") is None
    assert TaskRun.objects.get(id=train.id).state == State.CREATED.value

    gpu = cluster.start("worker-gpu", "worker", "--worker-group", "gpu", "--concurrency", "1")
    done = wait_for(lambda: finished(execution.id), 60, "the execution once a gpu worker is up")
    assert done.state == State.SUCCESS.value
    train, report = (TaskRun.objects.get(execution=done, task_id=task) for task in ("train", "report"))
    assert report.outputs == {"value": "on the gpu, then anywhere"}
    assert len(train.attempts) == 1 and len(report.attempts) == 1  # waited, and ran once
    assert runs_on(gpu, train.attempts[0]["workerId"])
    assert runs_on(cluster.processes["worker"], report.attempts[0]["workerId"])
    assert not runs_on(gpu, report.attempts[0]["workerId"])

    # The gpu worker's pool child heartbeats, as a worker of group gpu only.
    serving = live_workers("gpu")
    assert [worker["id"] for worker in serving] == [train.attempts[0]["workerId"]]
    assert serving[0]["groups"] == ["gpu"] and waiting_reason("gpu") is None
    cluster.stop("worker-gpu")
    wait_for(lambda: not live_workers("gpu"), 15, "the stopped gpu worker to leave the list")

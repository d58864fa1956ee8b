"""`celery -A orchestrator worker -Q worker.<group>` is a Harrier worker too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLOW = """
id: on-gpu
namespace: tests
tasks:
  - id: where
    type: io.kestra.plugin.core.debug.Return
    format: "ran in group gpu"
    workerGroup:
      key: gpu
"""

WIDE = """
id: wide-on-gpu
namespace: tests
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: [0, 1, 2, 3, 4, 5]
        concurrencyLimit: 0
        tasks:
          - id: item
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }} in gpu"
            workerGroup:
              key: gpu
      - id: here
        type: io.kestra.plugin.core.debug.Return
        format: "in the default group"
"""


@pytest.fixture
def plain_celery_worker(cluster):
    log = open(ROOT / ".harrier" / "test-celery-gpu.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "orchestrator", "worker", "-Q", "worker.gpu", "--pool", "threads",
         "--concurrency", "1", "--hostname", "gpu@%h", "--loglevel", "WARNING"],
        env=cluster.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        cluster.wait_ready(["worker.gpu"])
        yield process
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def test_a_plain_celery_worker_runs_its_groups_tasks(plain_celery_worker, run_flow):
    outcome = run_flow(FLOW)
    assert outcome.state == "SUCCESS"
    assert outcome.run("where").outputs == {"value": "ran in group gpu"}
    worker_pid = outcome.run("where").attempts[0]["workerId"].rsplit(":", 1)[1]
    assert int(worker_pid) == plain_celery_worker.pid


def test_a_batch_of_jobs_published_in_one_round_trip_reaches_a_plain_celery_worker(plain_celery_worker, run_flow):
    from orchestrator.celery import app

    with app.producer_or_acquire() as producer:
        assert producer.supports_batch_publish, "the broker settings turned kombu's publish batches off"
    outcome = run_flow(WIDE)
    assert outcome.state == "SUCCESS"
    items = [run for run in outcome.runs if run.task_id == "item"]
    assert sorted(run.outputs["value"] for run in items) == [f"{value} in gpu" for value in range(6)]
    assert {int(run.attempts[0]["workerId"].rsplit(":", 1)[1]) for run in items} == {plain_celery_worker.pid}
    here = outcome.run("here")
    assert here.outputs == {"value": "in the default group"}
    assert int(here.attempts[0]["workerId"].rsplit(":", 1)[1]) != plain_celery_worker.pid

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

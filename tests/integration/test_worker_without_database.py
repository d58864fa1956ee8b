"""Workers never touch the repository: a worker whose database is unreachable runs tasks."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLOW = """
id: no-database
namespace: tests
tasks:
  - id: compute
    type: io.kestra.plugin.core.debug.Return
    format: "{{ flow.id }} ran on a worker with no database"
    workerGroup:
      key: nodb
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.compute.value }}"
    workerGroup:
      key: nodb
"""


@pytest.fixture
def worker_without_database(cluster):
    # Port 1 on loopback: nothing listens there, so any database access would fail at once.
    cluster.start("worker-nodb", "worker", "--worker-group", "nodb", "--concurrency", "1",
                  env={"DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing"})
    cluster.wait_ready(["worker.nodb"])
    yield
    cluster.stop("worker-nodb")


def test_a_worker_with_no_reachable_database_runs_tasks(worker_without_database, run_flow):
    outcome = run_flow(FLOW, expect_logs=1)
    assert outcome.state == "SUCCESS"
    assert outcome.run("compute").outputs == {"value": "no-database ran on a worker with no database"}
    assert outcome.logs_of("say") == ["no-database ran on a worker with no database"]
    assert all(attempt["workerId"] for run in outcome.runs for attempt in run.attempts)

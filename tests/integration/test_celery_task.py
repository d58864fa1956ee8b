"""`io.harrier.celery.Task` through real processes: Harrier's executor, worker and indexer, and a
user's Celery worker (tests/celery_user_tasks.py) on a queue of its own."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.harness import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def user_queue(cluster):
    """A `celery worker` of the user's app, consuming a queue named for this run only."""
    queue = f"user-tasks-{uuid.uuid4().hex[:8]}"
    log = open(ROOT / ".harrier" / "test-celery-user.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.celery_user_tasks", "worker", "-Q", queue, "--pool", "threads",
         "--concurrency", "2", "--hostname", f"{queue}@%h", "--loglevel", "INFO"],
        env=cluster.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        cluster.wait_ready([queue])
        yield queue
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # a `slow` still running: warm shutdown would wait it out
            process.kill()
            process.wait(5)
        log.close()


ADD = """
id: celery-add
namespace: tests
tasks:
  - id: add
    type: io.harrier.celery.Task
    task: user.add
    args: [2, 3]
    queue: QUEUE
  - id: more
    type: io.harrier.celery.Task
    task: user.add
    kwargs:
      x: "{{ outputs.add.result }}"
      y: 37
    queue: QUEUE
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "sum={{ outputs.more.result }} of {{ outputs.add.taskId }}"
"""


def test_a_celery_tasks_result_is_the_output_a_later_task_uses(run_flow, user_queue):
    outcome = run_flow(ADD.replace("QUEUE", user_queue), expect_logs=2)
    assert outcome.state == "SUCCESS"
    add = outcome.run("add").outputs
    assert add["result"] == 5 and add["state"] == "SUCCESS"
    assert outcome.run("more").outputs["result"] == 42
    assert outcome.run("report").outputs == {"value": f"sum=42 of {add['taskId']}"}
    assert outcome.logs_of("add") == [f"Sent Celery task user.add ({add['taskId']}) to queue {user_queue}"]


BOOM = """
id: celery-boom
namespace: tests
tasks:
  - id: boom
    type: io.harrier.celery.Task
    task: user.boom
    args: ["the disk is full"]
    queue: QUEUE
"""


def test_a_failed_celery_task_fails_the_attempt_with_the_remote_exception(run_flow, user_queue):
    outcome = run_flow(BOOM.replace("QUEUE", user_queue), expect_logs=2)
    assert outcome.state == "FAILED"
    run = outcome.run("boom")
    assert run.state == "FAILED"
    assert "failed: ValueError: the disk is full" in run.attempts[0]["error"]
    assert any("ValueError: the disk is full" in line for line in outcome.logs_of("boom"))


SLOW = """
id: celery-slow
namespace: tests
tasks:
  - id: slow
    type: io.harrier.celery.Task
    task: user.slow
    args: [30]
    queue: QUEUE
    timeout: PT1S
"""


def test_a_task_timeout_stops_waiting_for_a_slow_celery_task(run_flow, user_queue):
    outcome = run_flow(SLOW.replace("QUEUE", user_queue), timeout=30, expect_logs=3)
    assert outcome.state == "FAILED"
    run = outcome.run("slow")
    assert run.state == "FAILED"
    assert run.attempts[0]["error"].startswith("Timeout: the task ran longer than PT1S")
    assert any(line.startswith("Stopped waiting for Celery task user.slow") and "revoked" in line
               for line in outcome.logs_of("slow"))


NOT_JSON = """
id: celery-moment
namespace: tests
tasks:
  - id: moment
    type: io.harrier.celery.Task
    task: user.moment
    queue: QUEUE
"""


def test_a_result_that_is_not_json_fails_clearly(run_flow, user_queue):
    outcome = run_flow(NOT_JSON.replace("QUEUE", user_queue), expect_logs=2)
    assert outcome.state == "FAILED"
    assert "the result of Celery task user.moment" in outcome.run("moment").attempts[0]["error"]
    assert "is not JSON" in outcome.run("moment").attempts[0]["error"]

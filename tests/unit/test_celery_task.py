"""`io.harrier.celery.Task` without processes: its own Celery app, and how a failure reads."""

from __future__ import annotations

from workers.tasktypes import celery_task


def test_the_users_app_reads_results_and_harriers_own_app_keeps_none(settings):
    settings.HARRIER_CELERY_TASKS_BROKER = "redis://127.0.0.1:6379/3"
    settings.HARRIER_CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/3"
    celery_task._client = None
    try:
        client = celery_task.client()
        from celery import current_app

        from orchestrator.celery import app as harrier

        assert client is not harrier and current_app is not client
        assert client.conf.result_backend == "redis://127.0.0.1:6379/3"
        assert client.conf.result_accept_content == ["json"]
        assert harrier.conf.result_backend is None and harrier.conf.task_ignore_result is True
    finally:
        celery_task._client = None


def test_a_remote_failure_reads_as_its_type_and_message():
    describe = celery_task._describe_failure
    assert describe({"exc_type": "ValueError", "exc_message": ["the disk is full"], "exc_module": "x"}) == \
        "ValueError: the disk is full"
    assert describe({"exc_type": "KeyError", "exc_message": []}) == "KeyError"
    assert describe("gone") == "gone"

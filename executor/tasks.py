"""The executor's Celery consumer (queue `executor`): a thin adapter over the service."""

from orchestrator import messages
from orchestrator.celery import app


@app.task(name=messages.EXECUTOR_TASK, ignore_result=True)
def process(message: dict) -> None:
    from executor.service import handle_message

    handle_message(message)

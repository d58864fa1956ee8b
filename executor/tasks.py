"""The executor's Celery consumer (queue `executor`): a thin adapter over the service."""

from orchestrator import messages
from orchestrator.celery import app


@app.task(name=messages.EXECUTOR_TASK, ignore_result=True)
def process(message: dict) -> None:
    from django.db import InterfaceError, OperationalError, connection

    from executor.service import handle_message

    # Django's health check would send a SELECT 1 before each message's first statement, 6 to 10%
    # of the executor's time on a wide loop, where messages come by thousands. A message is safe
    # to handle twice, so instead one that meets a connection error (the server closed the
    # connection meanwhile) is handled once more, on a new connection.
    connection.health_check_done = True
    try:
        handle_message(message)
    except (InterfaceError, OperationalError):
        connection.close()
        handle_message(message)

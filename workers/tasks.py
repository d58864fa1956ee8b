"""The worker's Celery consumer (queues `worker.<group>`): a thin adapter over the runtime."""

from orchestrator import messages
from orchestrator.celery import app


@app.task(name=messages.WORKER_TASK, ignore_result=True)
def run(job: dict) -> None:
    from workers.runtime import handle_job

    handle_job(job)


@app.task(name=messages.POLL_TASK, ignore_result=True)
def poll(job: dict) -> None:
    from workers.polling import handle_poll

    handle_poll(job)

"""The Indexer: ingests what workers emit (log lines) into the repository in batches."""

from __future__ import annotations

import json
from datetime import datetime

from django.db import transaction

from orchestrator import messages, notify
from orchestrator.celery import app


def ingest_logs(batch: list[messages.LogRecord]) -> int:
    """Store a batch of log lines; a batch delivered twice is stored once (ids are the key)."""
    from orchestrator.models import LogEntry

    rows = [
        LogEntry(
            id=record["id"], execution_id=record["executionId"], namespace=record["namespace"],
            flow_id=record["flowId"], task_id=record.get("taskId"), task_run_id=record.get("taskRunId"),
            attempt=record.get("attempt"), level=record["level"], message=record["message"],
            timestamp=datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")),
        )
        for record in batch
    ]
    LogEntry.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    transaction.on_commit(lambda: notify.changed(row.execution_id for row in rows))
    return len(rows)


def mark_running(notice: messages.RunningNotice) -> bool:
    """Show a task run RUNNING while its worker runs it. One guarded UPDATE, so it never races
    the executor: only a task run still CREATED for that very attempt changes; a late notice
    (the result was applied first) changes nothing."""
    from django.db import connection

    from orchestrator.models import TaskRun
    from orchestrator.states import State

    entry = json.dumps([{"state": State.RUNNING.value, "date": notice["startDate"]}])
    append = ("state_history || %s::jsonb" if connection.vendor == "postgresql"
              else "json_insert(state_history, '$[#]', json_extract(%s, '$[0]'))")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TaskRun._meta.db_table} SET state = %s, state_history = {append} "
            "WHERE id = %s AND execution_id = %s AND state = %s AND attempt_count = %s",
            [State.RUNNING.value, entry, notice["taskRunId"], notice["executionId"], State.CREATED.value,
             int(notice["attempt"]) - 1],
        )
        marked = cursor.rowcount == 1
    if marked:
        transaction.on_commit(lambda: notify.changed([notice["executionId"]]))
    return marked


@app.task(name=messages.RUNNING_TASK, ignore_result=True)
def running(notice: messages.RunningNotice) -> None:
    mark_running(notice)


@app.task(name=messages.INDEXER_TASK, ignore_result=True)
def ingest(batch: list[messages.LogRecord]) -> None:
    ingest_logs(batch)

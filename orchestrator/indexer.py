"""The Indexer: ingests what workers emit (log lines) into the repository in batches."""

from __future__ import annotations

from datetime import datetime

from orchestrator import messages
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
    return len(rows)


@app.task(name=messages.INDEXER_TASK, ignore_result=True)
def ingest(batch: list[messages.LogRecord]) -> None:
    ingest_logs(batch)

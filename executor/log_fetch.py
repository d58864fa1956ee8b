"""The executor shell's part of the log Fetch task (decided in executor/core/flowables/log_fetch.py):
stream an execution's log lines from the repository into a file of the internal storage.

Rows are read with a server-side cursor in chunks and written to a temporary file, one JSON
object a line (which Ion readers read too, as Kestra's `.ion` files), which is then stored in
one piece: an execution of a million lines costs a file, never a list in memory.
"""

from __future__ import annotations

import json
import tempfile
from typing import Iterator

from executor.core.actions import FetchLogs
from orchestrator.models import Execution, LogEntry
from orchestrator.repository import iso

FILE_NAME = "logs.ion"
CHUNK = 2000


class FetchRefused(LookupError):
    """The execution named cannot be fetched from here (unknown, or of another flow)."""


def target_execution(action: FetchLogs, current: Execution) -> str:
    """The id of the execution to read, checked: another execution is looked for in the flow
    the task names, the current one by default (as Kestra does), so that a flow reads another
    flow's logs only by naming it."""
    namespace = action.namespace or current.namespace
    flow_id = action.flow_id or current.flow_id
    if action.execution_id == current.id and (namespace, flow_id) == (current.namespace, current.flow_id):
        return current.id
    if not Execution.objects.filter(id=action.execution_id, namespace=namespace, flow_id=flow_id).exists():
        raise FetchRefused(f"execution {action.execution_id} of flow {namespace}.{flow_id} does not exist")
    return action.execution_id


def rows(execution_id: str, action: FetchLogs) -> Iterator[bytes]:
    lines = LogEntry.objects.filter(execution_id=execution_id, level__in=action.levels)
    if action.task_ids is not None:
        lines = lines.filter(task_id__in=action.task_ids)
    columns = ("namespace", "flow_id", "execution_id", "task_id", "task_run_id", "attempt", "timestamp", "level",
               "message")
    for namespace, flow_id, execution, task_id, task_run_id, attempt, timestamp, level, message in \
            lines.order_by("timestamp", "id").values_list(*columns).iterator(chunk_size=CHUNK):
        record = {"namespace": namespace, "flowId": flow_id, "executionId": execution, "taskId": task_id,
                  "taskRunId": task_run_id, "attemptNumber": attempt, "timestamp": iso(timestamp), "level": level,
                  "message": message}
        yield (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def fetch(action: FetchLogs, current: Execution, task_id: str) -> dict[str, object]:
    """Write the file under the task run's own URI prefix; its outputs `uri` and `size`.
    Raises FetchRefused, or StorageError when the file cannot be stored."""
    from orchestrator.storage import get_storage, task_file_uri

    execution_id = target_execution(action, current)
    uri = task_file_uri(current.namespace, current.flow_id, current.id, task_id, action.task_run_id, FILE_NAME)
    size = 0
    with tempfile.TemporaryFile() as spool:
        for line in rows(execution_id, action):
            spool.write(line)
            size += 1
        spool.seek(0)
        get_storage().put(uri, spool)
    return {"uri": uri, "size": size}

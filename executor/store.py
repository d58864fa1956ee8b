"""The executor's reads and writes on its hot path, in plain SQL.

Every task costs one executor step, and the ORM's query building costs more than the queries
themselves at this size (about 0.5 ms a statement against 0.1 ms on the wire). These few
statements are written once here, for PostgreSQL and SQLite alike; everything else in Harrier
uses the ORM. The rows come back as the ORM's model instances, so callers do not care.
"""

from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any, Iterable

from django.db import connection, transaction

from orchestrator import notify
from orchestrator.models import Execution, Flow, TaskRun
from orchestrator.states import TERMINAL

_EXECUTION_COLUMNS = (
    "id", "namespace", "flow_id", "flow_revision", "state", "state_history", "inputs", "outputs", "labels",
    "variables", "trigger", "parent_id", "original_id", "metadata", "schedule_date", "start_date", "end_date",
    "updated",
)
_EXECUTION_JSON = {"state_history", "inputs", "outputs", "labels", "variables", "trigger", "metadata"}

_RUN_COLUMNS = (
    "id", "execution_id", "task_id", "parent_task_run_id", "value", "iteration", "state", "state_history",
    "attempts", "attempt_count", "outputs", "seq", "dispatched",
)
_RUN_JSON = {"state_history", "attempts", "outputs"}
# The columns a step's decision needs, none of them JSON, and whether the task run's job is still
# to be sent (Step._defer_beyond_batch).
VIEW_COLUMNS = ("id", "task_id", "parent_task_run_id", "state", "seq", "value", "iteration", "attempt_count",
                "dispatched IS NULL")

_EXECUTION_TABLE = Execution._meta.db_table
_RUN_TABLE = TaskRun._meta.db_table
_FLOW_TABLE = Flow._meta.db_table
_TERMINAL = sorted(state.value for state in TERMINAL)
# A task run looked up by its id is checked to be the execution's with an expression no index
# serves, so that PostgreSQL takes the primary key: for an execution its statistics have not seen
# yet (a loop's thousands of task runs just created) it would guess that the execution has one
# task run, take the execution's index, and read them all.
_OF_EXECUTION = "(execution_id || '') = %s"


# One task run's whole row; every task run's scalar columns, in order.
_RUN_SQL = f"SELECT {', '.join(_RUN_COLUMNS)} FROM {_RUN_TABLE} WHERE id = %s AND {_OF_EXECUTION}"
_VIEWS_SQL = f"SELECT {', '.join(VIEW_COLUMNS)} FROM {_RUN_TABLE} WHERE execution_id = %s ORDER BY seq"


def _locking_execution_sql() -> str:
    """The statement reading an execution's row and locking it until the transaction ends
    (PostgreSQL's FOR UPDATE; SQLite serialises writers with the database lock taken at BEGIN
    IMMEDIATE)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return f"SELECT {', '.join(_EXECUTION_COLUMNS)} FROM {_EXECUTION_TABLE} WHERE id = %s{lock}"


@contextmanager
def batch():
    """Statements inside are sent without waiting for each answer (psycopg's pipeline mode on
    PostgreSQL): a step's writes cost one round trip instead of one each."""
    raw = connection.connection if connection.vendor == "postgresql" else None
    with raw.pipeline() if raw is not None and hasattr(raw, "pipeline") else nullcontext():
        yield


def _load_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _datetime(value: Any) -> datetime | None:
    # SQLite hands back text or a naive datetime in UTC; PostgreSQL an aware datetime.
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    return connection.ops.convert_datetimefield_value(value, None, connection)


_DATETIMES = {"schedule_date", "start_date", "end_date", "updated", "dispatched"}


def _instance(model, columns: tuple[str, ...], json_columns: set[str], row: tuple) -> Any:
    values = {}
    for name, value in zip(columns, row):
        if name in json_columns:
            value = _load_json(value)
        elif name in _DATETIMES:
            value = _datetime(value)
        values[name] = value
    instance = model(**values)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def load(execution_id: str, task_run_id: str | None) -> tuple[Execution | None, list[tuple], TaskRun | None]:
    """What a step starts from, in one round trip: the execution's row, locked until the
    transaction ends (_locking_execution_sql), the scalar columns of its task runs, and the whole
    row of the task run a result is for."""
    with batch(), connection.cursor() as first, connection.cursor() as second, connection.cursor() as third:
        first.execute(_locking_execution_sql(), [execution_id])
        if task_run_id is None:
            second.execute(_VIEWS_SQL, [execution_id])
        else:
            # A result for a task run that has already ended (applied with an earlier batch, or a
            # duplicate) changes nothing: then the execution's task runs are not worth reading.
            second.execute(
                f"SELECT {', '.join(VIEW_COLUMNS)} FROM {_RUN_TABLE} WHERE execution_id = %s AND EXISTS "
                f"(SELECT 1 FROM {_RUN_TABLE} WHERE id = %s AND {_OF_EXECUTION} AND state NOT IN "
                f"({', '.join(['%s'] * len(_TERMINAL))})) ORDER BY seq",
                [execution_id, task_run_id, execution_id, *_TERMINAL],
            )
        if task_run_id is not None:
            third.execute(_RUN_SQL, [task_run_id, execution_id])
        row = first.fetchone()
        rows = second.fetchall()
        run_row = third.fetchone() if task_run_id is not None else None
    execution = _instance(Execution, _EXECUTION_COLUMNS, _EXECUTION_JSON, row) if row else None
    run = _instance(TaskRun, _RUN_COLUMNS, _RUN_JSON, run_row) if run_row else None
    return execution, rows, run


_COUNT_TABLE = "orchestrator_childcount"  # kept by triggers: migrations/0011_task_run_child_counts.py


def can_focus() -> bool:
    """Whether a step can read only the task runs it is about (load_focused): the children of loops
    are counted by the database (PostgreSQL)."""
    return connection.vendor == "postgresql"


def load_focused(execution_id: str, task_run_id: str | None, others: list[str], outside_loops: list[str],
                 loops: frozenset[str], value_loops: frozenset[str]
                 ) -> tuple[Execution | None, list[tuple], TaskRun | None, set[str], int]:
    """What a step about the result of one task run (if any) and about `others` starts from,
    whatever the size of the loops they sit in: the execution's row, locked as `load` locks it;
    the scalar columns of the task runs of the tasks outside loops (`outside_loops`), of those task
    runs and those above them, of the children of those above that are not `loops`, and, under a
    loop whose values each run their tasks in sequence (`value_loops`), of the task runs of the
    same value; the whole row of the result's task run; the task runs whose children are all read;
    and the `seq` the next new task run takes. Two round trips, each statement an index lookup
    (one statement would leave PostgreSQL's planner guessing at the sizes and scanning the
    execution's task runs)."""
    columns = ", ".join(VIEW_COLUMNS)
    with batch(), connection.cursor() as first, connection.cursor() as second, connection.cursor() as third, \
            connection.cursor() as fourth:
        first.execute(_locking_execution_sql(), [execution_id])
        # The task runs and those above them (with the parent, and the task's id, last).
        second.execute(
            f"""WITH RECURSIVE chain AS (
                    SELECT {columns}, parent_task_run_id AS parent, task_id AS task FROM {_RUN_TABLE}
                    WHERE id = ANY(%s) AND {_OF_EXECUTION}
                  UNION
                    SELECT {', '.join(f'run.{name}' for name in VIEW_COLUMNS)}, run.parent_task_run_id,
                           run.task_id
                    FROM {_RUN_TABLE} run JOIN chain ON run.id = chain.parent
                ) SELECT * FROM chain""",
            [[run_id for run_id in (task_run_id, *others) if run_id is not None], execution_id],
        )
        if task_run_id is not None:
            third.execute(_RUN_SQL, [task_run_id, execution_id])
        fourth.execute(f"SELECT max(seq) FROM {_RUN_TABLE} WHERE execution_id = %s", [execution_id])
        row = first.fetchone()
        chain = {found[0]: found for found in second.fetchall()}
        run_row = third.fetchone() if task_run_id is not None else None
        last_seq = fourth.fetchone()[0]
    execution = _instance(Execution, _EXECUTION_COLUMNS, _EXECUTION_JSON, row) if row else None
    run = _instance(TaskRun, _RUN_COLUMNS, _RUN_JSON, run_row) if run_row else None
    above = {run_id for run_id, found in chain.items() if found[-1] not in loops}
    groups = sorted({(found[-2], found[6]) for found in chain.values()
                     if found[-2] in chain and chain[found[-2]][-1] in value_loops})
    with batch(), connection.cursor() as outside, connection.cursor() as children, connection.cursor() as values:
        outside.execute(f"SELECT {columns} FROM {_RUN_TABLE} WHERE execution_id = %s AND task_id = ANY(%s)",
                        [execution_id, outside_loops])
        children.execute(f"SELECT {columns} FROM {_RUN_TABLE} WHERE parent_task_run_id = ANY(%s)", [sorted(above)])
        if groups:
            values.execute(
                f"SELECT {columns} FROM {_RUN_TABLE} WHERE "
                + " OR ".join(["(parent_task_run_id = %s AND iteration = %s)"] * len(groups)),
                [value for group in groups for value in group],
            )
        found = {found[0]: found for found in (*outside.fetchall(), *children.fetchall())}
        if groups:
            found.update((found_row[0], found_row) for found_row in values.fetchall())
    found.update((run_id, chain_row[:-2]) for run_id, chain_row in chain.items())
    rows = sorted(found.values(), key=lambda found_row: found_row[4])
    return execution, rows, run, above, -1 if last_seq is None else last_seq


def lock_execution(execution_id: str) -> Execution | None:
    """The execution's row, locked until the transaction ends (as `load` locks it)."""
    with connection.cursor() as cursor:
        cursor.execute(_locking_execution_sql(), [execution_id])
        row = cursor.fetchone()
    return _instance(Execution, _EXECUTION_COLUMNS, _EXECUTION_JSON, row) if row else None


def unsent(execution_id: str, task_ids: list[str], limit: int) -> list[TaskRun]:
    """At most `limit` of the execution's task runs of `task_ids` CREATED and never sent, in order
    (an index holds exactly those: models.TaskRun)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM {_RUN_TABLE} WHERE execution_id = %s AND state = %s "
            "AND dispatched IS NULL AND task_id = ANY(%s) ORDER BY seq LIMIT %s",
            [execution_id, "CREATED", task_ids, limit],
        )
        rows = cursor.fetchall()
    return [_instance(TaskRun, _RUN_COLUMNS, _RUN_JSON, row) for row in rows]


def child_counts(parent_ids: list[str]) -> dict[str, dict[tuple[str, str], int]]:
    """{parent task run id: {(task id, state): how many of its children}} (load_focused)."""
    if not parent_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT parent_task_run_id, task_id, state, count FROM {_COUNT_TABLE} "
                       "WHERE parent_task_run_id = ANY(%s) AND count <> 0", [parent_ids])
        counts: dict[str, dict[tuple[str, str], int]] = {}
        for parent_id, task_id, state, count in cursor.fetchall():
            counts.setdefault(parent_id, {})[task_id, state] = count
    return counts


def load_rows(execution_id: str) -> list[tuple]:
    """The scalar columns of every task run of the execution (VIEW_COLUMNS), in order."""
    with connection.cursor() as cursor:
        cursor.execute(_VIEWS_SQL, [execution_id])
        return cursor.fetchall()


def has_ended(execution_id: str, task_run_id: str) -> bool:
    """Whether the task run has ended, read without any lock: an ended task run takes no
    further result (a restart sends a new attempt, whose number an old result does not bear)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {_RUN_TABLE} WHERE id = %s AND {_OF_EXECUTION} AND state IN "
            f"({', '.join(['%s'] * len(_TERMINAL))})",
            [task_run_id, execution_id, *_TERMINAL],
        )
        return cursor.fetchone() is not None


def task_runs(execution_id: str, ids: Iterable[str]) -> list[TaskRun]:
    ids = list(ids)
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM {_RUN_TABLE} WHERE id IN ({', '.join(['%s'] * len(ids))}) "
            f"AND {_OF_EXECUTION} ORDER BY seq",
            [*ids, execution_id],
        )
        rows = cursor.fetchall()
    return [_instance(TaskRun, _RUN_COLUMNS, _RUN_JSON, row) for row in rows]


def outputs_rows(execution_id: str,
                 task_ids: frozenset[str] | None) -> list[tuple[str, str | None, Any, str | None]]:
    """(task id, value, outputs, parent task run id) of the task runs that have outputs, for the
    named tasks or all (the parent tells where a loop's outputs nest: context.outputs_of)."""
    sql = (f"SELECT task_id, value, outputs, parent_task_run_id FROM {_RUN_TABLE} "
           "WHERE execution_id = %s AND outputs IS NOT NULL")
    params: list[Any] = [execution_id]
    if task_ids is not None:
        if not task_ids:
            return []
        sql += f" AND task_id IN ({', '.join(['%s'] * len(task_ids))})"
        params += sorted(task_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY seq", params)
        rows = cursor.fetchall()
    # JSON null is stored as SQL NULL by the writes below, so every row here has outputs.
    return [(task_id, value, _load_json(outputs), parent) for task_id, value, outputs, parent in rows]


def failed_attempts(execution_id: str) -> list[tuple[str, str, list]]:
    """(task id, task run id, attempts) of the execution's failed task runs, in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT task_id, id, attempts FROM {_RUN_TABLE} WHERE execution_id = %s AND state = %s ORDER BY seq",
            [execution_id, "FAILED"],
        )
        return [(task_id, run_id, _load_json(attempts)) for task_id, run_id, attempts in cursor.fetchall()]


def _run_values(run: TaskRun, columns: tuple[str, ...]) -> list[Any]:
    values = []
    for name in columns:
        value = getattr(run, name)
        if name in _RUN_JSON:
            value = _dump_json(value)
        elif isinstance(value, datetime):
            value = connection.ops.adapt_datetimefield_value(value)
        values.append(value)
    return values


def insert_runs(runs: list[TaskRun]) -> None:
    if not runs:
        return
    row = f"({', '.join(['%s'] * len(_RUN_COLUMNS))})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_RUN_TABLE} ({', '.join(_RUN_COLUMNS)}) VALUES {', '.join([row] * len(runs))}",
            [value for run in runs for value in _run_values(run, _RUN_COLUMNS)],
        )


_UPDATABLE = ("state", "state_history", "attempts", "attempt_count", "outputs", "dispatched")


_UPDATE_RUN = f"UPDATE {_RUN_TABLE} SET {', '.join(f'{name} = %s' for name in _UPDATABLE)} WHERE id = %s"


def update_run(run: TaskRun) -> None:
    update_runs([run])


def update_runs(runs: Iterable[TaskRun]) -> None:
    """One UPDATE per task run, sent as one batch: the statement is prepared once, however many
    results a step applies (thousands, when a wide loop's results are applied together)."""
    values = [[*_run_values(run, _UPDATABLE), run.id] for run in runs]
    if values:
        with connection.cursor() as cursor:
            cursor.executemany(_UPDATE_RUN, values)


def mark_dispatched(execution_id: str, ids: list[str], moment: datetime) -> None:
    """Record that the jobs of these task runs were sent (again) at `moment`, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_RUN_TABLE} SET dispatched = %s WHERE id IN ({', '.join(['%s'] * len(ids))}) "
            f"AND {_OF_EXECUTION}",
            [connection.ops.adapt_datetimefield_value(moment), *ids, execution_id],
        )


def update_execution(execution: Execution) -> None:
    """Write a step's changes of the execution row; followers hear of it once they are committed."""
    execution_id = execution.id
    transaction.on_commit(lambda: notify.changed([execution_id]))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_EXECUTION_TABLE} SET state = %s, state_history = %s, labels = %s, outputs = %s, "
            "end_date = %s, updated = %s WHERE id = %s",
            [
                execution.state, _dump_json(execution.state_history), _dump_json(execution.labels),
                _dump_json(execution.outputs),
                connection.ops.adapt_datetimefield_value(execution.end_date),
                connection.ops.adapt_datetimefield_value(execution.updated), execution.id,
            ],
        )


def lock_flow(namespace: str, flow_id: str) -> None:
    """Lock a flow's row until the transaction ends: executions of one flow that check its
    concurrency limit take turns."""
    if not connection.features.has_select_for_update:
        return  # SQLite: one writer at a time already
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {_FLOW_TABLE} WHERE namespace = %s AND flow_id = %s FOR UPDATE",
                       [namespace, flow_id])

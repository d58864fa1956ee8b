"""Service functions over the repository: deploy flows, load them for the executor, create
executions. The API, the CLI and triggers call these; none of them writes rows directly."""

from __future__ import annotations

import contextvars
import logging
import os
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Mapping

from django.db import transaction

from executor.core.model import FlowGraph, build_graph
from orchestrator import bus, encryption, input_files, messages
from orchestrator.flowlang import FlowDefinition, parse_flow
from orchestrator.flowlang.defaults import with_plugin_defaults
from orchestrator.inputs import InvalidInputs, resolve_inputs  # noqa: F401 (InvalidInputs: callers catch it here)
from orchestrator.models import Delay, Execution, Flow, FlowRevision, LogEntry, new_id
from orchestrator.states import State
from orchestrator.storage import StorageError, get_storage
from workers.environment import ambient


logger = logging.getLogger("harrier.repository")
# Executions that fail at creation fire their Flow triggers at once, in the same call: flows that
# trigger each other on FAILED and fail at creation would recurse without end. Past this depth
# the chain stops, and the last execution says so.
MAX_FAILED_AT_CREATION_CHAIN = 16
_failed_at_creation_depth = contextvars.ContextVar("harrier_failed_at_creation_depth", default=0)

CORRELATION_LABEL = "system.correlationId"


class FlowNotFound(LookupError):
    pass


class FlowDisabled(ValueError):
    """A disabled flow starts no execution (its triggers do not fire either)."""


class ExecutionBlocked(ValueError):
    """A `checks` condition of the flow is false and its behavior blocks the execution."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """Kestra's date format: ISO-8601 in UTC with milliseconds and a Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def declared_worker_groups() -> frozenset[str]:
    groups = os.environ.get("HARRIER_WORKER_GROUPS", "")
    return frozenset({messages.DEFAULT_WORKER_GROUP, *(g.strip() for g in groups.split(",") if g.strip())})


def validate(source: str) -> FlowDefinition:
    return parse_flow(source, declared_worker_groups=declared_worker_groups())


@transaction.atomic
def deploy(source: str) -> tuple[Flow, bool]:
    """Validate and store a flow. A changed source becomes a new revision; an identical one is
    left alone. Returns the flow and whether a new revision was made."""
    definition = validate(source)
    flow = (
        Flow.objects.select_for_update()
        .filter(namespace=definition.namespace, flow_id=definition.id)
        .first()
    )
    if flow is not None and flow.source == source and not flow.deleted:
        return flow, False
    if flow is None:
        flow = Flow.objects.create(namespace=definition.namespace, flow_id=definition.id, revision=1, source=source)
    else:
        flow.revision += 1
        flow.source = source
        flow.deleted = False
    flow.disabled = bool(definition.data.get("disabled", False))
    flow.save()
    FlowRevision.objects.create(
        head=flow, namespace=flow.namespace, flow_id=flow.flow_id, revision=flow.revision, source=source
    )
    from executor.flow_triggers import index_flow

    index_flow(flow, definition.data)
    sync_schedules(flow)
    return flow, True


@transaction.atomic
def delete_flow(namespace: str, flow_id: str) -> Flow:
    """Mark a flow deleted, as Kestra does: its revisions and executions stay readable, it starts no
    new execution, and deploying it again makes its next revision. Raises FlowNotFound."""
    flow = Flow.objects.select_for_update().filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
    if flow is None:
        raise FlowNotFound(f"flow {namespace}.{flow_id} does not exist")
    flow.deleted = True
    flow.save(update_fields=["deleted", "updated"])
    sync_schedules(flow)
    return flow


@lru_cache(maxsize=512)
def _graph(namespace: str, flow_id: str, revision: int) -> FlowGraph:
    row = FlowRevision.objects.filter(namespace=namespace, flow_id=flow_id, revision=revision).first()
    if row is None:
        raise FlowNotFound(f"flow {namespace}.{flow_id} revision {revision} does not exist")
    # Revisions never change once written, so a parsed revision can be cached for good.
    return build_graph(with_plugin_defaults(parse_flow(row.source).data), revision)


def flow_graph(namespace: str, flow_id: str, revision: int) -> FlowGraph:
    return _graph(namespace, flow_id, revision)


def labels_list(labels: Any) -> list[dict[str, str]]:
    """Kestra accepts labels as a map or as a list of {key, value}; executions keep the list."""
    if not labels:
        return []
    if isinstance(labels, Mapping):
        return [{"key": str(k), "value": str(v)} for k, v in labels.items()]
    return [{"key": str(item["key"]), "value": str(item["value"])} for item in labels]


def merge_labels(*groups: list[dict[str, str]]) -> list[dict[str, str]]:
    merged: dict[str, str] = {}
    for group in groups:
        for label in group:
            merged[label["key"]] = label["value"]
    return [{"key": k, "value": v} for k, v in merged.items()]


def create_execution(
    namespace: str,
    flow_id: str,
    *,
    inputs: Mapping[str, Any] | None = None,
    labels: Any = None,
    trigger: Mapping[str, Any] | None = None,
    parent_id: str | None = None,
    revision: int | None = None,
    files: Mapping[str, "os.PathLike[str]"] | None = None,
    missing_inputs_allowed: bool = False,
    execution_id: str | None = None,
    schedule_date: datetime | None = None,
) -> Execution:
    """Create an execution in CREATED and hand it to the executor once committed.

    The given inputs are typed and checked against the flow's declarations first (SECRET ones
    encrypted); InvalidInputs lists every problem, and then nothing is stored. `files` are local
    files for FILE inputs, by input id: stored in the internal storage before the row is
    written, and deleted again if it cannot be (orchestrator/input_files.py). With
    `missing_inputs_allowed` (Flow triggers), required inputs nobody gave stay null. An
    `execution_id` chosen beforehand (a polling trigger's evaluation stored files under it) makes
    a second creation fail with IntegrityError. A `schedule_date` to come keeps it in CREATED
    until then: a START delay, fired by the executor's delay loop, starts it."""
    revision = revision or _startable_flow(namespace, flow_id).revision
    graph = flow_graph(namespace, flow_id, revision)
    moment = now()
    execution_id = execution_id or new_id()
    uploads = input_files.upload_uris(namespace, flow_id, execution_id, files or {})
    typed_inputs = resolve_inputs(
        graph.data.get("inputs"), {**(inputs or {}), **uploads}, seal=encryption.encrypt,
        missing_allowed=missing_inputs_allowed,
        context={"flow": {"id": flow_id, "namespace": namespace, "revision": revision},
                 "execution": {"id": execution_id, "startDate": iso(moment)}, **ambient()},
    )
    parent = _parent(parent_id, trigger)
    problems = input_files.check_given_files(graph.data.get("inputs"), typed_inputs, uploads.values(), namespace,
                                             flow_id, execution_id, parent)
    if problems:
        raise InvalidInputs(problems)
    input_files.store_uploads(uploads, files or {})
    try:
        return _insert_execution(namespace, flow_id, revision, graph, moment, execution_id, typed_inputs, labels,
                                 trigger, parent_id, schedule_date)
    except BaseException:
        input_files.discard(uploads.values())
        raise


def create_failed_execution(namespace: str, flow_id: str, *, error: str, inputs: Mapping[str, Any] | None = None,
                            labels: Any = None, trigger: Mapping[str, Any] | None = None) -> Execution:
    """Store an execution of the flow's current revision that failed before it could start (its
    trigger's inputs were refused), as Kestra does: CREATED then FAILED at once, `error` as an
    ERROR log line on it, and what its end fires fired in this transaction. `inputs` are values
    checked already (SECRETs sealed): what was read of them. Raises FlowNotFound, FlowDisabled."""
    flow = _startable_flow(namespace, flow_id)
    graph = flow_graph(namespace, flow_id, flow.revision)
    moment = now()
    with transaction.atomic():
        execution = _stored_execution(namespace, flow_id, flow.revision, graph, moment, new_id(), dict(inputs or {}),
                                      labels, trigger, None)
        _fail_at_creation(execution, error, moment)
    return execution


def _startable_flow(namespace: str, flow_id: str) -> Flow:
    flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
    if flow is None:
        raise FlowNotFound(f"flow {namespace}.{flow_id} does not exist")
    if flow.disabled:
        raise FlowDisabled(f"flow {namespace}.{flow_id} is disabled: enable it to run it")
    return flow


def delete_execution_files(namespace: str, flow_id: str, execution_id: str) -> None:
    """Delete every file of an execution from the internal storage once the transaction that
    deletes its row commits: a deletion rolled back keeps its files, and a failure to delete
    them is logged, never undoing the deletion of the row. Whatever deletes executions calls this
    (the admin does); files left behind are removed by `storage.delete_execution` at any time."""

    def purge() -> None:
        try:
            get_storage().delete_execution(namespace, flow_id, execution_id)
        except StorageError:
            logger.exception("could not delete the files of the deleted execution %s", execution_id)

    transaction.on_commit(purge)


class ExecutionNotEnded(ValueError):
    """An execution still running cannot be deleted: kill it first."""


def delete_execution(execution_id: str, *, logs: bool = True, files: bool = True) -> None:
    """Delete an ended execution with its task runs and, unless told otherwise, its logs and its
    files (once the deletion commits). Raises LookupError when it does not exist and
    ExecutionNotEnded when it has not ended: the executor still writes to a running one."""
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(id=execution_id).first()
        if execution is None:
            raise LookupError(f"execution {execution_id} does not exist")
        if not State(execution.state).is_terminal:
            raise ExecutionNotEnded(f"execution {execution_id} is {execution.state}: kill it before deleting it")
        if logs:
            LogEntry.objects.filter(execution_id=execution_id).delete()
        execution.delete()
        if files:
            delete_execution_files(execution.namespace, execution.flow_id, execution_id)


def _parent(parent_id: str | None, trigger: Mapping[str, Any] | None) -> tuple[str, str, str] | None:
    """(namespace, flowId, executionId) of the execution starting this one as a subflow."""
    variables = (trigger or {}).get("variables") or {}
    if not parent_id or not isinstance(variables, Mapping):
        return None
    namespace, flow_id = variables.get("namespace"), variables.get("flowId")
    if not (isinstance(namespace, str) and isinstance(flow_id, str)):
        return None
    return namespace, flow_id, parent_id


def _insert_execution(namespace: str, flow_id: str, revision: int, graph: FlowGraph, moment: datetime,
                      execution_id: str, typed_inputs: dict[str, Any], labels: Any,
                      trigger: Mapping[str, Any] | None, parent_id: str | None,
                      schedule_date: datetime | None = None) -> Execution:
    failed_check = _run_checks(graph.data.get("checks"), {
        "flow": {"id": flow_id, "namespace": namespace, "revision": revision},
        "execution": {"id": execution_id, "startDate": iso(moment)}, "inputs": typed_inputs, **ambient(),
    })
    with transaction.atomic():
        execution = _stored_execution(namespace, flow_id, revision, graph, moment, execution_id, typed_inputs, labels,
                                      trigger, parent_id, schedule_date)
        if failed_check is not None:  # FAIL_EXECUTION: stored, and ended at once with the reason
            _fail_at_creation(execution, f"Check failed: {failed_check}", moment)
            return execution
        if schedule_date is not None and schedule_date > moment:
            Delay.objects.create(execution=execution, kind=Delay.START, fire_at=schedule_date)
            return execution
        transaction.on_commit(
            lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, messages.evaluate(execution_id))
        )
    return execution


def _stored_execution(namespace: str, flow_id: str, revision: int, graph: FlowGraph, moment: datetime,
                      execution_id: str, typed_inputs: dict[str, Any], labels: Any,
                      trigger: Mapping[str, Any] | None, parent_id: str | None,
                      schedule_date: datetime | None = None) -> Execution:
    """The new execution's row, in CREATED, with the flow's labels under the given ones."""
    given = labels_list(labels)
    if not any(label["key"] == CORRELATION_LABEL for label in given):
        # The first execution of a chain (subflows, flow triggers) names the whole chain.
        given.append({"key": CORRELATION_LABEL, "value": execution_id})
    return Execution.objects.create(
        id=execution_id,
        namespace=namespace,
        flow_id=flow_id,
        flow_revision=revision,
        state=State.CREATED.value,
        state_history=[{"state": State.CREATED.value, "date": iso(moment)}],
        inputs=typed_inputs,
        labels=merge_labels(labels_list(graph.data.get("labels")), given),
        trigger=dict(trigger) if trigger else None,
        parent_id=parent_id,
        schedule_date=schedule_date,
        start_date=moment,
        updated=moment,
    )


def _fail_at_creation(execution: Execution, message: str, moment: datetime) -> None:
    """End a new execution FAILED before it ran, `message` as an ERROR log line on it. It never
    reaches the executor, so what an execution's end fires is fired here, in the transaction
    that stores it (the row is not visible to anyone else yet): the Flow triggers listening for
    FAILED, and the `stopAfter` of the trigger that started it."""
    from executor.flow_triggers import on_state_change

    execution.state = State.FAILED.value
    execution.state_history.append({"state": State.FAILED.value, "date": iso(moment)})
    execution.end_date = moment
    execution.save(update_fields=["state", "state_history", "end_date"])
    logs = [LogEntry(execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
                     level="ERROR", message=message, timestamp=moment)]
    depth = _failed_at_creation_depth.get()
    if depth < MAX_FAILED_AT_CREATION_CHAIN:
        token = _failed_at_creation_depth.set(depth + 1)
        try:
            on_state_change(execution, execution.state, len(execution.state_history) - 1, moment, logs)
        finally:
            _failed_at_creation_depth.reset(token)
    else:
        logs.append(LogEntry(
            execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id, level="ERROR",
            timestamp=moment, message=f"Flow triggers not fired: this execution ends a chain of "
                                      f"{MAX_FAILED_AT_CREATION_CHAIN} executions that each failed at creation and "
                                      f"triggered the next one"))
    LogEntry.objects.bulk_create(logs)


def _run_checks(checks: Any, context: Mapping[str, Any]) -> str | None:
    """The flow's `checks`, before an execution is stored: a false condition with behavior
    BLOCK_EXECUTION (the default) raises ExecutionBlocked with its message; with FAIL_EXECUTION
    its message is returned (the execution is stored FAILED); CREATE_EXECUTION only informs."""
    from orchestrator.templating import TemplateError, is_truthy, render_value

    for check in checks or ():
        condition = check.get("condition", check.get("when"))
        try:
            holds = is_truthy(render_value(condition, dict(context)))
            message = str(check.get("message"))
        except TemplateError as error:
            holds, message = False, f"{check.get('message')} (the condition could not be rendered: {error})"
        if holds:
            continue
        behavior = str(check.get("behavior") or "BLOCK_EXECUTION").upper()
        if behavior == "BLOCK_EXECUTION":
            raise ExecutionBlocked(message)
        if behavior == "FAIL_EXECUTION":
            return message
    return None


def sync_schedules(flow: Flow) -> None:
    """The flow's Schedule triggers (states, PeriodicTasks) follow its YAML, in the transaction
    that changed it."""
    from scheduler.service import sync_flow

    sync_flow(flow)

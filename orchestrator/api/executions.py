"""Executions and their logs over HTTP, as Kestra's `/api/v1/executions` and `/api/v1/logs`.

Creating goes through repository.create_execution; kill, restart, replay, resume and a task
run's new state are the executor's own actions (executor/service.py), taken under the
execution's lock. These views read the request, call one of them and shape the answer.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from executor import service
from orchestrator import repository
from orchestrator.api import serializers
from orchestrator.api.access import readable, require
from orchestrator.api.base import ERRORS, ApiView, date_param, whole_number
from orchestrator.api.errors import bad_request, domain_errors, not_found, too_large
from orchestrator.api.pagination import ordering, page_and_size, paged
from orchestrator.kestra_json import execution_json, log_json
from orchestrator.models import Execution, Flow, LogEntry, TaskRun
from orchestrator.permissions import Right, under
from orchestrator.states import State

FORM_PARSERS = [MultiPartParser, FormParser, JSONParser]
WITH_CONFLICT = {**ERRORS, 409: serializers.Error}
_SORTS = {
    "id": "id", "namespace": "namespace", "flowId": "flow_id", "flowRevision": "flow_revision",
    "state.current": "state", "state.startDate": "start_date", "state.endDate": "end_date",
}
_LABEL = OpenApiParameter("labels", str, many=True, description="`key:value`, repeatable")
_INPUTS_BODY = {"multipart/form-data": {"type": "object", "additionalProperties": True,
                                        "description": "one field per input; FILE inputs as uploaded files"}}


def execution_response(execution: Execution, status_code: int = status.HTTP_200_OK) -> Response:
    execution.refresh_from_db()
    return Response(execution_json(execution, execution.task_runs.order_by("seq")), status=status_code)


def executions_json(rows: list[Execution]) -> list[dict[str, Any]]:
    """Several executions with their task runs, read in one query."""
    runs: dict[str, list[TaskRun]] = defaultdict(list)
    for run in TaskRun.objects.filter(execution_id__in=[row.id for row in rows]).order_by("execution_id", "seq"):
        runs[run.execution_id].append(run)
    return [execution_json(row, runs[row.id]) for row in rows]


def _execution(request, execution_id: str, right: Right = Right.READ) -> Execution:
    """The execution, if the user has `right` in its namespace (one who may not read it is told
    it does not exist)."""
    missing = f"execution {execution_id} does not exist"
    execution = Execution.objects.filter(id=execution_id).first()
    if execution is None:
        raise not_found(missing)
    require(request, right, execution.namespace, hidden=missing)
    return execution


def _labels(values: list[str]) -> list[dict[str, str]]:
    labels, problems = [], []
    for value in values:
        key, colon, text = value.partition(":")
        if not colon or not key:
            problems.append({"path": "labels", "message": f"{value!r} is not key:value", "line": None})
        labels.append({"key": key, "value": text})
    if problems:
        raise bad_request("Labels are given as key:value", problems)
    return labels


def _flag(request, name: str) -> bool:
    return str(request.query_params.get(name, "false")).lower() in {"true", "1", "yes"}


def _revision(request) -> int | None:
    return whole_number(request.query_params.get("revision"), "revision")


def _form_values(data: Any) -> dict[str, Any]:
    """Inputs from a form (the last value of a repeated field) or a JSON object."""
    if hasattr(data, "dict"):
        return data.dict()
    if isinstance(data, dict):
        return dict(data)
    raise bad_request("Send the inputs as form fields (multipart/form-data) or a JSON object")


def create_execution(request, namespace: str, flow_id: str) -> Response:
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > settings.HARRIER_MAX_UPLOAD_BYTES:
        raise too_large(f"The request is larger than {settings.HARRIER_MAX_UPLOAD_BYTES} bytes")
    labels = _labels(request.query_params.getlist("labels"))
    revision = _revision(request)
    schedule_date = date_param(request.query_params, "scheduleDate") if request.query_params.get("scheduleDate") else None
    inputs = _form_values(request.data)
    uploads = getattr(request, "FILES", {}) or {}
    for name in uploads:
        inputs.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="harrier-upload-") as folder, domain_errors():
        files = {name: _keep(folder, name, upload) for name, upload in uploads.items()}
        execution = repository.create_execution(namespace, flow_id, inputs=inputs, labels=labels,
                                                revision=revision, files=files, schedule_date=schedule_date)
    if _flag(request, "wait"):
        _wait_for_end(execution.id, settings.HARRIER_API_WAIT_SECONDS)
    return execution_response(execution)


def _keep(folder: str, name: str, upload) -> Path:
    """An uploaded file as a local file named as the client named it (its name is kept in the
    internal storage), in a folder of its own per input."""
    filename = os.path.basename(str(upload.name or "").replace("\\", "/")).strip() or name
    if filename in {".", ".."}:
        filename = name
    target = Path(folder) / f"{len(os.listdir(folder))}" / filename
    target.parent.mkdir()
    with open(target, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return target


def _wait_for_end(execution_id: str, timeout: float) -> None:
    """Poll the execution's state until it ends or the timeout passes (then it is answered as it
    stands: a client keeps polling GET /executions/{id})."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        state = Execution.objects.filter(id=execution_id).values_list("state", flat=True).first()
        if state is None or State(state).is_terminal:
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


class ExecutionCreate(ApiView):
    parser_classes = FORM_PARSERS
    unsafe_right = Right.EXECUTE

    @extend_schema(operation_id="createExecution", tags=["Executions"], request=_INPUTS_BODY,
                   parameters=[_LABEL, OpenApiParameter("wait", bool, description="answer once the execution ended "
                                                        "(at most HARRIER_API_WAIT_SECONDS)"),
                               OpenApiParameter("revision", int, description="a revision other than the latest"),
                               OpenApiParameter("scheduleDate", OpenApiTypes.DATETIME,
                                                description="start at this date instead of now (it stays CREATED "
                                                            "until then)")],
                   responses={200: serializers.Execution, **WITH_CONFLICT, 413: serializers.Error},
                   summary="Create an execution of a flow")
    def post(self, request, namespace: str, flow_id: str):
        return create_execution(request, namespace, flow_id)


class ExecutionSearch(ApiView):
    @extend_schema(operation_id="searchExecutions", tags=["Executions"],
                   parameters=[
                       OpenApiParameter("namespace", str, description="the namespace and its sub-namespaces"),
                       OpenApiParameter("flowId", str),
                       OpenApiParameter("state", str, many=True, enum=[s.value for s in State]),
                       _LABEL,
                       OpenApiParameter("startDate", OpenApiTypes.DATETIME, description="started at or after"),
                       OpenApiParameter("endDate", OpenApiTypes.DATETIME, description="ended at or before"),
                       OpenApiParameter("page", int, description="from 1"),
                       OpenApiParameter("size", int, description="at most 500"),
                       OpenApiParameter("sort", str, many=True, description="e.g. `state.startDate:desc` (default)"),
                   ], responses={200: serializers.PagedExecutions, **ERRORS}, summary="Search executions")
    def get(self, request):
        params = request.query_params
        page, size = page_and_size(params)
        executions = readable(request, Execution.objects.all())
        namespace = params.get("namespace")
        if namespace:
            executions = executions.filter(under(namespace))
        if params.get("flowId"):
            executions = executions.filter(flow_id=params["flowId"])
        states = params.getlist("state")
        unknown = [value for value in states if value not in State.__members__]
        if unknown:
            raise bad_request(f"Unknown state {', '.join(unknown)}",
                              [{"path": "state", "message": f"unknown state {value!r}", "line": None}
                               for value in unknown])
        if states:
            executions = executions.filter(state__in=states)
        for label in _labels(params.getlist("labels")):
            executions = executions.filter(_has_label(label))
        if params.get("startDate"):
            executions = executions.filter(start_date__gte=date_param(params, "startDate"))
        if params.get("endDate"):
            executions = executions.filter(end_date__lte=date_param(params, "endDate"))
        executions = executions.order_by(*ordering(params, _SORTS, ["-start_date"]), "-id")
        rows, total, exact = paged(executions, page, size)
        return Response({"results": executions_json(rows), "total": total, "totalIsExact": exact})


def _has_label(label: dict[str, str]) -> Q:
    if connection.vendor == "postgresql":
        return Q(labels__contains=[label])  # jsonb @>, served by the labels' GIN index
    # SQLite (server local) has no JSON containment; the list is stored as json.dumps writes it.
    import json

    return Q(labels__icontains=json.dumps(label))


class ExecutionDetail(ApiView):
    checks_namespaces = True

    @extend_schema(operation_id="getExecution", tags=["Executions"], responses={200: serializers.Execution, **ERRORS},
                   summary="Get an execution")
    def get(self, request, execution_id: str):
        return execution_response(_execution(request, execution_id))

    @extend_schema(operation_id="deleteExecution", tags=["Executions"],
                   parameters=[OpenApiParameter("deleteLogs", bool, description="default true"),
                               OpenApiParameter("deleteStorage", bool, description="its files; default true")],
                   responses={204: None, **WITH_CONFLICT}, summary="Delete an ended execution")
    def delete(self, request, execution_id: str):
        keep = {name: request.query_params.get(name, "true").lower() != "false" for name in ("deleteLogs", "deleteStorage")}
        _execution(request, execution_id, Right.EXECUTE)
        with domain_errors():
            repository.delete_execution(execution_id, logs=keep["deleteLogs"], files=keep["deleteStorage"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExecutionKill(ApiView):
    checks_namespaces = True

    @extend_schema(operation_id="killExecution", tags=["Executions"], request=None,
                   responses={202: None, **WITH_CONFLICT}, summary="Kill an execution and the subflows it waits for")
    def delete(self, request, execution_id: str):
        _execution(request, execution_id, Right.EXECUTE)
        with domain_errors():
            service.kill_execution(execution_id)
        return Response(status=status.HTTP_202_ACCEPTED)


class _ExecutionAction(ApiView):
    """A POST on /executions/{executionId}/{action}. Its path has the shape of the creation of an
    execution of flow `{action}` in namespace `{executionId}`: when no such execution exists and
    that flow does, it is that creation (Kestra tells them apart the same way, by what exists)."""

    action = ""
    parser_classes = FORM_PARSERS
    checks_namespaces = True

    def post(self, request, execution_id: str):
        if (not Execution.objects.filter(id=execution_id).exists()
                and Flow.objects.filter(namespace=execution_id, flow_id=self.action, deleted=False).exists()):
            require(request, Right.EXECUTE, execution_id)
            return create_execution(request, execution_id, self.action)
        _execution(request, execution_id, Right.EXECUTE)
        return self.act(request, execution_id)

    def act(self, request, execution_id: str) -> Response:
        raise NotImplementedError


class ExecutionRestart(_ExecutionAction):
    action = "restart"

    @extend_schema(operation_id="restartExecution", tags=["Executions"], request=None,
                   parameters=[OpenApiParameter("revision", int, description="restart on another revision (a new "
                                                "execution)")],
                   responses={200: serializers.Execution, **WITH_CONFLICT},
                   summary="Run the failed task runs of a FAILED or KILLED execution again")
    def post(self, request, execution_id: str):
        return super().post(request, execution_id)

    def act(self, request, execution_id: str) -> Response:
        with domain_errors():
            restarted = service.restart_execution(execution_id, _revision(request))
        return execution_response(restarted or Execution.objects.get(id=execution_id))


class ExecutionReplay(_ExecutionAction):
    action = "replay"

    @extend_schema(operation_id="replayExecution", tags=["Executions"], request=None,
                   parameters=[OpenApiParameter("taskRunId", str, description="replay from this task run (default: "
                                                "everything runs again)"),
                               OpenApiParameter("revision", int)],
                   responses={200: serializers.Execution, **WITH_CONFLICT},
                   summary="A new execution keeping what ran before a task run")
    def post(self, request, execution_id: str):
        return super().post(request, execution_id)

    def act(self, request, execution_id: str) -> Response:
        with domain_errors():
            replay = service.replay_execution(execution_id, request.query_params.get("taskRunId") or None,
                                              _revision(request))
        return execution_response(replay)


class ExecutionResume(_ExecutionAction):
    action = "resume"

    @extend_schema(operation_id="resumeExecution", tags=["Executions"], request=_INPUTS_BODY,
                   responses={204: None, **WITH_CONFLICT}, summary="Resume a PAUSED execution with the Pause's "
                                                                   "onResume inputs")
    def post(self, request, execution_id: str):
        return super().post(request, execution_id)

    def act(self, request, execution_id: str) -> Response:
        inputs = _form_values(request.data)
        with domain_errors():
            service.resume_execution(execution_id, inputs)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExecutionChangeState(_ExecutionAction):
    action = "state"

    @extend_schema(operation_id="changeTaskRunState", tags=["Executions"], request=serializers.ChangeTaskRunState,
                   responses={200: serializers.Execution, **WITH_CONFLICT},
                   summary="Give an ended task run another state; the execution goes on from there")
    def post(self, request, execution_id: str):
        return super().post(request, execution_id)

    def act(self, request, execution_id: str) -> Response:
        body = serializers.ChangeTaskRunState(data=request.data)
        body.is_valid(raise_exception=True)
        execution = Execution.objects.get(id=execution_id)
        with domain_errors():
            service.change_task_run_state(execution_id, body.validated_data["taskRunId"],
                                          State(body.validated_data["state"]))
        return execution_response(execution)


_LEVELS = LogEntry.LEVELS


def _logs(request, execution_id: str):
    _execution(request, execution_id)
    logs = LogEntry.objects.filter(execution_id=execution_id)
    level = request.query_params.get("minLevel")
    if level:
        if level not in _LEVELS:
            raise bad_request(f"minLevel is one of {', '.join(_LEVELS)}")
        logs = logs.filter(level__in=_LEVELS[_LEVELS.index(level):])
    for param, field in (("taskRunId", "task_run_id"), ("taskId", "task_id")):
        if request.query_params.get(param):
            logs = logs.filter(**{field: request.query_params[param]})
    return logs.order_by("timestamp", "id")


_LOG_FILTERS = [
    OpenApiParameter("minLevel", str, enum=_LEVELS),
    OpenApiParameter("taskRunId", str),
    OpenApiParameter("taskId", str),
]


class ExecutionLogs(ApiView):
    checks_namespaces = True  # the execution's, once found

    @extend_schema(operation_id="listExecutionLogs", tags=["Logs"], parameters=_LOG_FILTERS,
                   responses={200: serializers.LogLine(many=True), **ERRORS}, summary="The log lines of an execution")
    def get(self, request, execution_id: str):
        return Response([log_json(entry) for entry in _logs(request, execution_id).iterator(chunk_size=2000)])


class ExecutionLogsDownload(ApiView):
    checks_namespaces = True  # the execution's, once found

    @extend_schema(operation_id="downloadExecutionLogs", tags=["Logs"], parameters=_LOG_FILTERS,
                   responses={(200, "text/plain"): OpenApiTypes.STR, **ERRORS},
                   summary="The log lines of an execution as a text file")
    def get(self, request, execution_id: str):
        lines = _logs(request, execution_id)
        response = StreamingHttpResponse(_log_text(lines), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{execution_id}.log"'
        return response


def _log_text(logs) -> Iterator[str]:
    for entry in logs.iterator(chunk_size=2000):
        task = f" [{entry.task_id}]" if entry.task_id else ""
        yield f"{repository.iso(entry.timestamp)} {entry.level}{task} {entry.message}\n"

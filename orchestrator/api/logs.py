"""Searching the log lines of every execution, as Kestra's `GET /api/v1/logs/search`.

Pages are bounded as every search of the API is (orchestrator/api/pagination.py). The filters
are served by LogEntry's indexes: by date, by namespace prefix and flow, and on PostgreSQL a
trigram index for the text of `q` (migration 0007), so a search stays fast on a large table.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as fields
from rest_framework.response import Response

from orchestrator.api import serializers
from orchestrator.api.access import readable
from orchestrator.api.base import ERRORS, ApiView, date_param
from orchestrator.api.errors import bad_request
from orchestrator.api.pagination import ordering, page_and_size, paged
from orchestrator.kestra_json import log_json
from orchestrator.models import Execution, LogEntry
from orchestrator.permissions import under

LEVELS = LogEntry.LEVELS
_SORTS = {"timestamp": "timestamp", "namespace": "namespace", "flowId": "flow_id", "executionId": "execution_id"}


class PagedLogs(fields.Serializer):
    results = serializers.LogLine(many=True)
    total = fields.IntegerField(help_text="matching lines, counted up to 10,000")
    totalIsExact = fields.BooleanField(help_text="false when there are more than `total`")


def min_level(value: str | None) -> list[str] | None:
    """The levels from `value` up (None: every level)."""
    if not value:
        return None
    if value not in LEVELS:
        raise bad_request(f"minLevel is one of {', '.join(LEVELS)}",
                          [{"path": "minLevel", "message": f"unknown level {value!r}", "line": None}])
    return LEVELS[LEVELS.index(value):]


def search_logs(request) -> QuerySet:
    params = request.query_params
    logs = readable(request, LogEntry.objects.all())
    if params.get("q"):
        logs = logs.filter(message__icontains=params["q"])
    namespace = params.get("namespace")
    if namespace:
        logs = logs.filter(under(namespace))
    if params.get("flowId"):
        logs = logs.filter(flow_id=params["flowId"])
    if params.get("triggerId"):
        started = Execution.objects.filter(trigger__id=params["triggerId"]).values("id")
        logs = logs.filter(execution_id__in=started)
    levels = min_level(params.get("minLevel"))
    if levels:
        logs = logs.filter(level__in=levels)
    if params.get("startDate"):
        logs = logs.filter(timestamp__gte=date_param(params, "startDate"))
    if params.get("endDate"):
        logs = logs.filter(timestamp__lte=date_param(params, "endDate"))
    return logs.order_by(*ordering(params, _SORTS, ["-timestamp"]), "-id")


class LogSearch(ApiView):
    @extend_schema(operation_id="searchLogs", tags=["Logs"],
                   parameters=[
                       OpenApiParameter("q", str, description="text the message contains (any case)"),
                       OpenApiParameter("namespace", str, description="the namespace and its sub-namespaces"),
                       OpenApiParameter("flowId", str),
                       OpenApiParameter("triggerId", str, description="lines of executions this trigger started"),
                       OpenApiParameter("minLevel", str, enum=LEVELS),
                       OpenApiParameter("startDate", OpenApiTypes.DATETIME, description="logged at or after"),
                       OpenApiParameter("endDate", OpenApiTypes.DATETIME, description="logged at or before"),
                       OpenApiParameter("page", int, description="from 1"),
                       OpenApiParameter("size", int, description="at most 500"),
                       OpenApiParameter("sort", str, many=True, description="e.g. `timestamp:desc` (default); "
                                                                             f"one of {', '.join(_SORTS)}"),
                   ], responses={200: PagedLogs, **ERRORS}, summary="Search the log lines of all executions")
    def get(self, request):
        page, size = page_and_size(request.query_params)
        rows, total, exact = paged(search_logs(request), page, size)
        return Response({"results": [log_json(row) for row in rows], "total": total, "totalIsExact": exact})

"""What every API view shares: authentication from settings, the namespace permissions, the
checks every request passes, and the error answers the OpenAPI document lists for operations."""

from __future__ import annotations

from datetime import datetime, timezone

from django.utils.dateparse import parse_datetime
from rest_framework.views import APIView

from orchestrator.api.access import NamespacePermission
from orchestrator.api.errors import bad_request, too_large
from orchestrator.api.serializers import Error

ERRORS = {400: Error, 401: Error, 403: Error, 404: Error}
# PostgreSQL's integer columns (revisions) hold no more.
MAX_INT = 2**31 - 1


class ApiView(APIView):
    permission_classes = [NamespacePermission]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # PostgreSQL text holds no NUL character: refuse it here rather than fail in a query.
        values = [*kwargs.values(), *(v for key in request.query_params for v in [key, *request.query_params.getlist(key)])]
        if any("\x00" in str(value) for value in values):
            raise bad_request("The request's path or parameters contain a NUL character")


def whole_number(value: str | None, name: str) -> int | None:
    """A query parameter that is a whole number from 1 (None when absent)."""
    if value in (None, ""):
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_INT:
        raise bad_request(f"{name} must be a whole number of at least 1",
                          [{"path": name, "message": "a whole number of at least 1", "line": None}])
    return int(value)


def date_param(params, name: str) -> datetime:
    """A date-time parameter, in UTC: PostgreSQL refuses offsets past 15:59, which ISO-8601 allows."""
    try:
        moment = parse_datetime(params[name].replace(" ", "+"))
        if moment is not None:
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # well formed, but no such date, or none in UTC (year 1 east of it)
        moment = None
    if moment is None:
        raise bad_request(f"{name} is not an ISO-8601 date-time",
                          [{"path": name, "message": "an ISO-8601 date-time, e.g. 2024-01-31T12:00:00Z", "line": None}])
    return moment


def refuse_larger_than(request, limit: int, what: str = "The request") -> None:
    """413 before the body is read, when its declared length is over `limit` bytes (an upload is
    otherwise written to disk whole before a view sees it)."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"{what} is larger than {limit} bytes")

"""Kestra's paging: `page` (from 1), `size` and `sort=field:asc|desc`, answered with
`{"results": […], "total": n}`.

Pages are bounded so that no request scans a large repository: `size` is at most MAX_SIZE and
a page may not start past MAX_OFFSET (narrow the filters, or page by date, to go further).
`total` is counted up to COUNT_LIMIT rows; `totalIsExact` says whether it was reached.
"""

from __future__ import annotations

from typing import Any, Mapping

from django.db.models import QuerySet

from orchestrator.api.errors import bad_request

DEFAULT_SIZE = 10
MAX_SIZE = 500
MAX_OFFSET = 10_000
COUNT_LIMIT = 10_000


def page_and_size(params: Mapping[str, Any]) -> tuple[int, int]:
    page = _positive(params, "page", 1)
    size = _positive(params, "size", DEFAULT_SIZE)
    if size > MAX_SIZE:
        raise bad_request(f"size is at most {MAX_SIZE}",
                          [{"path": "size", "message": f"at most {MAX_SIZE}", "line": None}])
    if (page - 1) * size > MAX_OFFSET:
        raise bad_request(f"A page may not start past result {MAX_OFFSET}: narrow the search with filters "
                          f"(dates, namespace, flow, state)",
                          [{"path": "page", "message": f"(page - 1) * size is at most {MAX_OFFSET}", "line": None}])
    return page, size


def ordering(params: Any, fields: Mapping[str, str], default: list[str]) -> list[str]:
    """Kestra's `sort` values (`state.startDate:desc`, repeatable or comma-separated) as
    Django's order_by arguments, for the fields the endpoint sorts on."""
    values = params.getlist("sort") if hasattr(params, "getlist") else [params.get("sort")] if params.get("sort") else []
    order = []
    for value in (part.strip() for item in values for part in str(item).split(",")):
        if not value:
            continue
        name, _, direction = value.partition(":")
        direction = direction.lower() or "asc"
        if name not in fields or direction not in {"asc", "desc"}:
            raise bad_request(f"Cannot sort by {value!r}: use one of {', '.join(sorted(fields))} with :asc or :desc",
                              [{"path": "sort", "message": f"unknown sort {value!r}", "line": None}])
        order.append(("-" if direction == "desc" else "") + fields[name])
    return order or list(default)


def paged(queryset: QuerySet, page: int, size: int) -> tuple[list[Any], int, bool]:
    """One page of the queryset, the number of matching rows (up to COUNT_LIMIT) and whether that
    number is exact."""
    rows = list(queryset[(page - 1) * size:page * size])
    if page == 1 and len(rows) < size:
        return rows, len(rows), True
    counted = queryset.order_by()[:COUNT_LIMIT + 1].count()
    return rows, min(counted, COUNT_LIMIT), counted <= COUNT_LIMIT


def _positive(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise bad_request(f"{name} must be a whole number of at least 1",
                          [{"path": name, "message": "a whole number of at least 1", "line": None}])
    return number

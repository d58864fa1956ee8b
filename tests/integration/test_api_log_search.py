"""Searching the log lines of every execution: its filters, sorting, bounded pages, refusals, and
the indexes that keep it fast on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from orchestrator.models import Execution, LogEntry

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def lines(namespace):
    """Lines of two flows of the namespace, one of a sub-namespace and one of a sibling namespace."""
    rows = [
        (namespace, "etl", "INFO", "Loading TABLE customers", 0),
        (namespace, "etl", "WARN", "table customers is large", 1),
        (namespace, "etl", "ERROR", "load failed", 2),
        (namespace, "report", "DEBUG", "rendering", 3),
        (f"{namespace}.sub", "etl", "INFO", "sub table", 4),
        (f"{namespace}x", "etl", "ERROR", "sibling table", 5),
    ]
    LogEntry.objects.bulk_create([
        LogEntry(execution_id=f"e{minute}", namespace=ns, flow_id=flow, level=level, message=message,
                 timestamp=T0 + timedelta(minutes=minute))
        for ns, flow, level, message, minute in rows
    ])
    return rows


def search(client, **params) -> dict:
    response = client.get("/api/v1/logs/search", params)
    assert response.status_code == 200, response.content
    return response.json()


def messages(body: dict) -> list[str]:
    return [line["message"] for line in body["results"]]


def test_lines_are_searched_by_text_namespace_flow_level_and_date(lines, staff, namespace):
    assert messages(search(staff, namespace=namespace, q="table")) == [
        "sub table", "table customers is large", "Loading TABLE customers"]
    assert messages(search(staff, namespace=namespace, flowId="etl", minLevel="WARN")) == [
        "load failed", "table customers is large"]
    assert messages(search(staff, namespace=namespace, startDate="2026-03-01T12:01:00Z",
                           endDate="2026-03-01T12:03:00+00:00")) == ["rendering", "load failed", "table customers is large"]
    body = search(staff, namespace=namespace, sort="timestamp:asc", size=2, page=2)
    assert messages(body) == ["load failed", "rendering"]
    assert (body["total"], body["totalIsExact"]) == (5, True)
    first = body["results"][0]
    assert first == {"namespace": namespace, "flowId": "etl", "executionId": "e2", "taskId": None, "taskRunId": None,
                     "attemptNumber": None, "level": "ERROR", "message": "load failed",
                     "timestamp": "2026-03-01T12:02:00.000Z"}


def test_lines_of_executions_a_trigger_started(lines, staff, namespace):
    Execution.objects.create(id="e3", namespace=namespace, flow_id="report", flow_revision=1, start_date=T0,
                             updated=T0, trigger={"id": "nightly", "type": "io.kestra.plugin.core.trigger.Schedule"})
    assert messages(search(staff, triggerId="nightly")) == ["rendering"]


def test_a_user_sees_only_the_lines_of_namespaces_they_may_read(lines, reader, namespace):
    assert search(reader, namespace=namespace) == {"results": [], "total": 0, "totalIsExact": True}


@pytest.mark.parametrize(("params", "problem"), [
    ({"minLevel": "LOUD"}, "minLevel is one of TRACE, DEBUG, INFO, WARN, ERROR"),
    ({"size": 501}, "size is at most 500"),
    ({"page": 0}, "page must be a whole number of at least 1"),
    ({"page": 100, "size": 500}, "A page may not start past result 10000"),
    ({"startDate": "yesterday"}, "startDate is not an ISO-8601 date-time"),
    ({"sort": "message:asc"}, "Cannot sort by 'message:asc'"),
])
def test_bad_parameters_are_refused_with_the_reason(staff, params, problem):
    response = staff.get("/api/v1/logs/search", params)
    assert response.status_code == 400
    assert response.json()["message"].startswith(problem)


def plan(query) -> str:
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # as the planner would choose on a large table
        try:
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("SET enable_seqscan = on")


def test_each_filter_has_an_index_on_postgresql(lines, namespace):
    from orchestrator.api.logs import search_logs

    class Request:
        def __init__(self, **params):
            from django.http import QueryDict

            self.query_params = QueryDict(mutable=True)
            self.query_params.update(params)
            self.user = type("Staff", (), {"is_staff": True, "is_authenticated": True, "is_active": True})()

    assert "log_message_trgm_idx" in plan(search_logs(Request(q="customers")))
    assert "log_namespace_prefix_idx" in plan(search_logs(Request(namespace=namespace)))
    assert "log_timestamp_idx" in plan(search_logs(Request()))
    for params in ({"namespace": namespace, "flowId": "etl"}, {"minLevel": "WARN", "startDate": "2026-03-01T12:00:00Z"},
                   {"q": "table", "namespace": namespace}):
        assert "Seq Scan" not in plan(search_logs(Request(**params))), params

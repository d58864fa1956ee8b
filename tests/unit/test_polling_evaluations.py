"""The pure parts of polling triggers' evaluations: reading a JDBC URL as libpq settings, turning
column values into JSON, and the fetchType the deprecated booleans mean."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from scheduler.triggers.jdbc_trigger import PostgresTriggerProperties, fetch_type
from workers.context import TaskFailure
from workers.triggers.postgresql import _connection_settings, _json_value


def props(url: str, **extra) -> PostgresTriggerProperties:
    return PostgresTriggerProperties.model_validate(
        {"id": "watch", "type": "io.kestra.plugin.jdbc.postgresql.Trigger", "url": url, "sql": "SELECT 1", **extra})


def test_a_jdbc_url_becomes_libpq_settings_with_a_statement_timeout():
    settings = _connection_settings(
        props("jdbc:postgresql://db.example:5433/shop?currentSchema=sales&sslmode=require&ApplicationName=etl",
              username="reader", password="s3cret"), seconds_left=12.5)
    assert {key: settings[key] for key in ("host", "port", "dbname", "user", "password", "sslmode",
                                           "application_name")} == {
        "host": "db.example", "port": "5433", "dbname": "shop", "user": "reader", "password": "s3cret",
        "sslmode": "require", "application_name": "etl"}
    assert settings["options"] == "-c statement_timeout=12500 -c search_path=sales"


def test_properties_win_over_the_url_and_ssl_mode_is_spelt_as_libpq_spells_it():
    settings = _connection_settings(props("jdbc:postgresql://db/shop?user=a&password=b", username="c",
                                          sslMode="VERIFY_FULL", timeZoneId="Europe/Paris"), seconds_left=3)
    assert (settings["user"], settings["password"], settings["sslmode"]) == ("c", "b", "verify-full")
    assert settings["options"] == "-c statement_timeout=3000 -c TimeZone=Europe/Paris"


def test_an_unknown_url_parameter_is_refused_by_name():
    with pytest.raises(TaskFailure, match="the URL parameter 'loginTimeout' is not supported"):
        _connection_settings(props("jdbc:postgresql://db/shop?loginTimeout=3"), seconds_left=10)


@pytest.mark.parametrize("value, expected", [
    (Decimal("12.00"), 12),
    (Decimal("3.50"), 3.5),
    (datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc), "2025-03-01T10:00:00+00:00"),
    (date(2025, 3, 1), "2025-03-01"),
    (timedelta(minutes=2), 120.0),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (b"\x00\xff", "AP8="),
    ({"nested": [Decimal("1.5")]}, {"nested": [1.5]}),
])
def test_column_values_become_json(value, expected):
    assert _json_value(value) == expected


@pytest.mark.parametrize("trigger, expected", [
    ({}, "NONE"),
    ({"fetch": True}, "FETCH"),
    ({"fetchOne": True, "fetch": True}, "FETCH_ONE"),
    ({"store": True}, "STORE"),
    ({"fetchType": "FETCH", "fetchOne": True}, "FETCH"),
])
def test_fetch_type_reads_the_deprecated_booleans_as_kestra_does(trigger, expected):
    assert fetch_type(trigger) == expected


def test_with_private_destinations_denied_a_private_database_is_refused(settings):
    settings.HARRIER_HTTP_DENY_PRIVATE = True
    with pytest.raises(TaskFailure, match=r"127\.0\.0\.1 \(127\.0\.0\.1\) is refused"):
        _connection_settings(props("jdbc:postgresql://127.0.0.1:5432/shop"), seconds_left=10)
    settings.HARRIER_HTTP_ALLOW_NETWORKS = "127.0.0.0/8, ::1"
    allowed = _connection_settings(props("jdbc:postgresql://localhost:5432/shop"), seconds_left=10)
    assert allowed["hostaddr"] in ("127.0.0.1", "::1")  # connected to by the address that was checked


def test_with_private_destinations_denied_a_private_s3_endpoint_is_refused(settings):
    from scheduler.triggers.storage_trigger import MinioTriggerProperties
    from workers.triggers.storage import _client

    trigger = MinioTriggerProperties.model_validate({
        "id": "watch", "type": "io.kestra.plugin.minio.Trigger", "endpoint": "http://127.0.0.1:9000",
        "bucket": "drops", "action": "NONE"})
    assert _client(trigger) is not None  # the guard is off by default
    settings.HARRIER_HTTP_DENY_PRIVATE = True
    with pytest.raises(TaskFailure, match=r"endpoint: 127\.0\.0\.1 \(127\.0\.0\.1\) is refused"):
        _client(trigger)
    settings.HARRIER_HTTP_ALLOW_NETWORKS = "127.0.0.0/8"
    assert _client(trigger) is not None

"""`io.kestra.plugin.jdbc.postgresql.Trigger` on a worker: run the query with psycopg against
the user's database (never Harrier's own: the URL is the flow's) and fire when it returns rows.

The JDBC URL is read as libpq reads a URI once its `jdbc:` is dropped; the JDBC parameters
with a libpq meaning are translated, any other is refused by name. With the SSRF guard on
(HARRIER_HTTP_DENY_PRIVATE), the host is resolved here, checked like an HTTP destination and
connected to by that address, so that a second resolution cannot lead elsewhere.
"""

from __future__ import annotations

import base64
import io
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson

from scheduler.triggers.jdbc_trigger import URL_PREFIX, PostgresTriggerProperties, fetch_type
from workers.context import RunContext, TaskFailure
from workers.http_guard import DestinationRefused, checked_addresses, policy_from_settings
from workers.triggers import Evaluation

CONNECT_TIMEOUT_SECONDS = 10
# JDBC URL parameters and the libpq keyword each one is.
_JDBC_PARAMETERS = {"user": "user", "password": "password", "sslmode": "sslmode", "ssl": None,
                    "applicationname": "application_name", "connecttimeout": "connect_timeout",
                    "currentschema": "options"}


def evaluate(props: PostgresTriggerProperties, ctx: RunContext, seconds_left: float) -> Evaluation:
    import psycopg
    from psycopg.rows import dict_row

    kind = fetch_type(props.model_dump())
    settings = _connection_settings(props, seconds_left)
    try:
        with psycopg.connect(**settings, row_factory=dict_row, autocommit=True) as connection:
            with connection.cursor() as cursor:
                cursor.execute(props.sql)
                if cursor.description is None:
                    raise TaskFailure("the query returned no result set: the trigger needs a query that returns rows")
                rows = [_json_row(row) for row in cursor.fetchall()]
    except psycopg.Error as error:
        raise TaskFailure(f"the query failed: {_first_line(error)}") from None
    if not rows:
        return Evaluation(fired=False)
    variables: dict[str, Any] = {"size": len(rows)}
    if kind == "FETCH_ONE":
        variables["row"] = rows[0]
    elif kind == "FETCH":
        variables["rows"] = rows
    elif kind == "STORE":
        variables["uri"] = _store(rows, ctx)
    return Evaluation(fired=True, variables=variables)


def _connection_settings(props: PostgresTriggerProperties, seconds_left: float) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    base, _, query = props.url[len("jdbc:"):].partition("?")
    settings: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        keyword = _JDBC_PARAMETERS.get(name.lower(), "")
        if keyword == "":
            raise TaskFailure(f"the URL parameter {name!r} is not supported (supported: "
                              f"{', '.join(sorted(_JDBC_PARAMETERS))})")
        if keyword == "options":
            settings["options"] = f"-c search_path={value}"
        elif keyword is not None:
            settings[keyword] = value
    try:
        settings.update(conninfo_to_dict(base))
    except Exception as error:  # noqa: BLE001 (psycopg raises its own kinds for a bad URI)
        raise TaskFailure(f"{URL_PREFIX}… URL cannot be read: {_first_line(error)}") from None
    if props.username is not None:
        settings["user"] = props.username
    if props.password is not None:
        settings["password"] = props.password
    if props.sslMode is not None:
        settings["sslmode"] = props.sslMode.lower().replace("_", "-")
    # The query must end before the evaluation's lease does.
    timeout_ms = max(int(seconds_left * 1000), 1000)
    session = [f"-c statement_timeout={timeout_ms}"]
    if props.timeZoneId:
        session.append(f"-c TimeZone={props.timeZoneId}")
    settings["options"] = " ".join([*session, *([settings["options"]] if "options" in settings else [])])
    settings.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    _guard(settings)
    return settings


def _guard(settings: dict[str, Any]) -> None:
    policy = policy_from_settings()
    if not policy.deny_private:
        return
    host = str(settings.get("host") or "")
    if not host or "," in host or host.startswith("/"):
        raise TaskFailure("with private destinations denied, the URL must name exactly one network host")
    port = int(str(settings.get("port") or 5432).split(",")[0])
    try:
        addresses = checked_addresses(host, port, policy)
    except DestinationRefused as refused:
        raise TaskFailure(str(refused)) from None
    settings["hostaddr"] = addresses[0]


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {str(name): _json_value(value) for name, value in row.items()}


def _json_value(value: Any) -> Any:
    """A column's value as JSON holds it (the execution's trigger variables are JSON)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return str(value)


def _store(rows: list[dict[str, Any]], ctx: RunContext) -> str:
    """The rows as one JSON object a line (readable as Ion) under the execution's trigger files."""
    from orchestrator.storage import StorageError, get_storage
    from orchestrator.storage.uris import execution_location

    job = ctx.job
    uri = execution_location(job["namespace"], job["flowId"], job["executionId"]).child(
        "trigger", job["task"]["id"], "rows.ion").uri
    data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    try:
        get_storage().put(uri, io.BytesIO(data))
    except StorageError as error:
        raise TaskFailure(f"the rows cannot be stored: {error}") from None
    return uri


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

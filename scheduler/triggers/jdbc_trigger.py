"""`io.kestra.plugin.jdbc.postgresql.Trigger`: run a query at an interval (on a worker) and
start an execution when it returns rows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from orchestrator.flowlang.types import is_dynamic
from scheduler.triggers import TriggerType, register
from scheduler.triggers.polling_base import PollingProperties

POSTGRESQL = "io.kestra.plugin.jdbc.postgresql.Trigger"
URL_PREFIX = "jdbc:postgresql://"


class PostgresTriggerProperties(PollingProperties):
    url: str = Field(min_length=1, description="jdbc:postgresql://host:port/database")
    username: str | None = None
    password: str | None = None
    sql: str = Field(min_length=1, description="The query; the trigger fires when it returns rows.")
    fetchType: Literal["STORE", "FETCH", "FETCH_ONE", "NONE"] | None = Field(
        None, description="FETCH_ONE: the first row as `trigger.row`; FETCH: every row as `trigger.rows`; "
                          "STORE: the rows in a file of the internal storage, `trigger.uri`; NONE: only "
                          "`trigger.size` (the default).")
    fetch: bool | None = Field(None, description="Deprecated: fetchType FETCH.")
    fetchOne: bool | None = Field(None, description="Deprecated: fetchType FETCH_ONE.")
    store: bool | None = Field(None, description="Deprecated: fetchType STORE.")
    fetchSize: int | None = Field(None, ge=1, description="Rows read from the server at a time.")
    timeZoneId: str | None = Field(None, description="The session's time zone.")
    sslMode: Literal["DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"] | None = None

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, value: Any) -> Any:
        if isinstance(value, str) and not is_dynamic(value) and not value.startswith(URL_PREFIX):
            raise ValueError(f"expected a PostgreSQL JDBC URL starting with {URL_PREFIX} (host:port/database)")
        return value


def fetch_type(trigger: dict[str, Any]) -> str:
    """The effective fetchType, the deprecated booleans read as Kestra reads them."""
    if trigger.get("fetchType"):
        return str(trigger["fetchType"])
    for flag, kind in (("fetchOne", "FETCH_ONE"), ("store", "STORE"), ("fetch", "FETCH")):
        if trigger.get(flag):
            return kind
    return "NONE"


register(TriggerType(name=POSTGRESQL, properties=PostgresTriggerProperties, kind="polling",
                     title="Start an execution when a PostgreSQL query returns rows"))

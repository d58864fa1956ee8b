"""`io.kestra.plugin.core.http.Trigger`: call a URL at an interval (on a worker) and start an
execution when the response meets `responseCondition`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator.flowlang.types import Duration
from scheduler.triggers import TriggerBase, TriggerType, register

NAME = "io.kestra.plugin.core.http.Trigger"


class HttpTriggerProperties(TriggerBase):
    uri: str = Field(min_length=1, description="The URL to call.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"] | None = None
    headers: dict[str, Any] | None = None
    body: str | None = None
    formData: dict[str, Any] | None = None
    contentType: str | None = None
    options: dict[str, Any] | None = Field(None, description="Timeouts, redirects, authentication…")
    sslOptions: dict[str, Any] | None = None
    responseCondition: str | None = Field(
        None, description="Fire when this expression is true (default: {{ response.statusCode < 400 }})."
    )
    interval: Duration | None = Field(None, description="Time between calls (default PT60S).")
    encryptBody: bool | None = None


register(TriggerType(name=NAME, properties=HttpTriggerProperties, kind="polling",
                     aliases=("io.kestra.plugin.fs.http.Trigger",), title="Start an execution from an HTTP poll"))

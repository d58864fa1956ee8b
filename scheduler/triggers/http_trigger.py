"""`io.kestra.plugin.core.http.Trigger`: call a URL at an interval (on a worker) and start an
execution when the response meets `responseCondition`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from scheduler.triggers import TriggerType, register
from scheduler.triggers.polling_base import PollingProperties
from workers.tasktypes.http import METHODS, HttpOptions, SslOptions

NAME = "io.kestra.plugin.core.http.Trigger"
DEFAULT_CONDITION = "{{ response.statusCode < 400 }}"


class HttpTriggerProperties(PollingProperties):
    uri: str = Field(min_length=1, description="The URL to call.")
    method: Literal[METHODS] | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    formData: dict[str, Any] | None = None
    contentType: str | None = None
    options: HttpOptions | None = Field(None, description="Timeouts, redirects, authentication…")
    sslOptions: SslOptions | None = Field(None, description="Deprecated: options.ssl.")
    responseCondition: str | None = Field(
        None, description=f"Fire when this expression is true (default: {DEFAULT_CONDITION}); it reads "
                          "`response.statusCode`, `response.body` and `response.headers`.")
    encryptBody: bool | None = None


register(TriggerType(name=NAME, properties=HttpTriggerProperties, kind="polling",
                     aliases=("io.kestra.plugin.fs.http.Trigger",), title="Start an execution from an HTTP poll"))

"""`io.kestra.plugin.core.http.Trigger` on a worker: the request is an HTTP Request task's
(the same SSRF guard, redirects, timeouts and authentication); a response fires when
`responseCondition` is true of it."""

from __future__ import annotations

from typing import Any

from orchestrator.templating import is_truthy, render_value
from scheduler.triggers.http_trigger import DEFAULT_CONDITION, HttpTriggerProperties
from workers.context import RunContext
from workers.tasktypes.http import REQUEST, RequestProperties, run_request
from workers.triggers import Evaluation

RAW = frozenset({"responseCondition"})  # rendered after the call, with `response`


def evaluate(props: HttpTriggerProperties, ctx: RunContext) -> Evaluation:
    outputs = run_request(_request(props), ctx)
    response = {"statusCode": outputs["code"], "body": outputs.get("body"), "headers": outputs["headers"]}
    condition = props.responseCondition or DEFAULT_CONDITION
    holds = render_value(condition, {**ctx.variables, "response": response}, hooks=ctx.hooks)
    return Evaluation(fired=is_truthy(holds), variables=outputs)


def _request(props: HttpTriggerProperties) -> RequestProperties:
    """The Request task that makes the call: any status is an answer for the condition to judge,
    unless `options.allowedResponseCodes` says otherwise."""
    options: dict[str, Any] = props.options.model_dump(exclude_none=True) if props.options else {}
    if not options.get("allowedResponseCodes"):
        options["allowFailed"] = True
    fields: dict[str, Any] = {"id": props.id, "type": REQUEST, "uri": props.uri, "method": props.method or "GET",
                              "headers": props.headers, "body": props.body, "formData": props.formData,
                              "options": options, "encryptBody": bool(props.encryptBody)}
    if props.contentType is not None:
        fields["contentType"] = props.contentType
    if props.sslOptions is not None:
        fields["sslOptions"] = props.sslOptions.model_dump(exclude_none=True)
    return RequestProperties.model_validate(fields)

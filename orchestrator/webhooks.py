"""Webhook triggers (`io.kestra.plugin.core.trigger.Webhook`): an HTTP call to
`/api/v1/executions/webhook/{namespace}/{flowId}/{key}` starts an execution of the flow.

No authentication: the key is the secret. So whatever is wrong — no such flow, a deleted or
disabled flow, no Webhook trigger, a disabled one, a wrong key, conditions that do not hold —
the answer is the same 404 with the same body, and the key is compared in constant time, so
that a caller learns nothing about which flows or triggers exist. Kestra answers a call whose
conditions are false with a 404 too.

The execution's `trigger` holds `body` (parsed when it is JSON, else the text), `headers` and
`parameters` (name → list of values, names of headers in lower case). The answer is the
execution in Kestra's JSON; with `wait: true` it comes once the execution ended (at most
HARRIER_WEBHOOK_WAIT_SECONDS, then as it stands), and with `returnOutputs` too it is the
execution's outputs. A body over HARRIER_WEBHOOK_MAX_BYTES is refused with 413 before anything
is looked up.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from typing import Any, Mapping

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from orchestrator.models import Execution, Flow
from orchestrator.states import State
from orchestrator.templating import TemplateError, has_expression, render, render_value
from workers.environment import ambient

logger = logging.getLogger("harrier.webhooks")

WEBHOOK_TYPES = frozenset({"io.kestra.plugin.core.trigger.Webhook", "io.kestra.core.models.triggers.types.Webhook"})
NOT_FOUND_BODY = {"message": "Not Found"}


def max_bytes() -> int:
    return int(os.environ.get("HARRIER_WEBHOOK_MAX_BYTES", str(1024 * 1024)))


def wait_seconds() -> float:
    return float(os.environ.get("HARRIER_WEBHOOK_WAIT_SECONDS", "60"))


def not_found() -> JsonResponse:
    return JsonResponse(NOT_FOUND_BODY, status=404)


@csrf_exempt
@require_http_methods(["GET", "POST", "PUT"])
def webhook(request: HttpRequest, namespace: str, flow_id: str, key: str) -> HttpResponse:
    from orchestrator import kestra_json
    from orchestrator.repository import create_execution

    body = _read_body(request)
    if body is None:
        return JsonResponse({"message": f"The request body is larger than {max_bytes()} bytes"}, status=413)
    found = _find(namespace, flow_id, key)
    if found is None:
        return not_found()
    flow, trigger = found
    variables = {"body": _parse_body(request, body), "headers": _headers(request),
                 "parameters": {name: request.GET.getlist(name) for name in request.GET}}
    context = {"flow": {"id": flow.flow_id, "namespace": flow.namespace, "revision": flow.revision},
               "trigger": variables, **ambient()}
    if not _conditions_hold(trigger, context):
        return not_found()
    try:
        inputs = render_value(trigger.get("inputs") or {}, context)
        execution = create_execution(
            flow.namespace, flow.flow_id, inputs=inputs, labels=trigger.get("labels"),
            trigger={"id": trigger.get("id"), "type": trigger.get("type"), "variables": variables},
        )
    except (TemplateError, ValueError) as error:
        # The caller knew the key: it may learn why the execution could not start.
        return JsonResponse({"message": str(error)}, status=422)
    except LookupError:
        return not_found()  # deleted meanwhile
    if trigger.get("wait"):
        execution = _wait_for_end(execution.id, wait_seconds())
        if trigger.get("returnOutputs"):
            return JsonResponse(execution.outputs or {}, status=200)
    return JsonResponse(kestra_json.execution_json(execution, execution.task_runs.order_by("seq")), status=200)


def _read_body(request: HttpRequest) -> bytes | None:
    """The body, or None when it is larger than the limit (told by its length or found reading)."""
    limit = max_bytes()
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    data = request.read(limit + 1)
    return None if len(data) > limit else data


def _find(namespace: str, flow_id: str, key: str) -> tuple[Flow, Mapping[str, Any]] | None:
    """The flow and its enabled Webhook trigger whose key this is. Every Webhook trigger of the
    flow is compared, each in constant time."""
    from orchestrator.repository import FlowNotFound, flow_graph

    flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False, disabled=False).first()
    if flow is None:
        return None
    try:
        graph = flow_graph(flow.namespace, flow.flow_id, flow.revision)
    except FlowNotFound:
        return None
    context = {"flow": {"id": flow.flow_id, "namespace": flow.namespace, "revision": flow.revision}, **ambient()}
    matched = None
    given = key.encode()
    for trigger in graph.data.get("triggers") or ():
        if trigger.get("type") not in WEBHOOK_TYPES or trigger.get("disabled"):
            continue
        expected = trigger.get("key")
        if has_expression(expected):  # `{{ flow.id }}`, `{{ secret('WEBHOOK_KEY') }}`
            try:
                expected = render(expected, context)
            except TemplateError as error:
                logger.warning("webhook %s of %s.%s: its key cannot be rendered: %s", trigger.get("id"),
                               flow.namespace, flow.flow_id, error)
                continue
        if hmac.compare_digest(str(expected).encode(), given) and matched is None:
            matched = trigger
    if matched is None or _switched_off(flow, str(matched.get("id"))):
        return None
    return flow, matched


def _switched_off(flow: Flow, trigger_id: str) -> bool:
    """Whether the trigger was switched off by hand (the admin, the triggers API)."""
    from scheduler.models import TriggerState

    return TriggerState.objects.filter(namespace=flow.namespace, flow_id=flow.flow_id, trigger_id=trigger_id,
                                       disabled=True).exists()


def _parse_body(request: HttpRequest, body: bytes) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _headers(request: HttpRequest) -> dict[str, list[str]]:
    return {name.lower(): [value] for name, value in request.headers.items()}


def _conditions_hold(trigger: Mapping[str, Any], context: dict[str, Any]) -> bool:
    """Kestra's conditions on a webhook call: `Expression` (on `trigger.body`…) and the date ones."""
    from orchestrator.repository import now
    from scheduler.conditions import ConditionError, holds

    for condition in trigger.get("conditions") or ():
        try:
            if not holds(condition, now(), lambda value: render_value(value, context)):
                return False
        except (ConditionError, TemplateError) as error:
            logger.warning("webhook %s: condition not met: %s", trigger.get("id"), error)
            return False
    return True


def _wait_for_end(execution_id: str, timeout: float) -> Execution:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        execution = Execution.objects.get(id=execution_id)
        if State(execution.state).is_terminal or time.monotonic() >= deadline:
            return execution
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)

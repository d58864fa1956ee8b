"""Triggers over HTTP, as Kestra's `/api/v1/triggers`: search their states, switch them off and
on, unlock or restart them, start, pause, resume and delete backfills, one by one or in bulk.

A trigger is answered as Kestra's `{abstractTrigger, triggerContext}`: the trigger as its flow
declares it, and its state. Every change goes through scheduler/actions.py, which the admin
and `manage.py schedule` call too.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from django.db import transaction
from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from orchestrator.api.access import namespace_rights, readable, require
from orchestrator.api.base import ERRORS, ApiView
from orchestrator.api.errors import bad_request, conflict, not_found
from orchestrator.api.pagination import ordering, page_and_size, paged
from orchestrator.api.serializers import Error
from orchestrator.models import Flow
from orchestrator.permissions import Right, under
from scheduler import actions, service
from scheduler.dates import iso, parse_iso
from scheduler.models import TriggerState

TAGS = ["Triggers"]
_SORTS = {"triggerId": "trigger_id", "flowId": "flow_id", "namespace": "namespace", "date": "last_date",
          "nextExecutionDate": "next_date", "updatedDate": "updated"}
_CHANGES = {**ERRORS, 409: Error}


# --- shapes ---------------------------------------------------------------------------------------

class Backfill(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(required=False, allow_null=True, help_text="default: now")
    inputs = serializers.DictField(required=False, allow_null=True)
    labels = serializers.JSONField(required=False, allow_null=True,
                                   help_text="a map, or a list of {key, value}")
    currentDate = serializers.DateTimeField(read_only=True, allow_null=True,
                                            help_text="the next date the backfill replays")
    paused = serializers.BooleanField(read_only=True)


class TriggerKey(serializers.Serializer):
    namespace = serializers.CharField(max_length=255)
    flowId = serializers.CharField(max_length=255)
    triggerId = serializers.CharField(max_length=256)


class TriggerContext(TriggerKey):
    date = serializers.DateTimeField(read_only=True, help_text="every date up to this one was handled")
    nextExecutionDate = serializers.DateTimeField(read_only=True, allow_null=True)
    disabled = serializers.BooleanField(required=False, help_text="switched off by hand or by stopAfter")
    backfill = Backfill(required=False, allow_null=True)
    executionId = serializers.CharField(read_only=True, allow_null=True,
                                        help_text="the last execution the trigger started")
    evaluateRunningDate = serializers.DateTimeField(read_only=True, allow_null=True,
                                                    help_text="set while an evaluation holds the trigger")
    lockedUntil = serializers.DateTimeField(read_only=True, allow_null=True)
    stopAfter = serializers.ListField(child=serializers.CharField(), read_only=True, allow_null=True)
    updatedDate = serializers.DateTimeField(read_only=True)


class TriggerWithContext(serializers.Serializer):
    abstractTrigger = serializers.DictField(allow_null=True, help_text="the trigger as its flow declares it")
    triggerContext = TriggerContext(allow_null=True)


class PagedTriggers(serializers.Serializer):
    results = TriggerWithContext(many=True)
    total = serializers.IntegerField()


class SetDisabled(serializers.Serializer):
    triggers = TriggerKey(many=True, allow_empty=False)
    disabled = serializers.BooleanField()


class Bulk(serializers.Serializer):
    count = serializers.IntegerField(help_text="how many triggers changed")


_FILTERS = [
    OpenApiParameter("namespace", str, description="the namespace and its sub-namespaces"),
    OpenApiParameter("flowId", str),
    OpenApiParameter("q", str, description="a part of the trigger's, flow's or namespace's id"),
]
_PAGING = [
    OpenApiParameter("page", int, description="from 1"),
    OpenApiParameter("size", int, description="at most 500"),
    OpenApiParameter("sort", str, many=True, description="`triggerId:asc`, `nextExecutionDate:desc`…"),
]


# --- answers --------------------------------------------------------------------------------------

def _iso(moment) -> str | None:
    return iso(moment) if moment else None


def context_json(state: TriggerState, trigger: Mapping[str, Any] | None) -> dict[str, Any]:
    """Kestra's trigger context (`Trigger`) of one state."""
    return {
        "namespace": state.namespace, "flowId": state.flow_id, "triggerId": state.trigger_id,
        "date": _iso(state.last_date), "nextExecutionDate": _iso(state.next_date),
        "disabled": state.disabled, "backfill": _backfill_json(state, trigger), "executionId": state.execution_id,
        "evaluateRunningDate": _iso(state.evaluated_at) if state.locked_until else None,
        "lockedUntil": _iso(state.locked_until),
        "stopAfter": list(trigger.get("stopAfter") or ()) if trigger else None,
        "updatedDate": _iso(state.updated),
    }


def _backfill_json(state: TriggerState, trigger: Mapping[str, Any] | None) -> dict[str, Any] | None:
    backfill = state.backfill
    if not backfill:
        return None
    following = None
    if trigger is not None and service.trigger_kind(trigger) == service.SCHEDULE_KIND:
        declared = service.ScheduleTrigger(state.namespace, state.flow_id, trigger)
        following = declared.calendar.next_after(parse_iso(backfill["cursor"]))
    return {"start": backfill["start"], "end": backfill.get("end"), "inputs": backfill.get("inputs"),
            "labels": backfill.get("labels"), "currentDate": _iso(following), "paused": bool(backfill.get("paused"))}


def _declared_of(states: list[TriggerState]) -> Callable[[str, str, str], Mapping[str, Any] | None]:
    """Look up the declared triggers of the states' flows, with one query for the flows."""
    pairs = {(s.namespace, s.flow_id) for s in states}
    query = Q(pk__in=[])
    for namespace, flow_id in pairs:
        query |= Q(namespace=namespace, flow_id=flow_id)
    sources = {(f.namespace, f.flow_id): f.source for f in Flow.objects.filter(query, deleted=False)}

    def lookup(namespace: str, flow_id: str, trigger_id: str) -> Mapping[str, Any] | None:
        source = sources.get((namespace, flow_id))
        triggers = service.declared_triggers(source) if source else ()
        return next((t for t in triggers if str(t.get("id")) == trigger_id), None)

    return lookup


def _pair(state: TriggerState, trigger: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"abstractTrigger": dict(trigger) if trigger is not None else None,
            "triggerContext": context_json(state, trigger)}


def _one(state: TriggerState) -> Response:
    return Response(context_json(state, actions.declared(state.namespace, state.flow_id, state.trigger_id)))


@contextmanager
def trigger_errors() -> Iterator[None]:
    """What scheduler/actions.py refuses, as API errors."""
    try:
        yield
    except actions.TriggerNotFound as error:
        raise not_found(str(error)) from None
    except actions.TriggerConflict as error:
        raise conflict(str(error)) from None
    except actions.InvalidBackfill as error:
        raise bad_request(str(error), [{"path": error.path, "message": str(error), "line": None}]) from None


def _filtered(params: Mapping[str, Any]) -> QuerySet:
    states = TriggerState.objects.all()
    namespace = params.get("namespace")
    if namespace:
        states = states.filter(under(namespace))
    if params.get("flowId"):
        states = states.filter(flow_id=params["flowId"])
    query = params.get("q")
    if query:
        states = states.filter(Q(trigger_id__icontains=query) | Q(flow_id__icontains=query)
                               | Q(namespace__icontains=query))
    return states


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _key(data: Mapping[str, Any]) -> tuple[str, str, str]:
    return data["namespace"], data["flowId"], data["triggerId"]


def _count(keys: list[tuple[str, str, str]], action: Callable[..., Any]) -> Response:
    """A bulk action: each trigger that takes it counts; unknown ones and those it does not apply
    to are passed over, as in Kestra."""
    changed = 0
    for key in keys:
        try:
            action(*key)
            changed += 1
        except (actions.TriggerNotFound, actions.TriggerConflict, actions.InvalidBackfill):
            continue
    return Response({"count": changed})


def _by_query(request) -> list[tuple[str, str, str]]:
    """The triggers the filters match among those the user may change."""
    rights = namespace_rights(request)
    if not rights.allows_any(Right.WRITE):
        require(request, Right.WRITE, request.query_params.get("namespace") or "*")
    states = rights.within(_filtered(request.query_params), Right.WRITE)
    return list(states.values_list("namespace", "flow_id", "trigger_id")[:10_000])


def _writable(request, keys: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The triggers named in a body, once the user may change each one's namespace (403 otherwise)."""
    for namespace in sorted({key[0] for key in keys}):
        require(request, Right.WRITE, namespace)
    return keys


def _by_triggers(request) -> list[tuple[str, str, str]]:
    if not isinstance(request.data, list) or not request.data:
        raise bad_request("Send a JSON list of triggers: [{namespace, flowId, triggerId}, …]",
                          [{"path": "", "message": "a non-empty list", "line": None}])
    serializer = TriggerKey(data=request.data, many=True)
    serializer.is_valid(raise_exception=True)
    return _writable(request, [_key(item) for item in serializer.validated_data])


# --- views ----------------------------------------------------------------------------------------

class TriggerView(ApiView):
    # JSON only: a form would read a missing `disabled` as false, switching a trigger on unasked.
    parser_classes = [JSONParser]


class TriggerSearch(TriggerView):
    @extend_schema(operation_id="searchTriggers", tags=TAGS, parameters=[*_FILTERS, *_PAGING],
                   responses={200: PagedTriggers, **ERRORS}, summary="Search triggers and their states")
    def get(self, request):
        page, size = page_and_size(request.query_params)
        states = readable(request, _filtered(request.query_params)).order_by(
            *ordering(request.query_params, _SORTS, ["namespace", "flow_id", "trigger_id"]), "id")
        rows, total, exact = paged(states, page, size)
        declared = _declared_of(rows)
        return Response({"results": [_pair(s, declared(s.namespace, s.flow_id, s.trigger_id)) for s in rows],
                         "total": total, "totalIsExact": exact})


class FlowTriggers(TriggerView):
    @extend_schema(operation_id="searchTriggersForFlow", tags=TAGS, parameters=_PAGING,
                   responses={200: PagedTriggers, **ERRORS},
                   summary="Every trigger a flow declares, with its state (null for a trigger without one)")
    def get(self, request, namespace: str, flow_id: str):
        page, size = page_and_size(request.query_params)
        flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
        if flow is None:
            raise not_found(f"flow {namespace}.{flow_id} does not exist")
        states = {s.trigger_id: s for s in TriggerState.objects.filter(namespace=namespace, flow_id=flow_id)}
        declared = service.declared_triggers(flow.source)
        chosen = declared[(page - 1) * size:page * size]
        results = []
        for trigger in chosen:
            state = states.get(str(trigger.get("id")))
            results.append(_pair(state, trigger) if state else {"abstractTrigger": dict(trigger),
                                                                 "triggerContext": None})
        return Response({"results": results, "total": len(declared)})


class TriggerUpdate(TriggerView):
    checks_namespaces = True

    @extend_schema(operation_id="updateTrigger", tags=TAGS, request=TriggerContext,
                   responses={200: TriggerContext, **_CHANGES},
                   summary="Switch a trigger off or on (`disabled`), or start a backfill (`backfill`)")
    def put(self, request):
        data = _valid(TriggerContext, request.data)
        key, backfill = _key(data), data.get("backfill")
        _writable(request, [key])
        if "disabled" not in data and not backfill:
            raise bad_request("Say what to change: `disabled`, `backfill`, or both",
                              [{"path": "disabled", "message": "give `disabled` or `backfill`", "line": None}])
        # One transaction: a backfill refused leaves the switch as it was too.
        with trigger_errors(), transaction.atomic():
            if "disabled" in data:
                actions.set_disabled(*key, data["disabled"])
            if backfill:
                actions.start_backfill(*key, start=backfill["start"], end=backfill.get("end"),
                                       inputs=backfill.get("inputs"), labels=backfill.get("labels"))
            return _one(actions.get_state(*key))


def _key_action(operation_id: str, summary: str, action: Callable[[str, str, str], TriggerState]) -> type[ApiView]:
    """A POST on /triggers/{namespace}/{flowId}/{triggerId}/<word>."""

    class KeyAction(TriggerView):
        @extend_schema(operation_id=operation_id, tags=TAGS, request=None, responses={200: TriggerContext, **_CHANGES},
                       summary=summary)
        def post(self, request, namespace: str, flow_id: str, trigger_id: str):
            with trigger_errors():
                return _one(action(namespace, flow_id, trigger_id))

    KeyAction.__name__ = KeyAction.__qualname__ = operation_id[0].upper() + operation_id[1:]
    return KeyAction


def _body_action(operation_id: str, summary: str, action: Callable[[str, str, str], TriggerState],
                 method: str) -> type[ApiView]:
    """A PUT or POST on /triggers/backfill/<word> with the trigger in the body."""

    @extend_schema(operation_id=operation_id, tags=TAGS, request=TriggerKey, responses={200: TriggerContext, **_CHANGES},
                   summary=summary)
    def handle(self, request):
        key = _writable(request, [_key(_valid(TriggerKey, request.data))])[0]
        with trigger_errors():
            return _one(action(*key))

    return type(operation_id[0].upper() + operation_id[1:], (TriggerView,), {method: handle, "checks_namespaces": True})


def _bulk_action(operation_id: str, summary: str, action: Callable[[str, str, str], Any],
                 by_query: bool) -> type[ApiView]:
    """A POST on …/by-triggers (a list of triggers in the body) or …/by-query (search filters)."""
    if by_query:
        @extend_schema(operation_id=operation_id, tags=TAGS, request=None, parameters=_FILTERS,
                       responses={200: Bulk, **ERRORS}, summary=summary)
        def post(self, request):
            return _count(_by_query(request), action)
    else:
        @extend_schema(operation_id=operation_id, tags=TAGS, request=TriggerKey(many=True),
                       responses={200: Bulk, **ERRORS}, summary=summary)
        def post(self, request):
            return _count(_by_triggers(request), action)
    return type(operation_id[0].upper() + operation_id[1:], (TriggerView,), {"post": post, "checks_namespaces": True})


class SetDisabledByTriggers(TriggerView):
    checks_namespaces = True

    @extend_schema(operation_id="disabledTriggersByIds", tags=TAGS, request=SetDisabled,
                   responses={200: Bulk, **ERRORS}, summary="Switch the given triggers off or on")
    def post(self, request):
        data = _valid(SetDisabled, request.data)
        return _count(_writable(request, [_key(item) for item in data["triggers"]]),
                      lambda *key: actions.set_disabled(*key, data["disabled"]))


class SetDisabledByQuery(TriggerView):
    checks_namespaces = True

    @extend_schema(operation_id="disabledTriggersByQuery", tags=TAGS, request=None,
                   parameters=[*_FILTERS, OpenApiParameter("disabled", bool, description="default true")],
                   responses={200: Bulk, **ERRORS}, summary="Switch the triggers matching the filters off or on")
    def post(self, request):
        word = str(request.query_params.get("disabled", "true")).lower()
        if word not in ("true", "false"):
            raise bad_request("disabled must be true or false",
                              [{"path": "disabled", "message": "true or false", "line": None}])
        return _count(_by_query(request), lambda *key: actions.set_disabled(*key, word == "true"))


def _pause(*key: str) -> TriggerState:
    return actions.set_backfill_paused(*key, True)


def _unpause(*key: str) -> TriggerState:
    return actions.set_backfill_paused(*key, False)


TriggerUnlock = _key_action("unlockTrigger", "Release a trigger's evaluation lock (409 when it holds none)",
                            actions.unlock)
TriggerRestart = _key_action("restartTrigger", "Evaluate a trigger afresh: release its lock and stop waiting "
                                               "for the execution it last started", actions.restart)
BackfillPause = _body_action("pauseBackfill", "Pause a trigger's backfill", _pause, "put")
BackfillUnpause = _body_action("unpauseBackfill", "Resume a trigger's paused backfill", _unpause, "put")
BackfillDelete = _body_action("deleteBackfill", "Delete a trigger's backfill (its executions stay)",
                              actions.delete_backfill, "post")
UnlockByTriggers = _bulk_action("unlockTriggersByIds", "Unlock the given triggers", actions.unlock, False)
UnlockByQuery = _bulk_action("unlockTriggersByQuery", "Unlock the triggers matching the filters", actions.unlock,
                             True)
PauseByTriggers = _bulk_action("pauseBackfillByIds", "Pause the backfills of the given triggers", _pause, False)
PauseByQuery = _bulk_action("pauseBackfillByQuery", "Pause the backfills of the triggers matching the filters",
                            _pause, True)
UnpauseByTriggers = _bulk_action("unpauseBackfillByIds", "Resume the backfills of the given triggers", _unpause,
                                 False)
UnpauseByQuery = _bulk_action("unpauseBackfillByQuery", "Resume the backfills of the triggers matching the "
                                                        "filters", _unpause, True)
DeleteBackfillByTriggers = _bulk_action("deleteBackfillByIds", "Delete the backfills of the given triggers",
                                        actions.delete_backfill, False)
DeleteBackfillByQuery = _bulk_action("deleteBackfillByQuery", "Delete the backfills of the triggers matching the "
                                                              "filters", actions.delete_backfill, True)

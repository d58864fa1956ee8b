"""What a user does to a trigger — switch it off or on, unlock or restart it, start, pause,
resume or delete its backfill — for the API (orchestrator/api/triggers.py), the admin and
`manage.py schedule` alike.

Each action changes one trigger state under its row lock. A Schedule (or ScheduleOnDates)
trigger has a state from its deploy; a Flow or Webhook trigger gets one the first time it is
switched off, by hand or (Flow) by its `stopAfter`. Refusals are exceptions the callers
translate: TriggerNotFound (404), TriggerConflict (the action does not apply now: 409),
InvalidBackfill (400).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from django.db import transaction

from orchestrator.models import TERMINAL_VALUES, Flow
from orchestrator.repository import now
from scheduler import service
from scheduler.dates import parse_iso
from scheduler.models import TriggerState

class TriggerNotFound(LookupError):
    pass


class TriggerConflict(ValueError):
    """The action does not apply to the trigger as it stands (no backfill to pause…)."""


class InvalidBackfill(ValueError):
    def __init__(self, message: str, path: str = "backfill") -> None:
        super().__init__(message)
        self.path = path


def declared(namespace: str, flow_id: str, trigger_id: str) -> Mapping[str, Any] | None:
    """The trigger as its live flow declares it (pluginDefaults applied), or None."""
    flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
    if flow is None:
        return None
    return next((t for t in service.declared_triggers(flow.source) if str(t.get("id")) == trigger_id), None)


def _missing(namespace: str, flow_id: str, trigger_id: str) -> TriggerNotFound:
    return TriggerNotFound(f"flow {namespace}.{flow_id} has no trigger {trigger_id!r} with a state")


def _locked_state(namespace: str, flow_id: str, trigger_id: str) -> TriggerState:
    """The trigger's state under its row lock (call inside a transaction); a Flow trigger's is
    made on first use."""
    key = {"namespace": namespace, "flow_id": flow_id, "trigger_id": trigger_id}
    state = TriggerState.objects.select_for_update().filter(**key).first()
    if state is not None:
        return state
    trigger = declared(namespace, flow_id, trigger_id)
    kind = service.trigger_kind(trigger) if trigger is not None else None
    if kind not in service.SWITCHED_KINDS:
        raise _missing(namespace, flow_id, trigger_id)
    TriggerState.objects.bulk_create([TriggerState(**key, kind=kind, last_date=now())], ignore_conflicts=True)
    return TriggerState.objects.select_for_update().get(**key)


def get_state(namespace: str, flow_id: str, trigger_id: str) -> TriggerState:
    state = TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id).first()
    if state is None:
        raise _missing(namespace, flow_id, trigger_id)
    return state


def set_disabled(namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> TriggerState:
    """Switch a trigger off or on, whatever its YAML says. Switched on, it fires from now: the
    dates it was off are not owed, and the execution that stopped it (stopAfter) is forgotten."""
    with transaction.atomic():
        state = _locked_state(namespace, flow_id, trigger_id)
        fields = ["disabled", "updated"]
        if not disabled and state.disabled:
            state.last_date = max(state.last_date, now())
            fields.append("last_date")
            last = service.last_execution(state)
            if last is None or last[1] in TERMINAL_VALUES:
                state.execution_id = None
                fields.append("execution_id")
        state.disabled = disabled
        state.save(update_fields=fields)
        _follow_in_beat(state)
    return state


def stop(namespace: str, flow_id: str, trigger_id: str, execution_id: str, ended: str) -> TriggerState:
    """`stopAfter`: the trigger's execution ended in one of its listed states."""
    with transaction.atomic():
        state = _locked_state(namespace, flow_id, trigger_id)
        state.disabled = True
        state.execution_id = execution_id
        state.save(update_fields=["disabled", "execution_id", "updated"])
        _follow_in_beat(state)
    service.logger.info("trigger %s of %s.%s stops: its execution %s ended %s", trigger_id, namespace, flow_id,
                        execution_id, ended)
    return state


def unlock(namespace: str, flow_id: str, trigger_id: str) -> TriggerState:
    """Release an evaluation lock (one that a crashed evaluation left would expire anyway)."""
    with transaction.atomic():
        state = _locked_state(namespace, flow_id, trigger_id)
        if state.locked_until is None:
            raise TriggerConflict(f"trigger {trigger_id} of {namespace}.{flow_id} is not locked")
        state.locked_until, state.locked_by = None, ""
        state.save(update_fields=["locked_until", "locked_by", "updated"])
    return state


def restart(namespace: str, flow_id: str, trigger_id: str) -> TriggerState:
    """Evaluate the trigger afresh: release its lock and stop waiting for the execution it last
    started (one stuck running would hold a trigger without allowConcurrent back for good)."""
    with transaction.atomic():
        state = _locked_state(namespace, flow_id, trigger_id)
        state.locked_until, state.locked_by, state.execution_id = None, "", None
        state.save(update_fields=["locked_until", "locked_by", "execution_id", "updated"])
    return state


def start_backfill(namespace: str, flow_id: str, trigger_id: str, *, start: datetime | str | None,
                   end: datetime | str | None = None, inputs: Mapping[str, Any] | None = None,
                   labels: Any = None) -> TriggerState:
    """Replay the trigger's dates from `start` to `end` (or up to now): one execution per date,
    alongside the regular schedule. Refused while another backfill is under way."""
    spec = {"start": start.isoformat() if isinstance(start, datetime) else start,
            "end": end.isoformat() if isinstance(end, datetime) else end, "inputs": inputs, "labels": labels}
    with transaction.atomic():
        state = _locked_state(namespace, flow_id, trigger_id)
        trigger = declared(namespace, flow_id, trigger_id)
        if trigger is None or service.trigger_kind(trigger) != service.SCHEDULE_KIND:
            raise InvalidBackfill(f"trigger {trigger_id} of {namespace}.{flow_id} is not a Schedule trigger: only "
                                  f"those have dates to backfill")
        if state.backfill:
            raise TriggerConflict(f"trigger {trigger_id} of {namespace}.{flow_id} already has a backfill (from "
                                  f"{state.backfill['start']}): delete it first")
        _check_dates(spec)
        try:
            state.backfill = service.new_backfill(spec)
        except ValueError as error:  # the end before the start
            raise InvalidBackfill(str(error), "backfill.end") from None
        state.save(update_fields=["backfill", "updated"])
    return state


def _check_dates(spec: Mapping[str, Any]) -> None:
    if not spec["start"]:
        raise InvalidBackfill("a backfill needs a start date", "backfill.start")
    for name in ("start", "end"):
        if spec[name]:
            try:
                parse_iso(str(spec[name]))
            except ValueError:
                raise InvalidBackfill(f"backfill {name} {spec[name]!r} is not an ISO-8601 date such as "
                                      f"2025-01-01T00:00:00Z", f"backfill.{name}") from None


def set_backfill_paused(namespace: str, flow_id: str, trigger_id: str, paused: bool) -> TriggerState:
    with transaction.atomic():
        state = _with_backfill(namespace, flow_id, trigger_id)
        state.backfill = {**state.backfill, "paused": paused}
        state.save(update_fields=["backfill", "updated"])
    return state


def delete_backfill(namespace: str, flow_id: str, trigger_id: str) -> TriggerState:
    """Stop a backfill: the executions it started stay."""
    with transaction.atomic():
        state = _with_backfill(namespace, flow_id, trigger_id)
        state.backfill = None
        state.save(update_fields=["backfill", "updated"])
    return state


def _with_backfill(namespace: str, flow_id: str, trigger_id: str) -> TriggerState:
    state = _locked_state(namespace, flow_id, trigger_id)
    if not state.backfill:
        raise TriggerConflict(f"trigger {trigger_id} of {namespace}.{flow_id} has no backfill")
    return state


def _follow_in_beat(state: TriggerState) -> None:
    """A Schedule trigger's PeriodicTask follows its switch."""
    flow = Flow.objects.filter(namespace=state.namespace, flow_id=state.flow_id, deleted=False).first()
    trigger = next((t for t in service.schedule_triggers(flow) if t.id == state.trigger_id), None) if flow else None
    if trigger is not None:
        service.ensure_periodic_task(trigger, state)


def states(namespace: str | None = None) -> Iterable[TriggerState]:
    query = TriggerState.objects.all()
    return query.filter(namespace=namespace) if namespace else query

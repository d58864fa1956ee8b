"""The Scheduler's service functions for Schedule triggers: keep trigger states and celery-beat
`PeriodicTask`s in step with the flows' YAML, and fire due dates exactly once.

celery beat only wakes Harrier up: each Schedule trigger is a PeriodicTask (seen and editable
in the Django admin) that sends `harrier.scheduler.fire` for that trigger to the `scheduler`
queue — every second for a `withSeconds` trigger, at the cron's own times otherwise (celery's
crontab has no seconds). The firing computes the due dates itself from the trigger state, so
an early, late, doubled or lost beat changes nothing: an evaluation lock (compare-and-swap with
an expiry) keeps evaluations of one trigger apart, and the unique key of each fired date is
written in the transaction that creates its execution. A sweep, itself a PeriodicTask, fires
what individual beats missed and puts hand-edited PeriodicTasks back as the YAML says.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Mapping

from django.db import IntegrityError, transaction
from django.db.models import Q

from orchestrator.inputs import InvalidInputs
from orchestrator.models import Execution, Flow, TERMINAL_VALUES
from orchestrator.repository import now
from scheduler import FIRE_TASK, SCHEDULER_QUEUE, SWEEP_TASK, conditions, planning
from scheduler.dates import Calendar, Cron, DateList, iso, parse_iso, trigger_variables
from scheduler.models import ScheduledDate, TriggerState

logger = logging.getLogger("harrier.scheduler")

TASK_PREFIX = "harrier schedule "
SWEEP_NAME = "harrier scheduler sweep"
SCHEDULE_KIND = "schedule"
FLOW_KIND = "flow"
# Triggers fired by no schedule, whose state exists once someone switches them (or stopAfter does).
SWITCHED_KINDS = frozenset({FLOW_KIND, "webhook"})


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def lock_seconds() -> float:
    return _seconds("HARRIER_SCHEDULE_LOCK_SECONDS", 30)


def missed_after() -> timedelta:
    """A due date older than this when evaluated was missed (recoverMissedSchedules applies)."""
    return timedelta(seconds=_seconds("HARRIER_SCHEDULE_MISSED_AFTER", 60))


def default_recover() -> str:
    return os.environ.get("HARRIER_SCHEDULE_RECOVER_MISSED", "ALL").upper()


def sweep_seconds() -> float:
    return _seconds("HARRIER_SCHEDULE_SWEEP_SECONDS", 10)


# --- the YAML side ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScheduleTrigger:
    """A Schedule trigger as its flow declares it (pluginDefaults applied)."""

    namespace: str
    flow_id: str
    data: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def calendar(self) -> Calendar:
        """Its dates: a Schedule's cron expression, or a ScheduleOnDates' list."""
        zone = str(self.data.get("timezone") or "UTC")
        if "dates" in self.data and "cron" not in self.data:
            return _date_list(tuple(self.data["dates"]), zone)
        return Cron(str(self.data["cron"]), bool(self.data.get("withSeconds")), zone)

    @property
    def enabled(self) -> bool:
        return not self.data.get("disabled")

    @property
    def recover(self) -> str:
        return str(self.data.get("recoverMissedSchedules") or default_recover()).upper()

    @property
    def late_maximum_delay(self) -> timedelta | None:
        from orchestrator.flowlang.types import parse_duration

        return parse_duration(self.data.get("lateMaximumDelay"))

    @property
    def allow_concurrent(self) -> bool:
        return bool(self.data.get("allowConcurrent"))


@lru_cache(maxsize=256)
def _date_list(dates: tuple[str, ...], zone: str) -> DateList:
    return DateList.parse(dates, zone)


def schedule_triggers(flow: Flow) -> list[ScheduleTrigger]:
    return [ScheduleTrigger(flow.namespace, flow.flow_id, data) for data in declared_triggers(flow.source)
            if trigger_kind(data) == SCHEDULE_KIND]


def trigger_kind(data: Mapping[str, Any]) -> str | None:
    """`schedule`, `flow`, `webhook`, `polling`, or None for a type nobody declared."""
    from scheduler import triggers

    declared = triggers.get(str(data.get("type")))
    return declared.kind if declared is not None else None


@lru_cache(maxsize=1024)
def declared_triggers(source: str) -> tuple[Mapping[str, Any], ...]:
    """The triggers of a flow's source, pluginDefaults applied, parsed once per source: a
    `withSeconds` trigger is evaluated every second. (Read only: the mappings are shared.)"""
    from orchestrator.flowlang import parse_flow
    from orchestrator.flowlang.defaults import with_plugin_defaults

    data = with_plugin_defaults(parse_flow(source).data)
    return tuple(trigger for trigger in data.get("triggers") or () if isinstance(trigger, Mapping))


def task_name(namespace: str, flow_id: str, trigger_id: str) -> str:
    return f"{TASK_PREFIX}{namespace}.{flow_id} {trigger_id}"


# --- keeping states and PeriodicTasks in step ---------------------------------------------------

def sync_flow(flow: Flow) -> None:
    """Make the flow's trigger states and PeriodicTasks what its YAML says: called in the
    transaction that deploys, disables or deletes it, and by the sweep for hand edits."""
    from scheduler import polling

    declared = [] if flow.deleted else schedule_triggers(flow)
    flow_enabled = not flow.disabled and not flow.deleted
    # A Flow or Webhook trigger's state (switched off by hand, or by stopAfter) lives as long as the trigger.
    keep = set() if flow.deleted else {str(t.get("id")) for t in declared_triggers(flow.source)
                                       if trigger_kind(t) in SWITCHED_KINDS}
    keep |= polling.sync_flow(flow, flow_enabled)
    for trigger in declared:
        keep.add(trigger.id)
        state = _ensure_state(trigger, flow_enabled and trigger.enabled)
        ensure_periodic_task(trigger, state)
    gone = TriggerState.objects.filter(namespace=flow.namespace, flow_id=flow.flow_id).exclude(trigger_id__in=keep)
    for state in gone:
        remove_trigger(state.namespace, state.flow_id, state.trigger_id)


def forget_flow(namespace: str, flow_id: str) -> None:
    """A flow row deleted outright: its triggers go with it."""
    for trigger_id in TriggerState.objects.filter(namespace=namespace, flow_id=flow_id).values_list(
            "trigger_id", flat=True):
        remove_trigger(namespace, flow_id, trigger_id)


def remove_trigger(namespace: str, flow_id: str, trigger_id: str) -> None:
    TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id).delete()
    remove_periodic_task(namespace, flow_id, trigger_id)


def remove_periodic_task(namespace: str, flow_id: str, trigger_id: str) -> None:
    from django_celery_beat.models import PeriodicTask

    for task in PeriodicTask.objects.filter(name=task_name(namespace, flow_id, trigger_id)):
        task.delete()  # one by one: the delete signal tells running beats their schedule changed


def _ensure_state(trigger: ScheduleTrigger, enabled: bool) -> TriggerState:
    moment = now()
    state, created = TriggerState.objects.get_or_create(
        namespace=trigger.namespace, flow_id=trigger.flow_id, trigger_id=trigger.id,
        # A new trigger fires from now on, as in Kestra: a backfill replays earlier dates.
        defaults={"last_date": moment, "declared_enabled": enabled},
    )
    changed = []
    if created and isinstance(trigger.data.get("backfill"), Mapping):
        try:
            state.backfill = new_backfill(trigger.data["backfill"])  # the deprecated property
            changed.append("backfill")
        except ValueError as error:
            logger.warning("trigger %s of %s.%s: its backfill is ignored: %s", trigger.id, trigger.namespace,
                           trigger.flow_id, error)
    if state.kind != SCHEDULE_KIND:  # the id was another kind of trigger: it fires from now on
        state.kind, state.last_date, state.poll_state = SCHEDULE_KIND, max(state.last_date, moment), None
        state.locked_until, state.locked_by = None, ""
        changed += ["kind", "last_date", "poll_state", "locked_until", "locked_by"]
    if state.declared_enabled != enabled:
        if enabled:
            # Dates that passed while the flow or the trigger was disabled are not owed.
            state.last_date = max(state.last_date, moment)
            changed.append("last_date")
        state.declared_enabled = enabled
        changed.append("declared_enabled")
    next_date = trigger.calendar.next_after(state.last_date)
    if state.next_date != next_date:
        state.next_date = next_date
        changed.append("next_date")
    if changed:
        state.save(update_fields=[*changed, "updated"])
    return state


def _interval_1s():
    from django_celery_beat.models import IntervalSchedule

    return _one(IntervalSchedule, every=1, period=IntervalSchedule.SECONDS)


def _one(model, **fields):
    """A schedule row with these fields: the first of them when the admin made several."""
    return model.objects.filter(**fields).order_by("pk").first() or model.objects.create(**fields)


def _crontab(cron: Calendar):
    """The CrontabSchedule that wakes the trigger at its own minutes, or None when celery's
    crontab cannot say the expression (seconds, `L`, `#`…) or there is none (a list of dates):
    then beat wakes it every second."""
    from celery.schedules import crontab
    from django_celery_beat.models import CrontabSchedule

    if not isinstance(cron, Cron):
        return None

    if cron.with_seconds:
        return None
    fields = cron.fields
    if len(fields) != 5:
        return None
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                day_of_week=day_of_week)
    except Exception:  # noqa: BLE001 (celery raises several kinds for what it cannot parse)
        return None
    return _one(CrontabSchedule, minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                day_of_week=day_of_week, timezone=cron.zone_name if cron.zone_name not in ("Z", "") else "UTC")


def ensure_periodic_task(trigger: ScheduleTrigger, state: TriggerState) -> None:
    """Create or correct the trigger's PeriodicTask; written only when something differs, so
    running beats are told of a change only when there is one."""
    from django_celery_beat.models import PeriodicTask

    crontab = _crontab(trigger.calendar)
    wanted: dict[str, Any] = {
        "task": FIRE_TASK,
        "args": json.dumps([{"namespace": trigger.namespace, "flowId": trigger.flow_id, "triggerId": trigger.id}]),
        "kwargs": "{}",
        "queue": SCHEDULER_QUEUE,
        # A list of dates whose last one is past wakes nobody; a deploy of new dates switches it on.
        "enabled": state.fires and state.next_date is not None,
        "crontab": crontab,
        "interval": None if crontab is not None else _interval_1s(),
        # A wake-up nobody consumed in time is worthless: the next one computes the same dates.
        "expire_seconds": 300 if crontab is not None else 5,
        "one_off": False,
        "description": f"Schedule trigger {trigger.id} of {trigger.namespace}.{trigger.flow_id}: "
                       f"{trigger.data.get('cron') or 'on dates'} ({trigger.calendar.zone_name}). "
                       f"Kept as the flow's YAML says.",
    }
    name = task_name(trigger.namespace, trigger.flow_id, trigger.id)
    task = PeriodicTask.objects.filter(name=name).first()
    if task is None:
        PeriodicTask.objects.create(name=name, **wanted)
        return
    if any(getattr(task, key) != value for key, value in wanted.items()):
        for key, value in wanted.items():
            setattr(task, key, value)
        task.save()


def ensure_sweep_task() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = max(int(sweep_seconds()), 1)
    interval = _one(IntervalSchedule, every=every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(name=SWEEP_NAME, defaults={
        "task": SWEEP_TASK, "args": "[{}]", "queue": SCHEDULER_QUEUE, "interval": interval, "crontab": None,
        "enabled": True, "expire_seconds": every,
        "description": "Fires the Schedule triggers whose beats were missed and re-syncs edited PeriodicTasks.",
    })


def sync_all() -> None:
    """Every flow that has, or had, Schedule or polling triggers, as its YAML says."""
    with_states = set(TriggerState.objects.values_list("namespace", "flow_id").distinct())
    # Polling trigger types all end in `.Trigger`.
    has_triggers = Q(source__contains="Schedule") | Q(source__contains="Trigger") | Q(deleted=True)
    for flow in Flow.objects.filter(has_triggers).iterator():
        with_states.discard((flow.namespace, flow.flow_id))
        try:
            with transaction.atomic():
                sync_flow(flow)
        except Exception:  # one broken flow must not keep the others out of step
            logger.exception("could not sync the Schedule triggers of %s", flow)
    for namespace, flow_id in with_states:  # a flow with Flow-trigger states only, or a flow row gone
        flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id).first()
        if flow is None:
            forget_flow(namespace, flow_id)
            continue
        with transaction.atomic():
            sync_flow(flow)


# --- firing -------------------------------------------------------------------------------------

def fire(namespace: str, flow_id: str, trigger_id: str) -> int:
    """Evaluate one trigger: fire its due dates and its backfill's next ones. Returns how many
    executions were created. Safe to call any number of times, from any number of processes."""
    token = uuid.uuid4().hex
    moment = now()
    claimed = TriggerState.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=moment),
        namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, kind=SCHEDULE_KIND,
    ).update(locked_until=moment + timedelta(seconds=lock_seconds()), locked_by=token)
    if claimed != 1:
        return 0  # another evaluation holds it, or the trigger is unknown
    try:
        return _evaluate(TriggerState.objects.get(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id))
    finally:
        TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id,
                                    locked_by=token).update(locked_until=None, locked_by="")


def fire_due() -> int:
    """Evaluate every trigger that has a date due or a backfill running (the sweep)."""
    moment = now()
    due = TriggerState.objects.filter(kind=SCHEDULE_KIND, declared_enabled=True, disabled=False).filter(
        Q(next_date__lte=moment) | Q(backfill__isnull=False)
    ).values_list("namespace", "flow_id", "trigger_id")
    fired = 0
    for namespace, flow_id, trigger_id in list(due):
        try:
            fired += fire(namespace, flow_id, trigger_id)
        except Exception:  # one trigger's failure must not hold back the others
            logger.exception("evaluating trigger %s of %s.%s failed", trigger_id, namespace, flow_id)
    return fired


def _evaluate(state: TriggerState) -> int:
    flow = Flow.objects.filter(namespace=state.namespace, flow_id=state.flow_id).first()
    trigger = None
    if flow is not None and not flow.deleted:
        trigger = next((t for t in schedule_triggers(flow) if t.id == state.trigger_id), None)
    if trigger is None:
        remove_trigger(state.namespace, state.flow_id, state.trigger_id)
        return 0
    ensure_periodic_task(trigger, state)  # a hand edit lasts until the next firing
    if not state.fires or flow.disabled:
        return 0
    last = last_execution(state)
    stop_after = trigger.data.get("stopAfter") or ()
    if last is not None and last[1] in TERMINAL_VALUES and last[1] in stop_after:
        logger.info("trigger %s of %s.%s stops: its execution %s ended %s", state.trigger_id, state.namespace,
                    state.flow_id, last[0], last[1])
        state.disabled = True
        state.save(update_fields=["disabled", "updated"])
        ensure_periodic_task(trigger, state)
        return 0
    busy = last is not None and last[1] not in TERMINAL_VALUES and not trigger.allow_concurrent
    moment = now()
    decided = planning.plan(trigger.calendar, state.last_date, moment, recover=trigger.recover,
                            late_maximum_delay=trigger.late_maximum_delay, missed_after=missed_after(), busy=busy)
    if decided.skip_to is not None:
        logger.info("trigger %s of %s.%s passes over dates up to %s", state.trigger_id, state.namespace,
                    state.flow_id, iso(decided.skip_to))
        state.last_date = decided.skip_to
    fired, held = 0, False
    for date in decided.fire:
        execution = _fire_date(state, trigger, date, "schedule", trigger.data.get("inputs"),
                               trigger.data.get("labels"))
        state.last_date = date
        if execution is not None:
            fired += 1
            held = _holds_back(trigger, execution)
            if held:
                break
    fields = ["last_date", "next_date", "evaluated_at", "execution_id", "updated"]
    if state.backfill and not state.backfill.get("paused") and not (busy or held):
        fired += _advance_backfill(state, trigger, moment)
        fields.append("backfill")  # only then: a pause asked meanwhile is not written over
    state.next_date = trigger.calendar.next_after(state.last_date)
    state.evaluated_at = moment
    state.save(update_fields=fields)
    return fired


def last_execution(state: TriggerState) -> tuple[str, str] | None:
    if not state.execution_id:
        return None
    current = Execution.objects.filter(id=state.execution_id).values_list("state", flat=True).first()
    return (state.execution_id, current) if current is not None else None


def _advance_backfill(state: TriggerState, trigger: ScheduleTrigger, moment: datetime) -> int:
    backfill = dict(state.backfill)
    cursor = parse_iso(backfill["cursor"])
    end = parse_iso(backfill["end"]) if backfill.get("end") else None
    fired = 0
    for date in planning.backfill_dates(trigger.calendar, cursor, end, moment, planning.BATCH):
        execution = _fire_date(state, trigger, date, f"backfill:{backfill['id']}",
                               backfill.get("inputs") or trigger.data.get("inputs"),
                               _merged_labels(trigger.data.get("labels"), backfill.get("labels")))
        backfill["cursor"] = iso(date)
        if execution is not None:
            fired += 1
            if _holds_back(trigger, execution):
                break
    following = trigger.calendar.next_after(parse_iso(backfill["cursor"]))
    finished = following is None or following > (end or moment)
    state.backfill = None if finished else backfill
    return fired


def _holds_back(trigger: ScheduleTrigger, execution: Execution) -> bool:
    """Whether the dates after this execution's wait for another evaluation: its end, unless
    allowConcurrent (one FAILED at creation has ended already); or its end stopped the trigger."""
    if execution.state in TERMINAL_VALUES:
        return execution.state in (trigger.data.get("stopAfter") or ())
    return not trigger.allow_concurrent


def _merged_labels(*groups: Any) -> list[dict[str, str]]:
    from orchestrator.repository import labels_list, merge_labels

    return merge_labels(*(labels_list(group) for group in groups))


def _fire_date(state: TriggerState, trigger: ScheduleTrigger, date: datetime, origin: str, inputs: Any,
               labels: Any) -> Execution | None:
    """Create the execution of one date with its key, in one transaction; None when the key
    exists already or the date is passed over (conditions, blocked checks). A date whose inputs
    are refused gets an execution FAILED at once with the reason, as in Kestra, so that it
    shows where executions are watched (Flow triggers on FAILED, dashboards) and is never retried."""
    from orchestrator.repository import (ExecutionBlocked, FlowDisabled, FlowNotFound, create_execution,
                                         create_failed_execution)

    variables = trigger_variables(trigger.calendar, date)
    context = {"trigger": variables, "flow": {"id": trigger.flow_id, "namespace": trigger.namespace}}
    local_date = date.astimezone(trigger.calendar.zone)
    try:
        if not conditions.holds_all(trigger.data.get("conditions"), local_date, lambda v: _render(v, context)):
            return None
    except Exception as error:  # noqa: BLE001 (a condition that cannot be judged does not hold)
        logger.warning("trigger %s of %s.%s: a condition could not be judged on %s: %s", trigger.id,
                       trigger.namespace, trigger.flow_id, variables["date"], error)
        return None
    started_by = {"id": trigger.id, "type": trigger.data.get("type"), "variables": variables}
    reason = None
    try:
        with transaction.atomic():
            key = ScheduledDate.objects.create(namespace=trigger.namespace, flow_id=trigger.flow_id,
                                               trigger_id=trigger.id, date=date, origin=origin)
            try:
                execution = create_execution(trigger.namespace, trigger.flow_id, inputs=render_inputs(inputs, context),
                                             labels=labels, trigger=started_by)
            except InvalidInputs as refused:
                reason = refusal(trigger, variables["date"], refused)
                execution = create_failed_execution(trigger.namespace, trigger.flow_id, error=reason,
                                                    inputs=refused.accepted, labels=labels, trigger=started_by)
            key.execution_id = execution.id
            key.save(update_fields=["execution_id"])
    except IntegrityError:
        return None  # fired already
    except (ExecutionBlocked, FlowDisabled, FlowNotFound) as error:
        logger.warning("trigger %s of %s.%s did not start an execution for %s: %s", trigger.id,
                       trigger.namespace, trigger.flow_id, variables["date"], error)
        return None
    if reason is not None:
        logger.warning("%s (execution %s)", reason, execution.id)
    state.execution_id = execution.id
    return execution


def render_inputs(inputs: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """A trigger's `inputs` rendered one by one, so that one which cannot be rendered is named:
    InvalidInputs lists each, as the flow's input declarations refuse a value."""
    from orchestrator.templating import TemplateError

    rendered, errors = {}, []
    for name, value in (inputs or {}).items():
        try:
            rendered[str(name)] = _render(value, context)
        except TemplateError as error:
            errors.append({"input": str(name), "message": f"cannot be rendered: {error}"})
    if errors:
        raise InvalidInputs(errors)
    return rendered


def refusal(trigger: ScheduleTrigger, date: str, refused: InvalidInputs) -> str:
    """The reason a date's execution failed at once, on one line, as its ERROR log line says it."""
    problems = "; ".join(f"input `{error['input']}`: {error['message']}" for error in refused.errors)
    return (f"Trigger {trigger.id} of {trigger.namespace}.{trigger.flow_id} could not start the execution of "
            f"{date}: its inputs were refused: {problems}")


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    from orchestrator.templating import render_value

    return render_value(value, context)


# --- backfills ------------------------------------------------------------------------------------

def new_backfill(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A backfill's progress from its request `{start, end, inputs, labels}`; ValueError names
    what is wrong with it."""
    start = spec.get("start")
    if not start:
        raise ValueError("a backfill needs a start date")
    start_date = parse_iso(str(start))
    # Never past now: later dates are the regular schedule's.
    end = min(parse_iso(str(spec["end"])), now()) if spec.get("end") else now()
    if end < start_date:
        raise ValueError("a backfill's end comes before its start")
    return {"id": uuid.uuid4().hex[:12], "start": iso(start_date), "end": iso(end),
            "inputs": spec.get("inputs"), "labels": spec.get("labels"), "paused": False,
            # Dates after the cursor remain: the start date itself is included.
            "cursor": iso(start_date - timedelta(milliseconds=1))}

"""Polling triggers (HTTP, S3/MinIO objects, PostgreSQL queries): the scheduler dispatches
their evaluations to workers and turns what they found into executions.

A polling trigger's state row (`kind` polling) reads:
- `next_date`: when the next evaluation is due (`interval` after the last one started on its worker);
- `evaluated_at`: when the last evaluation was dispatched; `last_date`: when its result came;
- `locked_by`/`locked_until`: the **lease** of the evaluation in flight — its id, which is also
  the id of the execution it would start, and when it expires;
- `execution_id`: the last execution it started; `poll_state`: what it remembers (the objects
  a storage trigger has fired).

One step of the dispatch loop (`dispatch_due`, run by a thread of every scheduler process)
takes each due trigger whose group has a live worker, whose last execution has ended (unless
`allowConcurrent`) and whose lease is free or expired, claims the lease by compare-and-swap,
and then sends the evaluation to the queue of the trigger's worker group. Any number of
scheduler processes can run it: only one claim succeeds. The lease ends an evaluation whose
worker died, and the worker stops an evaluation at the lease's end, so two evaluations of one
trigger never overlap.

The worker sends its result to the scheduler queue; `apply_result` takes the state's row lock,
applies the result only if it holds the current lease, creates the execution (its id chosen at
dispatch, so a doubled result cannot create two), remembers the trigger's new state, frees the
lease and sets the next due date — all in one transaction.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Min, Q

from orchestrator import bus, messages
from orchestrator.models import Flow, TERMINAL_VALUES
from orchestrator.repository import iso, now
from scheduler import conditions
from scheduler.models import TriggerState
from scheduler.triggers.polling_base import interval_of

logger = logging.getLogger("harrier.scheduler")

POLLING_KIND = "polling"


def lease_seconds() -> float:
    """How long one evaluation may take: its lease, after which another may start."""
    return float(os.environ.get("HARRIER_POLL_LEASE_SECONDS", 300))


def tick_seconds() -> float:
    """The dispatch loop's longest sleep: how late past its due date an evaluation can start."""
    return float(os.environ.get("HARRIER_POLL_TICK_SECONDS", 0.25))


# --- the YAML side ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PollingTrigger:
    namespace: str
    flow_id: str
    data: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def enabled(self) -> bool:
        return not self.data.get("disabled")

    @property
    def interval(self) -> timedelta:
        return interval_of(dict(self.data))

    @property
    def group(self) -> str:
        return str((self.data.get("workerGroup") or {}).get("key") or messages.DEFAULT_WORKER_GROUP)


def polling_triggers(flow: Flow) -> list[PollingTrigger]:
    """The flow's polling triggers (its source is parsed once, then cached)."""
    from scheduler.service import declared_triggers, trigger_kind

    return [PollingTrigger(flow.namespace, flow.flow_id, data) for data in declared_triggers(flow.source)
            if trigger_kind(data) == POLLING_KIND]


def sync_flow(flow: Flow, flow_enabled: bool) -> set[str]:
    """Create or update the states of the flow's polling triggers (called by
    scheduler.service.sync_flow, in the deploy's transaction); returns their ids."""
    declared = [] if flow.deleted else polling_triggers(flow)
    moment = now()
    for trigger in declared:
        enabled = flow_enabled and trigger.enabled
        # A new trigger is evaluated at once, then every interval.
        state, created = TriggerState.objects.get_or_create(
            namespace=flow.namespace, flow_id=flow.flow_id, trigger_id=trigger.id,
            defaults={"kind": POLLING_KIND, "last_date": moment, "next_date": moment, "declared_enabled": enabled},
        )
        if created:
            continue
        changed: dict[str, Any] = {}
        if state.kind != POLLING_KIND:  # the id was another kind of trigger before
            from scheduler.service import remove_periodic_task

            remove_periodic_task(flow.namespace, flow.flow_id, trigger.id)
            changed.update(kind=POLLING_KIND, next_date=moment, poll_state=None, backfill=None, locked_until=None,
                           locked_by="")
        if state.declared_enabled != enabled:
            changed["declared_enabled"] = enabled
        if changed:
            TriggerState.objects.filter(pk=state.pk).update(**changed, updated=moment)
    return {trigger.id for trigger in declared}


# --- dispatching --------------------------------------------------------------------------------

def dispatch_due() -> float:
    """One step of the dispatch loop: send every due evaluation. Returns how long the loop may
    sleep before the next one is due (at most a tick)."""
    from workers.liveness import live_workers

    moment = now()
    due = TriggerState.objects.filter(kind=POLLING_KIND, declared_enabled=True, disabled=False,
                                      next_date__lte=moment).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=moment))
    alive: dict[str, bool] = {}
    for state in list(due):
        try:
            _dispatch(state, moment, lambda group: alive.setdefault(group, bool(live_workers(group))))
        except Exception:  # one trigger's failure must not hold back the others
            logger.exception("dispatching trigger %s of %s.%s failed", state.trigger_id, state.namespace,
                             state.flow_id)
    following = TriggerState.objects.filter(kind=POLLING_KIND, declared_enabled=True, disabled=False,
                                            next_date__gt=moment).aggregate(first=Min("next_date"))["first"]
    if following is None:
        return tick_seconds()
    return max(0.0, min(tick_seconds(), (following - now()).total_seconds()))


def _dispatch(state: TriggerState, moment: datetime, group_alive) -> None:
    flow = Flow.objects.filter(namespace=state.namespace, flow_id=state.flow_id, deleted=False,
                               disabled=False).first()
    trigger = _declared(flow, state.trigger_id) if flow is not None else None
    if trigger is None:
        return  # the flow's sync removes or disables the state
    from scheduler import actions
    from scheduler.service import last_execution

    last = last_execution(state)
    if last is not None and last[1] in TERMINAL_VALUES and last[1] in (trigger.data.get("stopAfter") or ()):
        actions.stop(state.namespace, state.flow_id, state.trigger_id, *last)
        return
    if last is not None and last[1] not in TERMINAL_VALUES and not trigger.data.get("allowConcurrent"):
        return  # never while the execution it started runs
    if not group_alive(trigger.group):
        return  # evaluated once a worker of its group is there; nothing piles up in its queue
    from workers.ids import new_id

    evaluation_id = new_id()
    deadline = moment + timedelta(seconds=lease_seconds())
    claimed = TriggerState.objects.filter(pk=state.pk, kind=POLLING_KIND, next_date__lte=moment).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=moment),
    ).update(locked_by=evaluation_id, locked_until=deadline, evaluated_at=moment, updated=moment)
    if claimed != 1:
        return  # another scheduler dispatched it first
    job: messages.PollJob = {
        "v": messages.VERSION, "evaluationId": evaluation_id, "namespace": state.namespace,
        "flowId": state.flow_id, "flowRevision": flow.revision, "trigger": dict(trigger.data),
        "deadline": iso(deadline), "state": state.poll_state,
    }
    bus.publish(messages.worker_queue(trigger.group), messages.POLL_TASK, job)


def _declared(flow: Flow, trigger_id: str) -> PollingTrigger | None:
    return next((t for t in polling_triggers(flow) if t.id == trigger_id), None)


# --- results ------------------------------------------------------------------------------------

def apply_result(result: messages.PollResult) -> None:
    """Apply one evaluation's result, once, if it holds the trigger's lease."""
    if result.get("v") != messages.VERSION:
        logger.error("dropping polling result of unknown version: %r", result.get("v"))
        return
    with transaction.atomic():
        state = TriggerState.objects.select_for_update().filter(
            namespace=result["namespace"], flow_id=result["flowId"], trigger_id=result["triggerId"],
            kind=POLLING_KIND).first()
        if state is None or state.locked_by != result["evaluationId"]:
            logger.warning("trigger %s of %s.%s: the result of evaluation %s comes after its lease ended; ignored",
                           result["triggerId"], result["namespace"], result["flowId"], result["evaluationId"])
            return
        flow = Flow.objects.filter(namespace=state.namespace, flow_id=state.flow_id, deleted=False).first()
        trigger = _declared(flow, state.trigger_id) if flow is not None else None
        if result.get("error"):
            logger.warning("trigger %s of %s.%s: evaluation %s: %s", state.trigger_id, state.namespace,
                           state.flow_id, result["evaluationId"], result["error"])
        moment = now()
        if result["fired"] and trigger is not None and _start(trigger, result, moment):
            state.execution_id = result["evaluationId"]
        if "state" in result:
            state.poll_state = result["state"]
        interval = trigger.interval if trigger is not None else interval_of({})
        state.next_date = _started(result, state.evaluated_at or moment, moment) + interval
        state.last_date = moment
        state.locked_by, state.locked_until = "", None
        state.save(update_fields=["execution_id", "poll_state", "next_date", "last_date", "locked_by",
                                  "locked_until", "updated"])


def _started(result: messages.PollResult, dispatched: datetime, moment: datetime) -> datetime:
    """When the evaluation started on its worker — the interval separates the starts of calls,
    whatever time a job waits in the queue — kept between its dispatch and now (clocks differ)."""
    from scheduler.dates import parse_iso

    try:
        started = parse_iso(str(result.get("startDate")))
    except ValueError:
        return dispatched
    return min(max(started, dispatched), moment)


def _start(trigger: PollingTrigger, result: messages.PollResult, moment: datetime) -> bool:
    """Create the evaluation's execution; False when its conditions or the flow refuse it."""
    from orchestrator.repository import ExecutionBlocked, FlowDisabled, FlowNotFound, InvalidInputs, create_execution
    from orchestrator.templating import render_value

    variables = result.get("variables") or {}
    context = {"trigger": variables, "flow": {"id": trigger.flow_id, "namespace": trigger.namespace}}
    try:
        if not conditions.holds_all(trigger.data.get("conditions"), moment, lambda v: render_value(v, context)):
            return False
    except Exception as error:  # noqa: BLE001 (a condition that cannot be judged does not hold)
        logger.warning("trigger %s of %s.%s: a condition could not be judged: %s", trigger.id, trigger.namespace,
                       trigger.flow_id, error)
        return False
    try:
        with transaction.atomic():
            create_execution(trigger.namespace, trigger.flow_id, labels=trigger.data.get("labels"),
                             trigger={"id": trigger.id, "type": trigger.data.get("type"), "variables": variables},
                             execution_id=result["evaluationId"])
    except IntegrityError:
        return True  # created already
    except (InvalidInputs, ExecutionBlocked, FlowDisabled, FlowNotFound) as error:
        logger.warning("trigger %s of %s.%s did not start an execution: %s", trigger.id, trigger.namespace,
                       trigger.flow_id, error)
        return False
    return True


# --- the loop -----------------------------------------------------------------------------------

def run_forever(stop: threading.Event) -> None:
    while not stop.is_set():
        pause = tick_seconds()
        try:
            pause = dispatch_due()
        except Exception:  # the database may be busy or restarting: try again next tick
            logger.exception("polling dispatch pass failed")
        finally:
            close_old_connections()
        stop.wait(pause)


def start_thread() -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(stop,), name="harrier-polling", daemon=True).start()
    return stop

"""Trigger state: what the scheduler remembers of each Schedule trigger, and the keys that make
every scheduled date fire at most once.

The flow's YAML says what a trigger is; these rows say where it stands. They are written only
by the scheduler (scheduler/service.py) and by the admin's actions, never by a deploy beyond
creating and removing them.
"""

from __future__ import annotations

from django.db import models


class TriggerState(models.Model):
    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    trigger_id = models.CharField(max_length=256)
    # `schedule`: fired by the scheduler at cron dates; `polling`: evaluated by a worker at an
    # interval (scheduler/polling.py), where the fields below mean what that module says.
    kind = models.CharField(max_length=16, default="schedule")
    # Every scheduled date up to this one has been handled: fired, or passed over by a policy.
    last_date = models.DateTimeField()
    # The first date after last_date: when it is due, the trigger has work (the sweep's index).
    next_date = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # The evaluation lock, claimed by compare-and-swap; it expires so a crashed evaluation never
    # holds a trigger for good.
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=64, blank=True, default="")
    # The last execution this trigger started: while it runs, the trigger does not fire again
    # (unless allowConcurrent), and its end state may stop the trigger (stopAfter).
    execution_id = models.CharField(max_length=32, null=True, blank=True)
    # Switched off by stopAfter or by hand (admin, `manage.py schedule disable`), whatever the YAML says.
    disabled = models.BooleanField(default=False)
    # Whether the YAML lets it fire: the flow exists and is enabled, and so is the trigger.
    declared_enabled = models.BooleanField(default=True)
    # {id, start, end, inputs, labels, cursor, paused}: a backfill in progress, or null.
    backfill = models.JSONField(null=True, blank=True)
    # What a polling trigger remembers between evaluations (a storage trigger: the objects that
    # fired already, by key, with their ETag).
    poll_state = models.JSONField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "flow_id", "trigger_id"],
                                               name="trigger_state_unique")]
        indexes = [models.Index(fields=["next_date"], name="trigger_state_next_idx")]
        ordering = ["namespace", "flow_id", "trigger_id"]

    def __str__(self) -> str:
        return f"{self.namespace}.{self.flow_id} {self.trigger_id}"

    @property
    def fires(self) -> bool:
        return self.declared_enabled and not self.disabled


class ScheduledDate(models.Model):
    """One fired date. Its unique key (flow, trigger, date, origin) is written in the transaction
    that creates the execution, so a second beat, a duplicated message or a retry that reaches
    the same date creates nothing. `origin` is `schedule`, or `backfill:<id>` (a backfill may
    run a date again that the schedule already ran)."""

    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    trigger_id = models.CharField(max_length=256)
    date = models.DateTimeField()
    origin = models.CharField(max_length=64, default="schedule")
    # The date's execution: FAILED at once when the trigger's inputs were refused.
    execution_id = models.CharField(max_length=32, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "flow_id", "trigger_id", "date", "origin"],
                                               name="scheduled_date_unique")]

    def __str__(self) -> str:
        return f"{self.namespace}.{self.flow_id} {self.trigger_id} {self.date:%Y-%m-%d %H:%M:%S} ({self.origin})"

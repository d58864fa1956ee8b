"""The repository: flows and their revisions, executions, task runs and logs.

Field names follow Kestra's JSON where a user sees them (the API serialises these rows in
Kestra's shape). Only the Executor writes executions and task runs, under the execution's row
lock; the Indexer writes logs.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from orchestrator.states import State, TERMINAL
from workers.ids import new_id
from workers.registry import NAMESPACE_PATTERN

STATE_CHOICES = [(s.value, s.value) for s in State]
TERMINAL_VALUES = sorted(s.value for s in TERMINAL)
_NAMESPACE_RULE = "a namespace: lowercase letters, digits, '.', '_' and '-', starting with a lowercase letter or a digit"


class Flow(models.Model):
    """The current revision of a flow; every deploy that changes the source adds a revision."""

    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    revision = models.PositiveIntegerField(default=1)
    source = models.TextField()
    disabled = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "flow_id"], name="flow_unique_id")]
        ordering = ["namespace", "flow_id"]

    def __str__(self) -> str:
        return f"{self.namespace}.{self.flow_id}"


class FlowRevision(models.Model):
    """Every deployed version of a flow, its YAML kept verbatim."""

    # The flow row this is a revision of (its namespace and id are kept here too, for lookups).
    head = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="revisions")
    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    revision = models.PositiveIntegerField()
    source = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "flow_id", "revision"], name="flow_revision_unique")
        ]
        ordering = ["namespace", "flow_id", "-revision"]

    def __str__(self) -> str:
        return f"{self.namespace}.{self.flow_id} rev {self.revision}"


class Execution(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    flow_revision = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=State.CREATED.value)
    # [{"state": "CREATED", "date": "2024-…Z"}, …] in order
    state_history = models.JSONField(default=list)
    inputs = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    labels = models.JSONField(default=list, blank=True)  # [{"key": …, "value": …}]
    variables = models.JSONField(null=True, blank=True)
    trigger = models.JSONField(null=True, blank=True)
    parent_id = models.CharField(max_length=32, null=True, blank=True)
    original_id = models.CharField(max_length=32, null=True, blank=True)
    # Kestra's execution metadata: {"attemptNumber": n, "originalCreatedDate": …} when a flow's
    # retry (CREATE_NEW_EXECUTION) made this execution.
    metadata = models.JSONField(null=True, blank=True)
    # Kestra's `scheduleDate`: the date it was asked to start at. A Delay of kind START holds it
    # in CREATED until then.
    schedule_date = models.DateTimeField(null=True, blank=True)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField(null=True, blank=True)
    # When the executor last changed this execution; the reconciler looks for stale ones.
    updated = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["namespace", "flow_id", "-start_date"], name="execution_flow_idx"),
            models.Index(fields=["-start_date"], name="execution_start_idx"),
            # The API's search by state (labels have a GIN index on PostgreSQL: migration 0006;
            # namespace prefixes, for the search and namespace grants, one by hand: migration 0009).
            models.Index(fields=["state", "-start_date"], name="execution_state_idx"),
            models.Index(
                fields=["updated"], name="execution_active_idx", condition=~Q(state__in=TERMINAL_VALUES)
            ),
            # A parent's subflow executions: Subflow kills them, ForEachItem counts them each step.
            models.Index(fields=["parent_id"], name="execution_parent_idx", condition=Q(parent_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}.{self.flow_id} {self.id} {self.state}"


class TaskRun(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    # Indexed by taskrun_execution_idx (execution, seq), whose first column serves every lookup by
    # execution: a second index on it alone would only tempt the planner (executor/store.py).
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="task_runs", db_index=False)
    task_id = models.CharField(max_length=255)
    parent_task_run_id = models.CharField(max_length=32, null=True, blank=True)
    value = models.TextField(null=True, blank=True)
    iteration = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=State.CREATED.value)
    state_history = models.JSONField(default=list)
    # [{"state": {"current": …, "histories": […]}, "workerId": …}] — one per attempt
    attempts = models.JSONField(default=list)
    # len(attempts), as a column: the executor reads it on every step without parsing JSON.
    attempt_count = models.PositiveIntegerField(default=0)
    outputs = models.JSONField(null=True, blank=True)
    # Order of creation inside the execution: task runs are listed in this order.
    seq = models.PositiveIntegerField()
    # When the job for the current attempt was last sent to a worker.
    dispatched = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["execution", "seq"], name="taskrun_execution_idx"),
            # What a step about one task run reads (executor/store.py load_focused): the task runs
            # of the tasks outside loops, and the children of the task runs above it.
            models.Index(fields=["execution", "task_id"], name="taskrun_task_idx"),
            models.Index(fields=["parent_task_run_id", "iteration"], name="taskrun_parent_idx",
                         condition=Q(parent_task_run_id__isnull=False)),
            # The jobs a step left for the next ones to send (executor/store.py unsent).
            models.Index(fields=["execution", "seq"], name="taskrun_unsent_idx",
                         condition=Q(dispatched__isnull=True, state="CREATED")),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} {self.state}"


class LogEntry(models.Model):
    LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]

    # Set by whoever emits the line, so that a batch delivered twice is stored once.
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    execution_id = models.CharField(max_length=32)
    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    task_id = models.CharField(max_length=255, null=True, blank=True)
    task_run_id = models.CharField(max_length=32, null=True, blank=True)
    attempt = models.PositiveIntegerField(null=True, blank=True)
    level = models.CharField(max_length=5, choices=[(lvl, lvl) for lvl in LEVELS])
    message = models.TextField()
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["timestamp"]
        indexes = [
            models.Index(fields=["execution_id", "timestamp"], name="log_execution_idx"),
            # The API's log search (orchestrator/api/logs.py): by date, and by flow. On PostgreSQL,
            # migration 0008 adds one for namespace prefixes and a trigram index for `q`.
            models.Index(fields=["-timestamp"], name="log_timestamp_idx"),
            models.Index(fields=["namespace", "flow_id", "-timestamp"], name="log_flow_idx"),
        ]
        verbose_name_plural = "log entries"

    def __str__(self) -> str:
        return f"{self.level} {self.message[:80]}"


class Delay(models.Model):
    """Something the executor must do at a given time: start a retry's next attempt, resume a
    Pause, time one out… Kept here rather than in the broker (no ETA messages, which Redis
    redelivers after its visibility timeout), and fired by the executor's delay loop under the
    execution's lock: deleting the row is part of what firing commits, so it fires once."""

    RETRY = "retry"  # the other kinds belong to the flowable that asked (Pause, LoopUntil…)
    START = "start"  # an execution created with a `scheduleDate` to come starts

    id = models.BigAutoField(primary_key=True)
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="delays")
    task_run_id = models.CharField(max_length=32, null=True, blank=True)
    kind = models.CharField(max_length=32)
    fire_at = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["fire_at"], name="delay_fire_at_idx")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.execution_id} at {self.fire_at:%Y-%m-%d %H:%M:%S}"


class FlowTriggerListener(models.Model):
    """The index of Flow triggers, one row per trigger of a deployed flow, written at deploy:
    when an execution changes state the executor reads these few rows instead of parsing every
    flow. `states` are the states the trigger listens for, so most changes match none."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="flow_triggers")
    trigger_id = models.CharField(max_length=256)
    revision = models.PositiveIntegerField()
    states = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "trigger_id"], name="flow_trigger_listener_unique")]


class FlowTriggerProgress(models.Model):
    """How far a windowed group of a Flow trigger (its `preconditions`, or a MultipleCondition)
    has come: the window's start, which named conditions were met, when and by which execution,
    and the outputs gathered. Changed only under its row lock."""

    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    trigger_id = models.CharField(max_length=256)
    group = models.CharField(max_length=300)
    progress = models.JSONField(default=dict)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "flow_id", "trigger_id", "group"],
                                               name="flow_trigger_progress_unique")]


class FlowTriggerFired(models.Model):
    """An execution started by a Flow trigger, keyed by what caused it: the upstream execution,
    its `occurrence` (the position of the state in its history: RUNNING can come twice), and the
    listening flow's trigger. The unique key makes a second evaluation of the same change a no-op."""

    source_execution_id = models.CharField(max_length=32)
    occurrence = models.PositiveIntegerField()
    namespace = models.CharField(max_length=255)
    flow_id = models.CharField(max_length=255)
    trigger_id = models.CharField(max_length=256)
    execution_id = models.CharField(max_length=32, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["source_execution_id", "occurrence", "namespace", "flow_id", "trigger_id"],
            name="flow_trigger_fired_unique")]


class NamespaceGrant(models.Model):
    """What the members of a group may do in a namespace and its sub-namespaces (a grant on
    `company` covers `company.team` too). Staff users need none: they may do everything.
    Read lets one see flows, executions and logs; write changes flows (and a namespace's KV
    entries and files); execute starts executions and acts on them. Write and execute include
    read. orchestrator/permissions.py applies these rules."""

    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="namespace_grants")
    namespace = models.CharField(
        max_length=150, validators=[RegexValidator(NAMESPACE_PATTERN, _NAMESPACE_RULE)],
        help_text="Covers this namespace and every namespace under it.")
    read = models.BooleanField(default=True)
    write = models.BooleanField(default=False)
    execute = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "namespace"], name="namespace_grant_unique")]
        ordering = ["group__name", "namespace"]

    def __str__(self) -> str:
        rights = [name for name in ("read", "write", "execute") if getattr(self, name)]
        return f"{self.group} on {self.namespace}: {', '.join(rights) or 'nothing'}"


class KVStoreEntry(models.Model):
    """No table: the KV store lives in the internal storage (orchestrator/kv.py). This model
    gives the admin a page for it (orchestrator/admin_kv.py) and the usual view/add/change/delete
    permissions that gate it."""

    class Meta:
        managed = False
        default_permissions = ("view", "add", "change", "delete")
        verbose_name = "KV store entry"
        verbose_name_plural = "KV store"

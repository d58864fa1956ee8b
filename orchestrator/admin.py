"""The Django admin (docs/admin.md): flows edited as YAML and deployed through the repository,
executions with their task runs and the executor's actions, logs, and the namespace grants of
groups. The KV store's page is orchestrator/admin_kv.py.

Nothing here writes a flow or an execution itself: saves, deletions and actions call the same
functions as the API (orchestrator/repository.py, executor/service.py), so an admin edit is a
new revision with its schedules re-synced, and an action the executor refuses is a message.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from orchestrator import repository
from orchestrator.admin_kv import KVStoreAdmin  # noqa: F401 (registers the KV store's page)
from orchestrator.flowlang import FlowValidationError
from orchestrator.models import Execution, Flow, FlowRevision, LogEntry, NamespaceGrant, TaskRun
from orchestrator.permissions import under
from orchestrator.states import State

_CODE = "font-family: monospace; white-space: pre-wrap; margin: 0"
# An execution's page lists at most this many task runs: a ForEach of 10,000 values took 40 s
# and 17 MB to render whole.
TASK_RUNS_SHOWN = 100


def _pre(value: Any) -> str:
    """A value shown as it is: text verbatim, anything else as indented JSON."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return format_html('<pre style="{}">{}</pre>', _CODE, text)


# --- flows -----------------------------------------------------------------------------------

class FlowForm(forms.ModelForm):
    """The YAML source, checked on save by the parser the API uses, with the same messages."""

    source = forms.CharField(strip=False, widget=forms.Textarea(attrs={
        "rows": 30, "spellcheck": "false", "style": "font-family: monospace; width: 90%"}))

    class Meta:
        model = Flow
        fields = ["source"]

    def clean_source(self) -> str:
        # Browsers send a textarea's lines ended by CRLF; a revision keeps the YAML as written.
        source = self.cleaned_data["source"].replace("\r\n", "\n")
        if len(source.encode("utf-8")) > settings.HARRIER_MAX_FLOW_BYTES:
            raise forms.ValidationError(f"The flow is larger than {settings.HARRIER_MAX_FLOW_BYTES} bytes")
        try:
            definition = repository.validate(source)
        except FlowValidationError as error:
            raise forms.ValidationError(["The flow is invalid", *(str(problem) for problem in error.errors)]) from None
        self._check_identity(definition.namespace, definition.id)
        return source

    def _check_identity(self, namespace: str, flow_id: str) -> None:
        if self.instance.pk is None:
            if Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).exists():
                raise forms.ValidationError(f"flow {namespace}.{flow_id} already exists: edit it instead")
            return
        changed = [f"{key}: is {given!r}, this flow's is {stored!r}" for key, given, stored in
                   (("namespace", namespace, self.instance.namespace), ("id", flow_id, self.instance.flow_id))
                   if given != stored]
        if changed:
            raise forms.ValidationError(["The flow's id and namespace cannot change: create a new flow instead",
                                         *changed])


class FlowRevisionInline(admin.TabularInline):
    model = FlowRevision
    fields = ("revision", "created")
    readonly_fields = fields
    ordering = ("-revision",)
    extra = 0
    can_delete = False
    show_change_link = True  # to the revision's page, with its source

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    form = FlowForm
    list_display = ("namespace", "flow_id", "revision", "disabled", "deleted", "updated")
    list_filter = ("deleted", "disabled", "namespace")
    search_fields = ("namespace", "flow_id")
    _about = ("namespace", "flow_id", "revision", "disabled", "deleted", "created", "updated")

    def get_fields(self, request, obj=None):
        return ("source",) if obj is None else (*self._about, "source")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self._about

    def get_inlines(self, request, obj):
        return [FlowRevisionInline] if obj is not None else []

    def save_model(self, request, obj, form, change):
        # A deploy, as the API's: a changed source is a new revision, schedules follow it.
        flow, created = repository.deploy(form.cleaned_data["source"])
        obj.pk = flow.pk
        obj.refresh_from_db()
        if not created:
            self.message_user(request, f"{flow}: the source is unchanged, no new revision was made", messages.INFO)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.deleted)

    def get_deleted_objects(self, objs, request):
        # The flow is only marked deleted: its revisions and executions stay, nothing else goes.
        return [str(flow) for flow in objs], {"flows": len(objs)}, set(), []

    def delete_model(self, request, obj):
        self.delete_queryset(request, Flow.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        for namespace, flow_id in queryset.filter(deleted=False).values_list("namespace", "flow_id"):
            try:
                repository.delete_flow(namespace, flow_id)
            except repository.FlowNotFound as error:  # deleted meanwhile
                self.message_user(request, str(error), messages.WARNING)


@admin.register(FlowRevision)
class FlowRevisionAdmin(admin.ModelAdmin):
    """Revisions are history: read only."""

    list_display = ("namespace", "flow_id", "revision", "created")
    search_fields = ("namespace", "flow_id")
    fields = ("namespace", "flow_id", "revision", "created", "yaml")
    readonly_fields = fields

    @admin.display(description="source")
    def yaml(self, obj: FlowRevision) -> str:
        return _pre(obj.source)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- executions ------------------------------------------------------------------------------

class TaskRunInline(admin.TabularInline):
    model = TaskRun
    fields = ("task_id", "value", "state", "attempt_states", "started", "ended", "output")
    readonly_fields = fields
    ordering = ("seq",)
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        # The formset filters by execution afterwards, so the first ones are chosen by a subquery.
        execution_id = request.resolver_match.kwargs.get("object_id")
        first = TaskRun.objects.filter(execution_id=execution_id).order_by("seq").values("pk")[:TASK_RUNS_SHOWN]
        return super().get_queryset(request).filter(pk__in=first)

    @admin.display(description="attempts")
    def attempt_states(self, run: TaskRun) -> str:
        return " · ".join(f"{number}: {(attempt.get('state') or {}).get('current', '?')}"
                          for number, attempt in enumerate(run.attempts or [], start=1))

    @admin.display(description="started")
    def started(self, run: TaskRun) -> str:
        return run.state_history[0]["date"] if run.state_history else ""

    @admin.display(description="ended")
    def ended(self, run: TaskRun) -> str:
        return run.state_history[-1]["date"] if run.state_history and State(run.state).is_terminal else ""

    @admin.display(description="outputs")
    def output(self, run: TaskRun) -> str:
        return _pre(run.outputs) if run.outputs else ""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _control(action: Callable[[Execution], Execution | None], done: str):
    """An admin action calling one of the executor's actions on each selected execution; what it
    refuses (kill an ended execution, resume one not paused…) is reported, the others go on."""
    from orchestrator.api.errors import ApiError, domain_errors

    def run(modeladmin: ExecutionAdmin, request, queryset) -> None:
        for execution in queryset.order_by("start_date"):
            try:
                with domain_errors():
                    made = action(execution)
            except ApiError as error:
                modeladmin.message_user(request, f"{execution.id}: {error.message}", messages.WARNING)
                continue
            also = f": new execution {made.id}" if made is not None and made.id != execution.id else ""
            modeladmin.message_user(request, f"{execution.id}: {done}{also}", messages.SUCCESS)

    return run


def _kill(execution: Execution) -> None:
    from executor import service

    service.kill_execution(execution.id)


def _restart(execution: Execution) -> Execution | None:
    from executor import service

    return service.restart_execution(execution.id)


def _replay(execution: Execution) -> Execution:
    from executor import service

    return service.replay_execution(execution.id)


def _resume(execution: Execution) -> None:
    from executor import service

    service.resume_execution(execution.id, {})


class FlowNamespaceFilter(admin.SimpleListFilter):
    """Executions by namespace (with those under it), offering the namespaces of flows: reading
    them from the executions themselves would scan that large table on every page."""

    title = "namespace"
    parameter_name = "namespace"

    def lookups(self, request, model_admin):
        names = Flow.objects.values_list("namespace", flat=True).distinct().order_by("namespace")[:500]
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(under(value))


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "namespace", "flow_id", "flow_revision", "state", "start_date", "end_date")
    # Filters and search that indexes serve on millions of executions: no date hierarchy and no
    # DISTINCT over the table, each of which took about a second with a million rows.
    list_filter = ("state", FlowNamespaceFilter, ("start_date", admin.DateFieldListFilter))
    search_fields = ("id",)
    search_help_text = "An execution id, or a namespace (with those under it)."
    show_full_result_count = False
    fields = ("id", "namespace", "flow_id", "flow_revision", "state", "start_date", "end_date", "logs", "task_runs",
              "label_list", "input_values", "output_values", "history", "trigger_data", "parent_id", "original_id")
    readonly_fields = fields
    inlines = [TaskRunInline]
    actions = ["kill", "restart", "replay", "resume"]
    change_form_template = "admin/orchestrator/execution/change_form.html"

    kill = admin.action(description="Kill the selected executions", permissions=["control"])(
        _control(_kill, "kill asked"))
    restart = admin.action(description="Restart the selected FAILED or KILLED executions", permissions=["control"])(
        _control(_restart, "restarted"))
    replay = admin.action(description="Replay the selected executions (new executions)", permissions=["control"])(
        _control(_replay, "replayed"))
    resume = admin.action(description="Resume the selected PAUSED executions", permissions=["control"])(
        _control(_resume, "resumed"))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(id=term) | under(term)), False

    def get_urls(self):
        act = path("<path:object_id>/act/<str:name>/", self.admin_site.admin_view(self.act_view),
                   name="orchestrator_execution_act")
        return [act, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        execution = self.get_object(request, object_id)
        offered = self._offered(request, execution) if execution is not None else []
        return super().change_view(request, object_id, form_url, {**(extra_context or {}),
                                                                   "execution_actions": offered})

    def _offered(self, request, execution: Execution) -> list[tuple[str, str]]:
        """The actions the execution's page offers as buttons: those its state allows."""
        if not self.has_control_permission(request):
            return []
        state = State(execution.state)
        offered = {"kill": not state.is_terminal, "resume": state is State.PAUSED,
                   "restart": state in (State.FAILED, State.KILLED), "replay": state.is_terminal}
        return [(name, name.capitalize()) for name in self.actions if offered[name]]

    def act_view(self, request, object_id: str, name: str):
        """One action on one execution, from the buttons of its page; back to the page."""
        if request.method != "POST" or name not in self.actions or not self.has_control_permission(request):
            raise PermissionDenied
        getattr(self, name)(request, Execution.objects.filter(pk=object_id))
        return HttpResponseRedirect(reverse("admin:orchestrator_execution_change", args=[object_id]))

    @admin.display(description="logs")
    def logs(self, obj: Execution) -> str:
        url = reverse("admin:orchestrator_logentry_changelist") + f"?execution_id={obj.id}"
        return format_html('<a href="{}">the log lines of this execution</a>', url)

    @admin.display(description="task runs")
    def task_runs(self, obj: Execution) -> str:
        count = obj.task_runs.count()
        if count <= TASK_RUNS_SHOWN:
            return str(count)
        return f"{count}: the first {TASK_RUNS_SHOWN} are listed below, all of them by GET /api/v1/executions/{obj.id}"

    @admin.display(description="labels")
    def label_list(self, obj: Execution) -> str:
        return ", ".join(f"{label['key']}: {label['value']}" for label in obj.labels or [])

    @admin.display(description="inputs")
    def input_values(self, obj: Execution) -> str:
        return _pre(obj.inputs or {})

    @admin.display(description="outputs")
    def output_values(self, obj: Execution) -> str:
        return _pre(obj.outputs) if obj.outputs else ""

    @admin.display(description="state history")
    def history(self, obj: Execution) -> str:
        return _pre("\n".join(f"{entry['date']}  {entry['state']}" for entry in obj.state_history or []))

    @admin.display(description="trigger")
    def trigger_data(self, obj: Execution) -> str:
        return _pre(obj.trigger) if obj.trigger else ""

    # Executions change only through the executor: the page reads, the actions act.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_control_permission(self, request) -> bool:
        return request.user.has_perm("orchestrator.change_execution")

    def has_delete_permission(self, request, obj=None) -> bool:
        # The executor still writes to a running execution: kill it first.
        return super().has_delete_permission(request, obj) and (obj is None or State(obj.state).is_terminal)

    def delete_model(self, request, obj):
        self.delete_queryset(request, Execution.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        # As the API's delete: with the logs and the files; an execution still running stays.
        for execution_id in queryset.values_list("id", flat=True):
            try:
                repository.delete_execution(execution_id)
            except (repository.ExecutionNotEnded, LookupError) as error:
                self.message_user(request, str(error), messages.WARNING)


# --- logs ------------------------------------------------------------------------------------

@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "level", "namespace", "flow_id", "task_id", "execution", "message")
    list_filter = ("level",)
    search_fields = ("message",)
    search_help_text = "An execution id, or a part of the message."
    ordering = ("-timestamp",)
    show_full_result_count = False
    readonly_fields = [f.name for f in LogEntry._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        # Both served by indexes: the execution's lines, and the message's trigrams (migration 0008).
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(execution_id=term) | Q(message__icontains=term)), False

    @admin.display(description="execution")
    def execution(self, obj: LogEntry) -> str:
        url = reverse("admin:orchestrator_execution_change", args=[obj.execution_id])
        return format_html('<a href="{}">{}</a>', url, obj.execution_id)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- namespace grants ------------------------------------------------------------------------

@admin.register(NamespaceGrant)
class NamespaceGrantAdmin(admin.ModelAdmin):
    list_display = ("group", "namespace", "read", "write", "execute")
    list_filter = ("group", "read", "write", "execute")
    search_fields = ("group__name", "namespace")


class NamespaceGrantInline(admin.TabularInline):
    model = NamespaceGrant
    extra = 1


# A group's page lists its namespace grants too.
admin.site.unregister(Group)


@admin.register(Group)
class GroupWithGrantsAdmin(GroupAdmin):
    inlines = [*GroupAdmin.inlines, NamespaceGrantInline]

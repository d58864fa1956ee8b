"""The Django admin: flows with their revisions, executions with their task runs, logs."""

from django.contrib import admin

from orchestrator.models import Execution, Flow, FlowRevision, LogEntry, TaskRun


class FlowRevisionInline(admin.TabularInline):
    model = FlowRevision
    fields = ("revision", "created")
    readonly_fields = ("revision", "created")
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ("namespace", "flow_id", "revision", "disabled", "updated")
    list_filter = ("namespace", "disabled")
    search_fields = ("namespace", "flow_id")
    readonly_fields = ("revision", "created", "updated")
    inlines = [FlowRevisionInline]

    # The flow's Schedule triggers (their states and PeriodicTasks) follow what is saved here.
    def save_model(self, request, obj, form, change):
        from scheduler.service import sync_flow

        super().save_model(request, obj, form, change)
        sync_flow(obj)

    def delete_model(self, request, obj):
        from scheduler.service import forget_flow

        where = (obj.namespace, obj.flow_id)
        super().delete_model(request, obj)
        forget_flow(*where)

    def delete_queryset(self, request, queryset):
        from scheduler.service import forget_flow

        deleted = list(queryset.values_list("namespace", "flow_id"))
        super().delete_queryset(request, queryset)
        for namespace, flow_id in deleted:
            forget_flow(namespace, flow_id)


@admin.register(FlowRevision)
class FlowRevisionAdmin(admin.ModelAdmin):
    list_display = ("namespace", "flow_id", "revision", "created")
    search_fields = ("namespace", "flow_id")
    readonly_fields = ("head", "namespace", "flow_id", "revision", "source", "created")


class TaskRunInline(admin.TabularInline):
    model = TaskRun
    fields = ("task_id", "value", "state", "outputs")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("seq",)


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "namespace", "flow_id", "flow_revision", "state", "start_date", "end_date")
    list_filter = ("state", "namespace")
    search_fields = ("id", "namespace", "flow_id")
    date_hierarchy = "start_date"
    readonly_fields = [f.name for f in Execution._meta.fields]
    inlines = [TaskRunInline]

    # A deleted execution's files go with it (after the deletion commits).
    def delete_model(self, request, obj):
        from orchestrator.repository import delete_execution_files

        where = (obj.namespace, obj.flow_id, obj.id)  # the deletion clears obj.id
        super().delete_model(request, obj)
        delete_execution_files(*where)

    def delete_queryset(self, request, queryset):
        from orchestrator.repository import delete_execution_files

        deleted = list(queryset.values_list("namespace", "flow_id", "id"))
        super().delete_queryset(request, queryset)
        for namespace, flow_id, execution_id in deleted:
            delete_execution_files(namespace, flow_id, execution_id)


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "level", "namespace", "flow_id", "task_id", "message")
    list_filter = ("level",)
    search_fields = ("execution_id", "message")
    readonly_fields = [f.name for f in LogEntry._meta.fields]

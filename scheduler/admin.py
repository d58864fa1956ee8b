"""Trigger states in the Django admin, beside django-celery-beat's PeriodicTasks: switch a
trigger off or on, unlock it, pause or resume its backfill."""

from django.contrib import admin, messages

from scheduler import service
from scheduler.models import ScheduledDate, TriggerState


def _each(modeladmin, request, queryset, action, done: str) -> None:
    for state in queryset:
        try:
            action(state)
        except (ValueError, LookupError) as error:
            modeladmin.message_user(request, f"{state}: {error}", messages.WARNING)
    modeladmin.message_user(request, done)


@admin.register(TriggerState)
class TriggerStateAdmin(admin.ModelAdmin):
    list_display = ("namespace", "flow_id", "trigger_id", "last_date", "next_date", "disabled",
                    "declared_enabled", "locked_until", "execution_id", "backfill_summary")
    list_filter = ("disabled", "declared_enabled", "namespace")
    search_fields = ("namespace", "flow_id", "trigger_id")
    readonly_fields = [f.name for f in TriggerState._meta.fields]
    actions = ["disable", "enable", "unlock", "pause_backfill", "resume_backfill", "cancel_backfill"]

    @admin.display(description="backfill")
    def backfill_summary(self, obj: TriggerState) -> str:
        if not obj.backfill:
            return ""
        paused = " (paused)" if obj.backfill.get("paused") else ""
        return f"{obj.backfill.get('start')} → {obj.backfill.get('end') or 'now'}, at {obj.backfill.get('cursor')}{paused}"

    @admin.action(description="Disable the selected triggers")
    def disable(self, request, queryset):
        _each(self, request, queryset, lambda s: service.set_disabled(s.namespace, s.flow_id, s.trigger_id, True),
              "Disabled.")

    @admin.action(description="Enable the selected triggers (they fire from now on)")
    def enable(self, request, queryset):
        _each(self, request, queryset, lambda s: service.set_disabled(s.namespace, s.flow_id, s.trigger_id, False),
              "Enabled.")

    @admin.action(description="Unlock the selected triggers")
    def unlock(self, request, queryset):
        _each(self, request, queryset, lambda s: service.unlock(s.namespace, s.flow_id, s.trigger_id), "Unlocked.")

    @admin.action(description="Pause their backfills")
    def pause_backfill(self, request, queryset):
        _each(self, request, queryset,
              lambda s: service.set_backfill_paused(s.namespace, s.flow_id, s.trigger_id, True), "Paused.")

    @admin.action(description="Resume their backfills")
    def resume_backfill(self, request, queryset):
        _each(self, request, queryset,
              lambda s: service.set_backfill_paused(s.namespace, s.flow_id, s.trigger_id, False), "Resumed.")

    @admin.action(description="Cancel their backfills")
    def cancel_backfill(self, request, queryset):
        _each(self, request, queryset, lambda s: service.cancel_backfill(s.namespace, s.flow_id, s.trigger_id),
              "Cancelled.")


@admin.register(ScheduledDate)
class ScheduledDateAdmin(admin.ModelAdmin):
    list_display = ("namespace", "flow_id", "trigger_id", "date", "origin", "execution_id", "created")
    search_fields = ("namespace", "flow_id", "trigger_id", "execution_id")
    readonly_fields = [f.name for f in ScheduledDate._meta.fields]

"""Trigger states in the Django admin, beside django-celery-beat's PeriodicTasks: switch a
trigger off or on, unlock or restart it, start, pause, resume or delete its backfill — with the
same functions as the API (scheduler/actions.py)."""

from __future__ import annotations

import json
from typing import Callable

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from scheduler import actions
from scheduler.models import ScheduledDate, TriggerState


def _each(modeladmin, request, queryset, action: Callable[..., object], done: str) -> None:
    changed = 0
    for state in queryset:
        try:
            action(state.namespace, state.flow_id, state.trigger_id)
            changed += 1
        except (ValueError, LookupError) as error:
            modeladmin.message_user(request, f"{state}: {error}", messages.WARNING)
    if changed:
        modeladmin.message_user(request, f"{done} ({changed})")


class BackfillForm(forms.Form):
    start = forms.CharField(help_text="ISO-8601, e.g. 2025-01-01T00:00:00Z")
    end = forms.CharField(required=False, help_text="ISO-8601; empty: up to now")
    inputs = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text='JSON object, e.g. {"scope": "replay"}; empty: the trigger\'s own')
    labels = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text='JSON object, e.g. {"backfill": "true"}')

    def _json_object(self, name: str) -> dict | None:
        text = self.cleaned_data.get(name, "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"not JSON: {error}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("give a JSON object")
        return value

    def clean_inputs(self):
        return self._json_object("inputs")

    def clean_labels(self):
        return self._json_object("labels")


@admin.register(TriggerState)
class TriggerStateAdmin(admin.ModelAdmin):
    list_display = ("namespace", "flow_id", "trigger_id", "last_date", "next_date", "disabled",
                    "declared_enabled", "locked_until", "execution_id", "backfill_summary")
    list_filter = ("disabled", "declared_enabled", "namespace")
    search_fields = ("namespace", "flow_id", "trigger_id")
    readonly_fields = [f.name for f in TriggerState._meta.fields]
    actions = ["disable", "enable", "unlock", "restart", "start_backfill", "pause_backfill", "resume_backfill",
               "delete_backfill"]

    @admin.display(description="backfill")
    def backfill_summary(self, obj: TriggerState) -> str:
        if not obj.backfill:
            return ""
        paused = " (paused)" if obj.backfill.get("paused") else ""
        return f"{obj.backfill.get('start')} → {obj.backfill.get('end') or 'now'}, at {obj.backfill.get('cursor')}{paused}"

    @admin.action(description="Disable the selected triggers")
    def disable(self, request, queryset):
        _each(self, request, queryset, lambda *key: actions.set_disabled(*key, True), "Disabled.")

    @admin.action(description="Enable the selected triggers (they fire from now on)")
    def enable(self, request, queryset):
        _each(self, request, queryset, lambda *key: actions.set_disabled(*key, False), "Enabled.")

    @admin.action(description="Unlock the selected triggers")
    def unlock(self, request, queryset):
        _each(self, request, queryset, actions.unlock, "Unlocked.")

    @admin.action(description="Restart the selected triggers (unlock; stop waiting for their last execution)")
    def restart(self, request, queryset):
        _each(self, request, queryset, actions.restart, "Restarted.")

    @admin.action(description="Start a backfill of the selected triggers…")
    def start_backfill(self, request, queryset):
        form = BackfillForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            _each(self, request, queryset,
                  lambda *key: actions.start_backfill(*key, start=data["start"], end=data["end"] or None,
                                                      inputs=data["inputs"], labels=data["labels"]),
                  "Backfill started.")
            return None
        context = {**self.admin_site.each_context(request), "form": form, "states": queryset,
                   "opts": self.model._meta, "title": "Start a backfill"}
        return TemplateResponse(request, "admin/scheduler/triggerstate/backfill.html", context)

    @admin.action(description="Pause their backfills")
    def pause_backfill(self, request, queryset):
        _each(self, request, queryset, lambda *key: actions.set_backfill_paused(*key, True), "Paused.")

    @admin.action(description="Resume their backfills")
    def resume_backfill(self, request, queryset):
        _each(self, request, queryset, lambda *key: actions.set_backfill_paused(*key, False), "Resumed.")

    @admin.action(description="Delete their backfills (the executions they started stay)")
    def delete_backfill(self, request, queryset):
        _each(self, request, queryset, actions.delete_backfill, "Backfill deleted.")


@admin.register(ScheduledDate)
class ScheduledDateAdmin(admin.ModelAdmin):
    list_display = ("namespace", "flow_id", "trigger_id", "date", "origin", "execution_id", "created")
    list_filter = ("origin",)
    search_fields = ("namespace", "flow_id", "trigger_id", "execution_id")
    readonly_fields = [f.name for f in ScheduledDate._meta.fields]

"""The KV store in the admin: one page to pick a namespace, list its keys, show, set and delete
them. The entries live in the internal storage (orchestrator/kv.py), not in a table, so the page
is a view of its own on the admin site, hung on a model without a table (KVStoreEntry) for its
place in the index and its permissions: view lists and shows, change sets, delete deletes."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from orchestrator.kv import KVError, KVStore, KVType
from orchestrator.models import Flow, KVStoreEntry
from orchestrator.storage import StorageError


class EntryForm(forms.Form):
    key = forms.CharField(max_length=250)
    type = forms.ChoiceField(choices=[(kind.value, kind.value) for kind in KVType], initial=KVType.STRING.value)
    value = forms.CharField(strip=False, widget=forms.Textarea(attrs={
        "rows": 6, "spellcheck": "false", "style": "font-family: monospace; width: 90%"}),
        help_text="A NUMBER, BOOLEAN or JSON value is written as JSON; a DATETIME as 2024-05-01T10:00:00Z; "
                  "a DURATION as PT5M.")
    ttl = forms.CharField(required=False, label="TTL", help_text="An ISO-8601 duration such as PT1H; empty: "
                                                                 "the value never expires.")
    description = forms.CharField(required=False, max_length=1000)


def _shown(value: Any) -> str:
    """A stored value as it is typed back in the form."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@admin.register(KVStoreEntry)
class KVStoreAdmin(admin.ModelAdmin):
    def get_urls(self):
        # The index links a model's changelist: here, the store's page.
        return [path("", self.admin_site.admin_view(self.store_view), name="orchestrator_kvstoreentry_changelist")]

    def store_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        namespace = (request.POST if request.method == "POST" else request.GET).get("namespace", "").strip()
        form = EntryForm()
        if request.method == "POST":
            form = self._post(request, namespace)
            if form is None:
                return HttpResponseRedirect(self._page(namespace))
        entries, shown = [], None
        if namespace:
            try:
                store = KVStore(namespace)
                entries = store.list()
                key = request.GET.get("key")
                if key and request.method == "GET":
                    shown = store.get(key)
                    if shown is None:
                        self.message_user(request, f"The key '{key}' has no value in '{namespace}'", messages.WARNING)
                    else:
                        form = EntryForm(initial={"key": key, "type": shown.entry.type.value,
                                                  "value": _shown(shown.value),
                                                  "description": shown.entry.description or ""})
            except (KVError, StorageError) as error:
                self.message_user(request, str(error), messages.ERROR)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": "KV store",
            "namespace": namespace, "entries": entries, "shown": shown, "form": form,
            "known_namespaces": Flow.objects.filter(deleted=False).values_list("namespace", flat=True)
            .distinct().order_by("namespace")[:1000],
            "can_change": self.has_change_permission(request), "can_delete": self.has_delete_permission(request),
        }
        return TemplateResponse(request, "admin/orchestrator/kvstoreentry/store.html", context)

    def _post(self, request, namespace: str) -> EntryForm | None:
        """Set or delete a key; None when done, else the form with what was refused."""
        if request.POST.get("delete"):
            if not self.has_delete_permission(request):
                raise PermissionDenied
            self._delete(request, namespace, request.POST["delete"])
            return None
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = EntryForm(request.POST)
        if not form.is_valid():
            return form
        data = form.cleaned_data
        try:
            KVStore(namespace).put(data["key"], data["value"], data["type"], ttl=data["ttl"] or None,
                                   description=data["description"] or None)
        except (KVError, StorageError) as error:
            form.add_error(None, str(error))
            return form
        self.message_user(request, f"'{data['key']}' is set in '{namespace}'", messages.SUCCESS)
        return None

    def _delete(self, request, namespace: str, key: str) -> None:
        try:
            deleted = KVStore(namespace).delete(key)
        except (KVError, StorageError) as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        if deleted:
            self.message_user(request, f"'{key}' is deleted from '{namespace}'", messages.SUCCESS)
        else:
            self.message_user(request, f"The key '{key}' had no value in '{namespace}'", messages.WARNING)

    def _page(self, namespace: str) -> str:
        return reverse("admin:orchestrator_kvstoreentry_changelist") + "?" + urlencode({"namespace": namespace})

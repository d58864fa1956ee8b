"""The types a flow can use, as Kestra's `/api/v1/plugins`: the task and trigger types of the
registries (workers/registry.py, scheduler/triggers) with the JSON Schema of their properties,
and the condition types Schedule triggers judge (scheduler/conditions.py). Harrier is one plugin:
everything it knows is built in."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from orchestrator.api.base import ERRORS, ApiView
from orchestrator.api.errors import not_found
from scheduler import conditions
from scheduler import triggers as trigger_registry
from workers import registry

CONDITION_PREFIX = "io.kestra.plugin.core.condition."
OLD_CONDITION_PREFIX = "io.kestra.core.models.conditions.types."


class PluginElement(serializers.Serializer):
    cls = serializers.CharField(help_text="the type's name, as a flow's `type` writes it")
    title = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField(), help_text="other names of the same type")
    deprecated = serializers.BooleanField()


class Plugin(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    tasks = PluginElement(many=True)
    triggers = PluginElement(many=True)
    conditions = PluginElement(many=True)


class PluginDocumentation(serializers.Serializer):
    cls = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=["task", "trigger", "condition"])
    schema = serializers.DictField(allow_null=True, help_text="the JSON Schema of its properties (null for a "
                                                               "condition)")


def _element(cls: str, title: str, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"cls": cls, "title": title, "aliases": list(aliases), "deprecated": "deprecated" in title.lower()}


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    """Every type, by kind; built once, since the registries do not change while a process runs."""
    return {
        "name": "core",
        "title": "Harrier",
        "tasks": [_element(t.name, t.title, t.aliases) for t in registry.canonical_types()],
        "triggers": [_element(t.name, t.title, t.aliases) for t in trigger_registry.canonical_types()],
        "conditions": [_element(CONDITION_PREFIX + name, f"The {name} condition of Schedule triggers",
                                (f"{CONDITION_PREFIX}{name}Condition", f"{OLD_CONDITION_PREFIX}{name}Condition"))
                       for name in conditions.condition_names()],
    }


def documentation(cls: str) -> dict[str, Any] | None:
    task_type = registry.get(cls)
    if task_type is not None and not task_type.internal:
        return {"cls": task_type.name, "title": task_type.title, "kind": "task",
                "schema": task_type.properties.model_json_schema()}
    trigger_type = trigger_registry.get(cls)
    if trigger_type is not None:
        return {"cls": trigger_type.name, "title": trigger_type.title, "kind": "trigger",
                "schema": trigger_type.properties.model_json_schema()}
    for condition in catalogue()["conditions"]:
        if cls == condition["cls"] or cls in condition["aliases"]:
            return {"cls": condition["cls"], "title": condition["title"], "kind": "condition", "schema": None}
    return None


class PluginList(ApiView):
    @extend_schema(operation_id="listPlugins", tags=["Plugins"], responses={200: Plugin(many=True), **ERRORS},
                   summary="The task, trigger and condition types Harrier knows, with their titles")
    def get(self, request):
        return Response([catalogue()])


class PluginDetail(ApiView):
    @extend_schema(operation_id="getPluginDocumentation", tags=["Plugins"],
                   responses={200: PluginDocumentation, **ERRORS},
                   summary="A type (by its name or an alias) and the JSON Schema of its properties")
    def get(self, request, cls: str):
        found = documentation(cls)
        if found is None:
            raise not_found(f"no task, trigger or condition type is named {cls!r}: GET /api/v1/plugins lists them")
        return Response(found)


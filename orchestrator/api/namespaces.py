"""Namespaces, as Kestra's `/api/v1/namespaces`: derived from the flows, as in Kestra's open-source
edition — a namespace exists while a flow lives in it or under it (`company.team.etl` makes
`company`, `company.team` and `company.team.etl` exist)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from orchestrator.api.access import namespace_rights
from orchestrator.api.base import ERRORS, ApiView
from orchestrator.api.errors import bad_request, not_found
from orchestrator.api.pagination import page_and_size
from orchestrator.models import Flow
from orchestrator.permissions import Right, under


class Namespace(serializers.Serializer):
    id = serializers.CharField()
    disabled = serializers.BooleanField()


class PagedNamespaces(serializers.Serializer):
    results = Namespace(many=True)
    total = serializers.IntegerField()


def with_parents(namespaces: list[str]) -> set[str]:
    """Each namespace and every namespace above it."""
    every = set()
    for namespace in namespaces:
        parts = namespace.split(".")
        every.update(".".join(parts[:size]) for size in range(1, len(parts) + 1))
    return every


def known_namespaces() -> set[str]:
    return with_parents(list(Flow.objects.filter(deleted=False).values_list("namespace", flat=True).distinct()))


def namespace_json(namespace: str) -> dict:
    return {"id": namespace, "disabled": False}


class NamespaceSearch(ApiView):
    @extend_schema(operation_id="searchNamespaces", tags=["Namespaces"], responses={200: PagedNamespaces, **ERRORS},
                   parameters=[OpenApiParameter("q", str, description="a part of the namespace, any case"),
                               OpenApiParameter("page", int, description="from 1"),
                               OpenApiParameter("size", int, description="at most 500"),
                               OpenApiParameter("sort", str, description="`id:asc` (the default) or `id:desc`")],
                   summary="Search the namespaces one may read (those of the flows, and the namespaces above them)")
    def get(self, request):
        page, size = page_and_size(request.query_params)
        descending = _descending(request.query_params.get("sort"))
        query = (request.query_params.get("q") or "").lower()
        rights = namespace_rights(request)
        found = sorted((n for n in known_namespaces() if query in n.lower() and rights.allows(Right.READ, n)),
                       reverse=descending)
        results = found[(page - 1) * size:page * size]
        return Response({"results": [namespace_json(n) for n in results], "total": len(found)})


def _descending(sort: str | None) -> bool:
    if sort in (None, "", "id", "id:asc"):
        return False
    if sort == "id:desc":
        return True
    raise bad_request(f"Cannot sort by {sort!r}: use id:asc or id:desc",
                      [{"path": "sort", "message": f"unknown sort {sort!r}", "line": None}])


class NamespaceDetail(ApiView):
    @extend_schema(operation_id="getNamespace", tags=["Namespaces"], responses={200: Namespace, **ERRORS},
                   summary="A namespace, if a flow lives in it or under it")
    def get(self, request, namespace: str):
        flows = Flow.objects.filter(under(namespace), deleted=False)
        if not flows.exists():
            raise not_found(f"namespace {namespace} does not exist: no flow lives in it or under it")
        return Response(namespace_json(namespace))

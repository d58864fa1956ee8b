"""Flows over HTTP, as Kestra's `/api/v1/flows`: YAML in, the flow's JSON out.

Every write goes through orchestrator/repository.py (deploy, delete_flow), which validates and
keeps the revisions; these views only read the request and shape the answer.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from orchestrator import repository
from orchestrator.api import serializers
from orchestrator.api.access import readable, require
from orchestrator.api.base import ERRORS, ApiView, whole_number
from orchestrator.api.errors import bad_request, conflict, domain_errors, flow_details, not_found
from orchestrator.api.pagination import ordering, page_and_size, paged
from orchestrator.api.parsers import YAML_PARSERS
from orchestrator.flowlang import FlowValidationError, flow_json_schema, load_yaml
from orchestrator.models import Flow, FlowRevision
from orchestrator.permissions import Right, under

# Documents of one multi-flow body are separated by a line of three dashes, as in Kestra.
_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_YAML_BODY = {"application/x-yaml": {"type": "string", "description": "the flow's YAML source"}}
# JSON is read too, only to answer a client that sends it with what to send instead.
_FLOW_PARSERS = [*YAML_PARSERS, JSONParser]
_SORTS = {"id": "flow_id", "namespace": "namespace", "revision": "revision", "updated": "updated"}


def split_documents(text: str) -> list[str]:
    """The YAML documents of a multi-flow body, blank ones left out."""
    return [document for document in _DOCUMENT_SEPARATOR.split(text) if document.strip()]


def flow_json(row: Flow | FlowRevision, *, source: bool, revision: int | None = None,
              disabled: bool = False, deleted: bool = False) -> dict[str, Any]:
    """Kestra's Flow (FlowWithSource with `source`): the YAML's properties as written, and the
    repository's own fields."""
    try:
        data = dict(load_yaml(row.source).data)
    except FlowValidationError:  # stored sources were valid when deployed; show what is left
        data = {}
    data.update(id=row.flow_id, namespace=row.namespace, revision=revision or row.revision,
                disabled=disabled, deleted=deleted)
    if source:
        data["source"] = row.source
    return data


def head_json(flow: Flow, *, source: bool) -> dict[str, Any]:
    return flow_json(flow, source=source, disabled=flow.disabled, deleted=flow.deleted)


def _source(request) -> str:
    if not isinstance(request.data, str) or not request.data.strip():
        raise bad_request("Send the flow's YAML as the body, with Content-Type: application/x-yaml")
    return request.data


def searched_flows(request):
    """The live flows the user may read that the query's `namespace` (with its sub-namespaces)
    and `q` (a part of the id or namespace) select."""
    flows = readable(request, Flow.objects.filter(deleted=False))
    namespace = request.query_params.get("namespace")
    if namespace:
        flows = flows.filter(under(namespace))
    query = request.query_params.get("q")
    if query:
        flows = flows.filter(Q(flow_id__icontains=query) | Q(namespace__icontains=query))
    return flows


def _live_flow(namespace: str, flow_id: str) -> Flow:
    flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
    if flow is None:
        raise not_found(f"flow {namespace}.{flow_id} does not exist")
    return flow


class FlowCreate(ApiView):
    parser_classes = _FLOW_PARSERS
    checks_namespaces = True

    @extend_schema(operation_id="createFlow", tags=["Flows"], request=_YAML_BODY,
                   responses={200: serializers.Flow, **ERRORS, 409: serializers.Error},
                   summary="Create a flow from its YAML source")
    def post(self, request):
        source = _source(request)
        with domain_errors():
            definition = repository.validate(source)
            require(request, Right.WRITE, definition.namespace)
            if Flow.objects.filter(namespace=definition.namespace, flow_id=definition.id, deleted=False).exists():
                raise conflict(f"flow {definition.namespace}.{definition.id} already exists: update it with "
                               f"PUT /api/v1/flows/{definition.namespace}/{definition.id}")
            flow, _ = repository.deploy(source)
        return Response(head_json(flow, source=True))


class FlowSearch(ApiView):
    @extend_schema(operation_id="searchFlows", tags=["Flows"], responses={200: serializers.PagedFlows, **ERRORS},
                   parameters=[
                       OpenApiParameter("q", str, description="a part of the flow's id or namespace"),
                       OpenApiParameter("namespace", str, description="the namespace and its sub-namespaces"),
                       OpenApiParameter("page", int, description="from 1"),
                       OpenApiParameter("size", int, description="at most 500"),
                       OpenApiParameter("sort", str, many=True, description="`id:asc`, `namespace:desc`…"),
                   ], summary="Search flows")
    def get(self, request):
        page, size = page_and_size(request.query_params)
        flows = searched_flows(request).order_by(*ordering(request.query_params, _SORTS, ["namespace", "flow_id"]), "id")
        rows, total, exact = paged(flows, page, size)
        return Response({"results": [head_json(flow, source=False) for flow in rows], "total": total,
                         "totalIsExact": exact})


class NamespaceFlows(ApiView):
    @extend_schema(operation_id="listFlowsByNamespace", tags=["Flows"],
                   responses={200: serializers.Flow(many=True), **ERRORS}, summary="The flows of one namespace")
    def get(self, request, namespace: str):
        flows = Flow.objects.filter(namespace=namespace, deleted=False).order_by("flow_id")[:1000]
        return Response([head_json(flow, source=False) for flow in flows])


class FlowDetail(ApiView):
    parser_classes = _FLOW_PARSERS

    @extend_schema(operation_id="getFlow", tags=["Flows"], responses={200: serializers.Flow, **ERRORS},
                   parameters=[OpenApiParameter("source", bool, description="include the YAML source"),
                               OpenApiParameter("revision", int, description="a past revision")],
                   summary="Get a flow")
    def get(self, request, namespace: str, flow_id: str):
        flow = _live_flow(namespace, flow_id)
        source = request.query_params.get("source", "false").lower() == "true"
        wanted = whole_number(request.query_params.get("revision"), "revision")
        if wanted is None:
            return Response(head_json(flow, source=source))
        row = FlowRevision.objects.filter(namespace=namespace, flow_id=flow_id, revision=wanted).first()
        if row is None:
            raise not_found(f"flow {namespace}.{flow_id} has no revision {wanted}")
        return Response(flow_json(row, source=source, disabled=flow.disabled))

    @extend_schema(operation_id="updateFlow", tags=["Flows"], request=_YAML_BODY,
                   responses={200: serializers.Flow, **ERRORS}, summary="Update a flow from its YAML source")
    def put(self, request, namespace: str, flow_id: str):
        source = _source(request)
        _live_flow(namespace, flow_id)
        with domain_errors():
            definition = repository.validate(source)
            mismatch = [(key, given, expected) for key, given, expected in
                        (("namespace", definition.namespace, namespace), ("id", definition.id, flow_id))
                        if given != expected]
            if mismatch:
                raise bad_request("The flow's id and namespace cannot change: create a new flow instead", [
                    {"path": key, "message": f"is {given!r}, the URL names {expected!r}", "line": None}
                    for key, given, expected in mismatch])
            flow, _ = repository.deploy(source)
        return Response(head_json(flow, source=True))

    @extend_schema(operation_id="deleteFlow", tags=["Flows"], responses={204: None, **ERRORS},
                   summary="Delete a flow (its revisions and executions stay)")
    def delete(self, request, namespace: str, flow_id: str):
        with domain_errors():
            repository.delete_flow(namespace, flow_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FlowRevisions(ApiView):
    @extend_schema(operation_id="listFlowRevisions", tags=["Flows"], responses={200: serializers.Flow(many=True),
                   **ERRORS}, summary="Every revision of a flow, with its source, oldest first")
    def get(self, request, namespace: str, flow_id: str):
        flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id).first()
        if flow is None:
            raise not_found(f"flow {namespace}.{flow_id} does not exist")
        rows = FlowRevision.objects.filter(head=flow).order_by("revision")
        return Response([flow_json(row, source=True) for row in rows])


class FlowValidate(ApiView):
    parser_classes = _FLOW_PARSERS
    checks_namespaces = True  # it stores nothing: anyone signed in may validate

    @extend_schema(operation_id="validateFlows", tags=["Flows"], request=_YAML_BODY,
                   responses={200: serializers.FlowValidation(many=True), **ERRORS},
                   summary="Validate flows without storing them (several documents separated by ---)")
    def post(self, request):
        documents = split_documents(_source(request))
        return Response([_validation(index, document) for index, document in enumerate(documents)])


def _validation(index: int, source: str) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, "flow": None, "namespace": None, "constraints": None, "details": [],
                              "outdated": False, "deprecationPaths": [], "warnings": [], "infos": []}
    try:
        definition = repository.validate(source)
    except FlowValidationError as error:
        result.update(constraints=str(error), details=flow_details(error))
        try:
            data = load_yaml(source).data
        except FlowValidationError:
            return result
        if isinstance(data, dict):
            result.update(flow=_text(data.get("id")), namespace=_text(data.get("namespace")))
        return result
    result.update(flow=definition.id, namespace=definition.namespace)
    return result


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class FlowSchema(ApiView):
    @extend_schema(operation_id="flowJsonSchema", tags=["Plugins"], responses={200: OpenApiTypes.OBJECT, **ERRORS},
                   summary="The JSON Schema of a flow (draft 2020-12), for editors")
    def get(self, request):
        return Response(flow_json_schema())


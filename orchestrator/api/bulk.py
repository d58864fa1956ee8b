"""Many flows at once, as Kestra's `/api/v1/flows/import`, `/flows/bulk`, `POST /flows/{namespace}`
and `/flows/export/…` (docs/api.md, Bulk flows).

Every source is validated before anything is stored, and what is stored is stored in one
transaction: a request changes all the flows it names or none of them. Import is the one
exception Kestra makes — without `failOnError`, the valid flows of an import are stored and the
refused ones are named in the answer — never a flow half-stored, never a refusal unsaid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as fields
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from orchestrator import repository
from orchestrator.api import archives, serializers
from orchestrator.api.access import require
from orchestrator.api.base import ERRORS, ApiView, refuse_larger_than
from orchestrator.api.errors import bad_request, flow_details, not_found, too_large
from orchestrator.api.files import JsonOnlyNegotiation
from orchestrator.api.flows import NamespaceFlows, head_json, searched_flows, split_documents
from orchestrator.api.parsers import YAML_PARSERS
from orchestrator.flowlang import FlowValidationError
from orchestrator.models import Flow
from orchestrator.permissions import Right

# An export is one zip in one answer: bounded, like every list of the API.
MAX_EXPORT = 10_000
_YAML_BODY = {"application/x-yaml": {"type": "string", "description": "flows' YAML sources separated by ---"}}
_FLOW_IDS = inline_serializer("FlowIdWithNamespace", {"id": fields.CharField(), "namespace": fields.CharField()},
                              many=True)
_ZIP = {(200, "application/octet-stream"): OpenApiTypes.BINARY}


@dataclass(frozen=True)
class Candidate:
    """A flow source of a request, named as the client will recognise it (a file name, an index)."""

    name: str
    source: str


@dataclass(frozen=True)
class Refusal:
    name: str
    details: list[dict[str, Any]]


# --- reading what the client sent ------------------------------------------------------------

def uploaded_sources(upload) -> list[Candidate | archives.Entry]:
    """The flow sources of an uploaded file: each YAML file of a zip archive, or each document of a
    YAML file (named by its index, as Kestra does). Entries that cannot be sources are returned
    as refused archive entries."""
    if upload.size > archives.MAX_TOTAL_BYTES:
        raise too_large(f"The file is larger than {archives.MAX_TOTAL_BYTES} bytes")
    head = upload.read(len(archives.ZIP_MAGIC))
    upload.seek(0)
    if archives.is_zip(upload.name or "", head):
        return [_entry_source(entry) for entry in archives.read_zip(upload, settings.HARRIER_MAX_FLOW_BYTES)]
    documents = split_documents(_text(upload.read(), "The file"))
    if len(documents) > archives.MAX_ENTRIES:
        raise too_large(f"The file holds {len(documents)} flows; at most {archives.MAX_ENTRIES} are imported at once")
    return [Candidate(str(index), document) for index, document in enumerate(documents)]


def _entry_source(entry: archives.Entry) -> Candidate | archives.Entry:
    if entry.refused:
        return entry
    if not entry.name.lower().endswith((".yml", ".yaml")):
        return archives.Entry(entry.name, None, "it is not a .yml or .yaml file")
    try:
        return Candidate(entry.name, entry.data.decode("utf-8"))
    except UnicodeDecodeError:
        return archives.Entry(entry.name, None, "it is not UTF-8 text")


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{what} is not UTF-8 text") from None


def _flag(request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    if value.lower() not in ("true", "false"):
        raise bad_request(f"{name} must be true or false", [{"path": name, "message": "true or false", "line": None}])
    return value.lower() == "true"


# --- deciding --------------------------------------------------------------------------------

def validated(candidates: list[Candidate]) -> tuple[list[tuple[Candidate, Any]], list[Refusal]]:
    """(each valid source with its definition, each refused one with its problems). A flow given
    twice is refused: which of the two should win is not for the server to guess."""
    valid, refused, seen = [], [], {}
    for candidate in candidates:
        try:
            definition = repository.validate(candidate.source)
        except FlowValidationError as error:
            refused.append(Refusal(candidate.name, flow_details(error)))
            continue
        key = (definition.namespace, definition.id)
        if key in seen:
            refused.append(Refusal(candidate.name, [{"path": "", "line": None,
                                                     "message": f"flow {key[0]}.{key[1]} is also given by {seen[key]}"}]))
            continue
        seen[key] = candidate.name
        valid.append((candidate, definition))
    return valid, refused


def _joined(name: str, path: str) -> str:
    return f"{name}: {path}" if path else name


def refusal_details(refused: list[Refusal]) -> list[dict[str, Any]]:
    """Every problem as an error detail whose path starts with the source's name."""
    return [{**detail, "path": _joined(refusal.name, detail["path"])} for refusal in refused for detail in refusal.details]


def check_namespaces(valid: list[tuple[Candidate, Any]], namespace: str | None, children: bool) -> None:
    if namespace is None:
        return
    outside = [(candidate, definition) for candidate, definition in valid
               if definition.namespace != namespace
               and not (children and definition.namespace.startswith(namespace + "."))]
    if outside:
        where = f"'{namespace}'" + (" or under it" if children else "")
        raise bad_request(f"Every flow must be in namespace {where}", [
            {"path": _joined(candidate.name, "namespace"), "line": None,
             "message": f"is {definition.namespace!r}, not in {where}"} for candidate, definition in outside])


@transaction.atomic
def store(valid: list[tuple[Candidate, Any]], delete_absent_from: str | None) -> list[dict[str, Any]]:
    """Deploy every valid flow, and delete the flows of `delete_absent_from` that are not among
    them; the flows' JSON, deleted ones first (as Kestra answers)."""
    deleted = []
    if delete_absent_from is not None:
        kept = {definition.id for _, definition in valid if definition.namespace == delete_absent_from}
        for flow in Flow.objects.filter(namespace=delete_absent_from, deleted=False).exclude(flow_id__in=kept):
            deleted.append(repository.delete_flow(flow.namespace, flow.flow_id))
    stored = [repository.deploy(candidate.source)[0] for candidate, _ in valid]
    return [head_json(flow, source=False) for flow in (*deleted, *stored)]


# --- views -----------------------------------------------------------------------------------

def require_writes(request, valid: list[tuple[Candidate, Any]]) -> None:
    """Refuse (403) the whole request if the user may not change one of the flows' namespaces."""
    for namespace in sorted({definition.namespace for _, definition in valid}):
        require(request, Right.WRITE, namespace)


class FlowImport(ApiView):
    parser_classes = [MultiPartParser]
    checks_namespaces = True  # each flow's, once read

    @extend_schema(
        operation_id="importFlows", tags=["Flows"],
        request={"multipart/form-data": inline_serializer("FlowImportRequest", {"fileUpload": fields.FileField()})},
        parameters=[OpenApiParameter("failOnError", bool, description="refuse the whole import (400, nothing "
                                                                      "stored) when any flow is invalid")],
        responses={200: {"type": "array", "items": {"type": "string"}}, **ERRORS, 413: serializers.Error, 415: serializers.Error},
        summary="Import flows from a zip of YAML files or a multi-document YAML file; answers the names "
                "of those refused (file names, or document indexes)")
    def post(self, request):
        # The multipart envelope adds a little to the file itself.
        refuse_larger_than(request, archives.MAX_TOTAL_BYTES + 64 * 1024, "The upload")
        upload = request.FILES.get("fileUpload")
        if upload is None:
            raise bad_request("Send the file as the multipart field fileUpload",
                              [{"path": "fileUpload", "message": "required", "line": None}])
        fail_on_error = _flag(request, "failOnError", False)
        sources = uploaded_sources(upload)
        unusable = [Refusal(e.name, [{"path": "", "message": e.refused, "line": None}]) for e in sources
                    if isinstance(e, archives.Entry)]
        valid, refused = validated([c for c in sources if isinstance(c, Candidate)])
        refused = unusable + refused
        if refused and fail_on_error:
            raise bad_request(f"{len(refused)} file(s) or flow(s) are refused; nothing was imported",
                              refusal_details(refused))
        require_writes(request, valid)
        store(valid, None)
        return Response([refusal.name for refusal in refused])


def _bulk_update(request, namespace: str | None, *, delete_default: bool) -> Response:
    if not isinstance(request.data, str):
        raise bad_request("Send the flows' YAML as the body, with Content-Type: application/x-yaml")
    delete = _flag(request, "delete", delete_default)
    children = _flag(request, "allowNamespaceChild", False)
    if delete and not namespace:
        raise bad_request("delete=true needs a namespace: name the namespace whose other flows are deleted",
                          [{"path": "namespace", "message": "required with delete=true", "line": None}])
    candidates = [Candidate(f"[{index}]", document) for index, document in enumerate(split_documents(request.data))]
    valid, refused = validated(candidates)
    if refused:
        raise bad_request(f"{len(refused)} flow(s) are refused; nothing was changed", refusal_details(refused))
    check_namespaces(valid, namespace, children)
    if namespace:
        require(request, Right.WRITE, namespace)
    require_writes(request, valid)
    return Response(store(valid, namespace if delete else None))


class FlowBulk(ApiView):
    parser_classes = YAML_PARSERS
    checks_namespaces = True  # the namespace named, and each flow's

    @extend_schema(operation_id="bulkUpdateFlows", tags=["Flows"], request=_YAML_BODY,
                   parameters=[OpenApiParameter("namespace", str, description="the namespace every flow must be in"),
                               OpenApiParameter("delete", bool, description="delete the namespace's flows the body "
                                                                            "does not hold (default true; needs "
                                                                            "namespace)"),
                               OpenApiParameter("allowNamespaceChild", bool, description="flows may also be in "
                                                                                         "namespaces under it")],
                   responses={200: serializers.Flow(many=True), **ERRORS, 415: serializers.Error},
                   summary="Create, update and delete flows from a multi-document YAML body, all or none")
    def post(self, request):
        return _bulk_update(request, request.query_params.get("namespace") or None, delete_default=True)


class NamespaceFlowsUpdate(NamespaceFlows):
    """`/flows/{namespace}`: its flows (GET), and replacing them (POST), as Kestra's CLI deploys."""

    parser_classes = YAML_PARSERS

    @extend_schema(operation_id="updateFlowsInNamespace", tags=["Flows"], request=_YAML_BODY,
                   parameters=[OpenApiParameter("delete", bool, description="delete the namespace's flows the body "
                                                                            "does not hold (default true)")],
                   responses={200: serializers.Flow(many=True), **ERRORS, 415: serializers.Error},
                   summary="Create, update and delete the flows of a namespace from a multi-document YAML body")
    def post(self, request, namespace: str):
        return _bulk_update(request, namespace, delete_default=True)


def _zip_response(flows: list[Flow], name_of) -> FileResponse:
    archive = archives.write_zip((name_of(flow), flow.source) for flow in flows)
    return FileResponse(archive, as_attachment=True, filename="flows.zip", content_type="application/octet-stream")


class FlowExportByQuery(ApiView):
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(operation_id="exportFlowsByQuery", tags=["Flows"], responses={**_ZIP, **ERRORS},
                   parameters=[OpenApiParameter("namespace", str, description="the namespace and its sub-namespaces"),
                               OpenApiParameter("q", str, description="a part of the flow's id or namespace")],
                   summary="A zip of the YAML sources of the flows found")
    def get(self, request):
        found = list(searched_flows(request).order_by("namespace", "flow_id")[:MAX_EXPORT + 1])
        if len(found) > MAX_EXPORT:
            raise too_large(f"More than {MAX_EXPORT} flows match: narrow the export with namespace or q")
        return _zip_response(found, lambda flow: f"{flow.namespace}-{flow.flow_id}.yml")


class FlowExportByIds(ApiView):
    parser_classes = [JSONParser]
    checks_namespaces = True  # it only reads, each flow's namespace
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(operation_id="exportFlowsByIds", tags=["Flows"], request=_FLOW_IDS,
                   responses={**_ZIP, **ERRORS, 415: serializers.Error},
                   summary="A zip of the YAML sources of the flows named")
    def post(self, request):
        wanted = _flow_ids(request.data)
        flows = []
        for namespace, flow_id in wanted:
            missing = f"flow {namespace}.{flow_id} does not exist"
            require(request, Right.READ, namespace, hidden=missing)
            flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
            if flow is None:
                raise not_found(missing)
            flows.append(flow)
        return _zip_response(flows, lambda flow: f"{flow.namespace}.{flow.flow_id}.yaml")


def _flow_ids(data: Any) -> list[tuple[str, str]]:
    if not isinstance(data, list):
        raise bad_request('Send a JSON list of flows: [{"namespace": "company.team", "id": "hello"}, …]')
    if len(data) > MAX_EXPORT:
        raise too_large(f"At most {MAX_EXPORT} flows are exported at once")
    ids = []
    for index, item in enumerate(data):
        if not (isinstance(item, dict) and _storable(item.get("id")) and _storable(item.get("namespace"))):
            raise bad_request("Each flow is named by its namespace and id",
                              [{"path": f"[{index}]", "message": "needs namespace and id, as text without NUL "
                                                                 "characters", "line": None}])
        ids.append((item["namespace"], item["id"]))
    return list(dict.fromkeys(ids))


def _storable(value: Any) -> bool:
    """Text PostgreSQL can hold: no NUL, no lone surrogate (JSON's escapes allow both)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

"""The files of an execution over HTTP, as Kestra's `/api/v1/executions/{executionId}/file…`:
download, size and a preview of the first lines.

A `path` comes from the client and is read as hostile: it must be a valid `kestra:///…` URI
(orchestrator/storage/uris.py refuses traversal, encoded separators, control characters) and lie
inside this execution's own directory of the internal storage. Any other file — another
execution's, a namespace file, something outside the storage — is answered 404 with the reason,
whether it exists or not, so that the API tells nothing about files the execution cannot see.
"""

from __future__ import annotations

import codecs
import mimetypes
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from orchestrator.api.access import require
from orchestrator.api.base import ERRORS, ApiView, whole_number
from orchestrator.api.errors import ApiError, bad_request, not_found
from orchestrator.api.executions import FORM_PARSERS, create_execution
from orchestrator.api.serializers import Error
from orchestrator.models import Execution
from orchestrator.permissions import Right
from orchestrator.storage import (
    CHUNK_SIZE,
    InvalidStorageURI,
    StorageError,
    StorageFileNotFound,
    StorageURI,
    get_storage,
    parse_uri,
)
from orchestrator.storage.uris import execution_location

DEFAULT_PREVIEW_ROWS = 100
MAX_PREVIEW_ROWS = 5000
# A preview reads no more than this, however long its lines are.
MAX_PREVIEW_BYTES = 1024 * 1024

FILE_ERRORS = {**ERRORS, 503: Error}
_PATH = OpenApiParameter("path", str, required=True, description="the file's `kestra:///…` URI, as the execution's "
                                                                  "outputs give it")


class FileMetas(serializers.Serializer):
    size = serializers.IntegerField(help_text="in bytes")


class FilePreview(serializers.Serializer):
    extension = serializers.CharField(help_text="the file name's extension, lowercase, or empty")
    type = serializers.CharField(help_text="`TEXT`: the content is the file's first lines")
    content = serializers.CharField(help_text="the first lines")
    truncated = serializers.BooleanField(help_text="whether the file goes on after them")


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Answer with the view's first renderer (JSON) whatever the client accepts: the successful
    answers of these views are streams built by hand (a file, server-sent events), and an error
    must still reach a client that asked for `text/event-stream` or `application/octet-stream`."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def readable_execution(request, execution_id: str) -> Execution:
    """The execution, if the user may read its namespace (else, as when it is missing, 404)."""
    missing = f"execution {execution_id} does not exist"
    execution = Execution.objects.filter(id=execution_id).first()
    if execution is None:
        raise not_found(missing)
    require(request, Right.READ, execution.namespace, hidden=missing)
    return execution


def execution_file(execution: Execution, path: str | None) -> StorageURI:
    """The storage location `path` names, refused unless it is a file of this execution."""
    if not path:
        raise bad_request("path is required: the file's kestra:/// URI",
                          [{"path": "path", "message": "required", "line": None}])
    try:
        location = parse_uri(path)
    except InvalidStorageURI as error:
        raise bad_request(str(error), [{"path": "path", "message": str(error), "line": None}]) from None
    own = execution_location(execution.namespace, execution.flow_id, execution.id)
    if not location.is_under(own):
        raise not_found(f"{path!r} is not a file of execution {execution.id}: its files are under {own.uri}/")
    return location


@contextmanager
def storage_errors(location: StorageURI) -> Iterator[None]:
    """A missing file is a 404; a storage that cannot answer (S3 unreachable) a 503 with the reason."""
    try:
        yield
    except StorageFileNotFound:
        raise not_found(f"{location.uri!r} does not exist (or was deleted with the execution's files)") from None
    except StorageError as error:
        raise ApiError(f"The internal storage cannot serve the file now: {error}", 503) from None


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk


class ExecutionReader(ApiView):
    """A view reading an execution's files or following it."""

    content_negotiation_class = JsonOnlyNegotiation
    checks_namespaces = True


class ExecutionWordView(ExecutionReader):
    """A GET on /executions/{executionId}/{word}. A POST on that path has the shape of the
    creation of an execution of flow `{word}` in namespace `{executionId}`, and is that."""

    word = ""
    parser_classes = FORM_PARSERS

    @extend_schema(exclude=True)
    def post(self, request, execution_id: str):
        require(request, Right.EXECUTE, execution_id)
        return create_execution(request, execution_id, self.word)


class _FileView(ExecutionReader):
    def located(self, request, execution_id: str) -> tuple[StorageURI, int]:
        location = execution_file(readable_execution(request, execution_id), request.query_params.get("path"))
        with storage_errors(location):
            return location, get_storage().size(location)


class ExecutionFile(_FileView, ExecutionWordView):
    word = "file"

    @extend_schema(operation_id="downloadFileFromExecution", tags=["Executions"], parameters=[_PATH],
                   responses={(200, "*/*"): OpenApiTypes.BINARY, **FILE_ERRORS},
                   summary="Download a file of an execution, with the content type its name implies")
    def get(self, request, execution_id: str):
        location, size = self.located(request, execution_id)
        with storage_errors(location):  # deleted since, or the storage went away
            stream = get_storage().get(location)
        content_type = mimetypes.guess_type(location.name)[0] or "application/octet-stream"
        response = StreamingHttpResponse(_chunks(stream), content_type=content_type)
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = content_disposition_header(True, location.name)
        return response


class ExecutionFileMetas(_FileView):
    @extend_schema(operation_id="getFileMetadatasFromExecution", tags=["Executions"], parameters=[_PATH],
                   responses={200: FileMetas, **FILE_ERRORS}, summary="The size of a file of an execution")
    def get(self, request, execution_id: str):
        _, size = self.located(request, execution_id)
        return Response({"size": size})


class ExecutionFilePreview(_FileView):
    @extend_schema(operation_id="previewFileFromExecution", tags=["Executions"],
                   parameters=[_PATH,
                               OpenApiParameter("maxRows", int, description=f"lines to show, at most "
                                                                            f"{MAX_PREVIEW_ROWS} (default "
                                                                            f"{DEFAULT_PREVIEW_ROWS})"),
                               OpenApiParameter("encoding", str, description="the file's text encoding "
                                                                             "(default UTF-8)")],
                   responses={200: FilePreview, **FILE_ERRORS},
                   summary="The first lines of a text file of an execution")
    def get(self, request, execution_id: str):
        rows = whole_number(request.query_params.get("maxRows"), "maxRows") or DEFAULT_PREVIEW_ROWS
        if rows > MAX_PREVIEW_ROWS:
            raise bad_request(f"maxRows is at most {MAX_PREVIEW_ROWS}",
                              [{"path": "maxRows", "message": f"at most {MAX_PREVIEW_ROWS}", "line": None}])
        encoding = _encoding(request.query_params.get("encoding") or "UTF-8")
        location, size = self.located(request, execution_id)
        with storage_errors(location), get_storage().get(location) as stream:
            head = stream.read(MAX_PREVIEW_BYTES)
        text, truncated = _first_lines(head, encoding, rows, whole=size <= len(head))
        extension = location.name.rsplit(".", 1)[1].lower() if "." in location.name else ""
        return Response({"extension": extension, "type": "TEXT", "content": text, "truncated": truncated})


def _encoding(name: str) -> str:
    try:
        "".encode(name)  # refuses, besides unknown names, codecs that are not text encodings (rot13, zlib)
        return codecs.lookup(name).name
    except LookupError:
        raise bad_request(f"encoding {name!r} is unknown or not a text encoding: name one such as UTF-8 or ISO-8859-1",
                          [{"path": "encoding", "message": "an unknown encoding", "line": None}]) from None


def _first_lines(head: bytes, encoding: str, rows: int, whole: bool) -> tuple[str, bool]:
    """The first `rows` lines of a file's first bytes, and whether anything was left out."""
    wide = any(width in encoding for width in ("16", "32"))
    if b"\x00" in head and not wide:
        raise bad_request("The file is not text: download it instead of previewing it")
    try:
        # Incremental: bytes that stop inside a character are kept back rather than refused.
        text = codecs.getincrementaldecoder(encoding)("strict").decode(head, final=whole)
    except UnicodeDecodeError:
        raise bad_request(f"The file is not {encoding} text: name its encoding, or download it",
                          [{"path": "encoding", "message": f"the file does not decode as {encoding}",
                            "line": None}]) from None
    lines = text.splitlines(keepends=True)
    if not whole and len(lines) > 1:
        lines.pop()  # the last line may be cut short
    return "".join(lines[:rows]), len(lines) > rows or not whole

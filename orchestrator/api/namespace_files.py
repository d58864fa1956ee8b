"""A namespace's files over HTTP, as Kestra's `/api/v1/namespaces/{namespace}/files…` (docs/api.md,
Namespace files). They are the internal storage's `kestra:///<namespace path>/_files/…`, the
files that scripts' `namespaceFiles` and the `read()` function use.

A `path` is relative to the namespace's files; a leading `/` names their root, as Kestra's
clients write it (`/scripts/etl.py`). Paths come from the client and are read as hostile:
`..` and `.` segments, a second leading `/`, backslashes, NUL and control characters, and
anything orchestrator/storage/uris.py refuses are answered 400 with the reason.

The storage keeps files, not directories: a directory is there while a file is under it, so
an empty directory cannot be made, and a directory disappears with its last file. The storage
keeps no dates either: `creationTime` and `lastModifiedTime` are null.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from orchestrator.api import archives
from orchestrator.api.base import ERRORS, ApiView, refuse_larger_than
from orchestrator.api.errors import bad_request, conflict, not_found, too_large
from orchestrator.api.files import JsonOnlyNegotiation
from orchestrator.api.serializers import Error
from orchestrator.storage import (
    InvalidStorageURI,
    StorageError,
    StorageFileNotFound,
    StorageURI,
    get_storage,
    parse_uri,
)
from orchestrator.storage.uris import namespace_files_location

FILE, DIRECTORY = "File", "Directory"


class FileAttributes(serializers.Serializer):
    fileName = serializers.CharField()
    type = serializers.ChoiceField(choices=[FILE, DIRECTORY])
    size = serializers.IntegerField(help_text="in bytes; 0 for a directory")
    creationTime = serializers.IntegerField(allow_null=True, help_text="not kept by the storage: null")
    lastModifiedTime = serializers.IntegerField(allow_null=True, help_text="not kept by the storage: null")


def _path_parameter(description: str, required: bool = True) -> OpenApiParameter:
    return OpenApiParameter("path", str, required=required, description=description)


def _invalid(name: str, error: Exception):
    return bad_request(str(error), [{"path": name, "message": str(error), "line": None}])


def files_root(namespace: str) -> StorageURI:
    try:
        return namespace_files_location(namespace)
    except InvalidStorageURI as error:
        raise _invalid("namespace", error) from None


def located(namespace: str, path: str | None, name: str = "path", *, root: bool = False) -> StorageURI:
    """The storage location of `path` among the namespace's files; their root itself only when
    `root` allows it."""
    base = files_root(namespace)
    relative = path or ""
    if relative.startswith("/"):
        relative = relative[1:]
    if root and relative.endswith("/"):
        relative = relative[:-1]
    if not relative:
        if root:
            return base
        raise bad_request(f"{name} is required: a file's path, such as /scripts/etl.py",
                          [{"path": name, "message": "required", "line": None}])
    if relative.startswith("/"):
        raise _invalid(name, InvalidStorageURI(f"{path!r} is not a namespace file's path: it starts with '//'"))
    try:
        return base.child(*relative.split("/"))
    except InvalidStorageURI as error:
        raise _invalid(name, error) from None


def _relative(location: StorageURI, base: StorageURI) -> tuple[str, ...]:
    return location.segments[len(base.segments):]


def _under(location: StorageURI) -> list[tuple[tuple[str, ...], int]]:
    """Every file under the directory `location`: (its path segments below it, its size)."""
    return [(_relative(parse_uri(stored.uri), location), stored.size) for stored in get_storage().list(location)]


@contextmanager
def storage_refusals() -> Iterator[None]:
    """What the storage refuses, as answers: a path it will not follow (a link out of the
    local storage directory) is a 400, a file and a directory racing for one name a 409."""
    try:
        yield
    except InvalidStorageURI as error:
        raise _invalid("path", error) from None
    except StorageFileNotFound:
        raise
    except StorageError as error:
        raise conflict(str(error)) from None


def attributes(name: str, kind: str, size: int = 0) -> dict[str, Any]:
    return {"fileName": name, "type": kind, "size": size, "creationTime": None, "lastModifiedTime": None}


def _is_file(location: StorageURI) -> bool:
    return get_storage().exists(location)


def _is_directory(location: StorageURI, base: StorageURI) -> bool:
    return location == base or bool(get_storage().list(location))


def _file_above(location: StorageURI, base: StorageURI) -> StorageURI | None:
    """A file where a directory of `location`'s path should be."""
    for end in range(len(base.segments) + 1, len(location.segments)):
        above = StorageURI(location.segments[:end])
        if _is_file(above):
            return above
    return None


def _check_writable(location: StorageURI, base: StorageURI, shown: str) -> None:
    """The same answer on every storage: a file and a directory never share a name."""
    if _is_directory(location, base):
        raise conflict(f"{shown} is a directory: name a file inside it")
    blocking = _file_above(location, base)
    if blocking is not None:
        raise conflict(f"{shown} cannot be written: /{'/'.join(_relative(blocking, base))} is a file, not a directory")


def _shown(location: StorageURI, base: StorageURI) -> str:
    return "/" + "/".join(_relative(location, base))


def _move(source: StorageURI, target: StorageURI, base: StorageURI, namespace: str) -> None:
    """Move a file, or every file of a directory, refusing before anything moves when a
    destination is taken. Each file is copied, then deleted: a failure midway leaves files in
    both places, never in neither."""
    if _is_file(source):
        moves = [(source, target)]
    else:
        moves = [(source.child(*below), target.child(*below)) for below, _ in _under(source)]
        if not moves:
            raise not_found(f"namespace {namespace} has no file or directory {_shown(source, base)}")
    for _, destination in moves:
        if _is_file(destination):
            raise conflict(f"{_shown(destination, base)} exists: delete it first")
        _check_writable(destination, base, _shown(destination, base))
    storage = get_storage()
    for origin, destination in moves:
        with storage.get(origin) as stream:
            storage.put(destination, stream)
        storage.delete(origin)


class NamespaceFiles(ApiView):
    parser_classes = [MultiPartParser]
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(operation_id="getFileContent", tags=["Files"], parameters=[_path_parameter("the file, e.g. "
                                                                                            "/scripts/etl.py")],
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
                   summary="Download a namespace file")
    def get(self, request, namespace: str):
        location = located(namespace, request.query_params.get("path"))
        try:
            with storage_refusals():
                stream = get_storage().get(location)
        except StorageFileNotFound:
            raise not_found(f"namespace {namespace} has no file {_shown(location, files_root(namespace))}") from None
        return FileResponse(stream, as_attachment=True, filename=location.name,
                            content_type="application/octet-stream")

    @extend_schema(operation_id="createNamespaceFile", tags=["Files"],
                   parameters=[_path_parameter("where the file goes, e.g. /scripts/etl.py")],
                   request={"multipart/form-data": inline_serializer("NamespaceFileUpload",
                                                                     {"fileContent": serializers.FileField()})},
                   responses={200: FileAttributes, **ERRORS, 409: Error, 413: Error, 415: Error},
                   summary="Upload a namespace file (replacing the file of that path)")
    def post(self, request, namespace: str):
        refuse_larger_than(request, settings.HARRIER_MAX_UPLOAD_BYTES)
        base = files_root(namespace)
        location = located(namespace, request.query_params.get("path"))
        upload = request.FILES.get("fileContent")
        if upload is None:
            raise bad_request("Send the file as the multipart field fileContent",
                              [{"path": "fileContent", "message": "required", "line": None}])
        with storage_refusals():
            _check_writable(location, base, _shown(location, base))
            size = get_storage().put(location, upload)
        return Response(attributes(location.name, FILE, size))

    @extend_schema(operation_id="moveFileDirectory", tags=["Files"], request=None,
                   parameters=[OpenApiParameter("from", str, required=True, description="the file or directory"),
                               OpenApiParameter("to", str, required=True, description="its new path")],
                   responses={204: None, **ERRORS, 409: Error}, summary="Move a namespace file or directory")
    def put(self, request, namespace: str):
        base = files_root(namespace)
        source = located(namespace, request.query_params.get("from"), "from")
        target = located(namespace, request.query_params.get("to"), "to")
        if target == source or target.is_under(source):
            raise bad_request(f"{_shown(source, base)} cannot be moved into itself")
        with storage_refusals():
            _move(source, target, base, namespace)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="deleteFileDirectory", tags=["Files"],
                   parameters=[_path_parameter("the file or directory")], responses={204: None, **ERRORS},
                   summary="Delete a namespace file, or a directory and everything in it")
    def delete(self, request, namespace: str):
        base = files_root(namespace)
        location = located(namespace, request.query_params.get("path"))
        storage = get_storage()
        with storage_refusals():
            deleted = storage.delete(location) or storage.delete_prefix(location)
        if not deleted:
            raise not_found(f"namespace {namespace} has no file or directory {_shown(location, base)}")
        return Response(status=status.HTTP_204_NO_CONTENT)


class NamespaceDirectory(ApiView):
    @extend_schema(operation_id="listNamespaceDirectoryFiles", tags=["Files"],
                   parameters=[_path_parameter("the directory (default: the root, /)", required=False)],
                   responses={200: FileAttributes(many=True), **ERRORS},
                   summary="The files and directories of a namespace directory")
    def get(self, request, namespace: str):
        base = files_root(namespace)
        location = located(namespace, request.query_params.get("path"), root=True)
        content = _under(location)
        if not content and location != base:
            if _is_file(location):
                raise bad_request(f"{_shown(location, base)} is a file, not a directory")
            raise not_found(f"namespace {namespace} has no directory {_shown(location, base)}")
        children: dict[str, dict[str, Any]] = {}
        for below, size in content:
            if len(below) == 1:
                children[below[0]] = attributes(below[0], FILE, size)
            else:
                children.setdefault(below[0], attributes(below[0], DIRECTORY))
        return Response([children[name] for name in sorted(children)])


class NamespaceFileStats(ApiView):
    @extend_schema(operation_id="getFileMetadatas", tags=["Files"],
                   parameters=[_path_parameter("the file or directory (default: the root, /)", required=False)],
                   responses={200: FileAttributes, **ERRORS},
                   summary="The type and size of a namespace file or directory")
    def get(self, request, namespace: str):
        base = files_root(namespace)
        location = located(namespace, request.query_params.get("path"), root=True)
        if location != base:
            try:
                return Response(attributes(location.name, FILE, get_storage().size(location)))
            except StorageFileNotFound:
                pass
        if not _is_directory(location, base):
            raise not_found(f"namespace {namespace} has no file or directory {_shown(location, base)}")
        return Response(attributes("" if location == base else location.name, DIRECTORY))


class NamespaceFileSearch(ApiView):
    @extend_schema(operation_id="searchNamespaceFiles", tags=["Files"],
                   parameters=[OpenApiParameter("q", str, description="a part of the path, any case")],
                   responses={200: {"type": "array", "items": {"type": "string"}}, **ERRORS},
                   summary="The paths of the namespace's files that contain q")
    def get(self, request, namespace: str):
        query = (request.query_params.get("q") or "").lower()
        paths = ["/" + "/".join(below) for below, _ in _under(files_root(namespace))]
        return Response([path for path in paths if query in path.lower()])


class NamespaceFileExport(ApiView):
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(operation_id="exportNamespaceFiles", tags=["Files"],
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS, 413: Error},
                   summary="Every file of the namespace, in a zip")
    def get(self, request, namespace: str):
        base = files_root(namespace)
        content = _under(base)
        total = sum(size for _, size in content)
        if total > archives.MAX_TOTAL_BYTES:
            raise too_large(f"The namespace's files hold {total} bytes; an export is limited to "
                            f"{archives.MAX_TOTAL_BYTES}: download them one by one")
        storage = get_storage()
        with storage_refusals():
            files = [("/".join(below), storage.read_bytes(base.child(*below), archives.MAX_TOTAL_BYTES))
                     for below, _ in content]
        return FileResponse(archives.write_zip(files), as_attachment=True, filename=f"{namespace}_files.zip",
                            content_type="application/octet-stream")

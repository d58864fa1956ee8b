"""FILE inputs and the internal storage: files uploaded for a new execution, and the `kestra:///…`
URIs given instead, checked.

An upload is stored at `input_file_uri(namespace, flowId, executionId, inputId, fileName)` once
the inputs are valid and before the execution's row is written; if the row cannot be written,
the upload is deleted again, so no file outlives an execution that was never created. A URI
given as a FILE input must name an existing file the execution may read: one of its namespace's
files or, for a subflow, one of its parent execution's files (docs/inputs.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from orchestrator.inputs import InputError, InvalidInputs, input_id
from orchestrator.storage import (
    StorageError,
    StorageScopeError,
    check_scope,
    get_storage,
    input_file_uri,
    namespace_files_prefix,
    parse_uri,
)

logger = logging.getLogger("harrier.inputs")

Uploads = Mapping[str, "os.PathLike[str]"]


def upload_uris(namespace: str, flow_id: str, execution_id: str, uploads: Uploads) -> dict[str, str]:
    """Where each upload will be stored, by input id (the local file keeps its name)."""
    uris = {}
    errors: list[InputError] = []
    for name, path in uploads.items():
        try:
            uris[name] = input_file_uri(namespace, flow_id, execution_id, name, Path(path).name)
        except StorageError as error:
            errors.append({"input": name, "message": str(error)})
    if errors:
        raise InvalidInputs(errors)
    return uris


def store_uploads(uris: Mapping[str, str], uploads: Uploads) -> None:
    """Store each upload at its URI; on any failure, delete what was stored and raise."""
    done: list[str] = []
    try:
        for name, uri in uris.items():
            get_storage().put(uri, Path(uploads[name]))
            done.append(uri)
    except BaseException:
        discard(done)
        raise


def discard(uris: Iterable[str]) -> None:
    """Delete uploads of an execution that was not created; a failure is logged, not raised, so
    that it never hides the error that made the creation fail."""
    for uri in uris:
        try:
            get_storage().delete(uri)
        except StorageError:
            logger.exception("could not delete the upload %s of an execution that was not created", uri)


def check_given_files(declarations: Iterable[Mapping[str, Any]] | None, typed: Mapping[str, Any],
                      uploaded: Iterable[str], namespace: str, flow_id: str, execution_id: str,
                      parent: tuple[str, str, str] | None = None) -> list[InputError]:
    """Problems with the URIs given (not uploaded) as FILE inputs: each must name an existing file
    of the namespace's files or, for a subflow, of its parent execution's files."""
    skip = set(uploaded)
    errors: list[InputError] = []
    for declaration in declarations or ():
        name = input_id(declaration) if isinstance(declaration, Mapping) else None
        if name is None or declaration.get("type") != "FILE":
            continue
        value = _lookup(typed, name)
        if not isinstance(value, str) or value in skip:
            continue
        problem = _problem(value, namespace, flow_id, execution_id, parent)
        if problem:
            errors.append({"input": name, "message": problem})
    return errors


def _problem(uri: str, namespace: str, flow_id: str, execution_id: str,
             parent: tuple[str, str, str] | None) -> str | None:
    try:
        location = parse_uri(uri)
        try:
            check_scope(location, namespace, flow_id, execution_id)
        except StorageScopeError:
            if parent is None:
                return (f"{uri} cannot be read by this execution: give one of the namespace's files "
                        f"({namespace_files_prefix(namespace)}…), or upload the file")
            try:
                check_scope(location, *parent)
            except StorageScopeError:
                return (f"{uri} cannot be read by this execution: give one of the namespace's files "
                        f"({namespace_files_prefix(namespace)}…) or of the parent execution {parent[2]}")
        if not get_storage().exists(location):
            return f"{uri}: no such file in the internal storage"
    except StorageError as error:
        return str(error)
    return None


def _lookup(typed: Mapping[str, Any], name: str) -> Any:
    node: Any = typed
    for part in name.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node

"""What a task may do with the internal storage, and the expression functions that read it.

A task reads its own execution's files and its namespace's files (`check_scope`). A subflow's
task may also read its parent execution's files, as Kestra allows: a parent hands files to a
child by passing their URIs as inputs. The parent is the one named by the child's
`trigger.variables`, which only the executor sets when it starts a subflow (a trigger of any
other type names no parent). A replay reads the files of the execution it replays
(`execution.originalId`), where its FILE inputs were uploaded.

`read(path)`, `fileSize(path)`, `fileExists(path)` and `isFileEmpty(path)` take either a
`kestra:///…` URI or the path of a namespace file (`scripts/query.sql`), as Kestra's do.
See docs/expressions.md and docs/storage.md.
"""

from __future__ import annotations

from typing import Any, Mapping

from orchestrator.storage import (
    StorageError,
    StorageFileNotFound,
    StorageScopeError,
    StorageURI,
    check_scope,
    get_storage,
    namespace_file_uri,
    parse_uri,
    task_file_uri,
)
from orchestrator.storage.uris import as_location, execution_location, shown
from orchestrator.templating import TemplateError
from workers.environment import SecretHooks

# `read()` returns a file's whole text into the rendered value: bounded, so that a template
# cannot make a worker hold a huge file (a task that streams it is the way for those).
MAX_READ_BYTES = 10 * 1024 * 1024
# Task types that start a child execution; their trigger names the parent execution.
_PARENT_TRIGGERS = frozenset({"io.kestra.plugin.core.flow.Subflow", "io.kestra.plugin.core.flow.ForEachItem"})
STORAGE_PREFIX = "kestra://"


def parent_execution(job: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(namespace, flowId, executionId) of the execution that started this one as a subflow."""
    trigger = (job.get("context") or {}).get("trigger") or {}
    variables = trigger.get("variables") if isinstance(trigger, Mapping) else None
    if not isinstance(variables, Mapping) or not isinstance(trigger.get("type"), str):
        return None
    from workers import registry

    declared = registry.get(trigger["type"])
    if declared is None or declared.name not in _PARENT_TRIGGERS:
        return None
    parent = (variables.get("namespace"), variables.get("flowId"), variables.get("executionId"))
    if not all(isinstance(part, str) and part for part in parent):
        return None
    return parent  # type: ignore[return-value]


def original_execution(job: Mapping[str, Any]) -> str | None:
    """The execution this one replays, whose files (its FILE inputs among them) it runs with."""
    original = ((job.get("context") or {}).get("execution") or {}).get("originalId")
    return original if isinstance(original, str) and original and original != job["executionId"] else None


def check_read_scope(job: Mapping[str, Any], uri: "StorageURI | str") -> StorageURI:
    """The checked location of a file this task may read, or StorageScopeError naming why not."""
    try:
        return check_scope(uri, job["namespace"], job["flowId"], job["executionId"])
    except StorageScopeError as refused:
        others = []
        original = original_execution(job)
        if original is not None:
            others.append(((job["namespace"], job["flowId"], original), f"the execution it replays ({original})"))
        parent = parent_execution(job)
        if parent is not None:
            others.append((parent, f"as a subflow, its parent execution {parent[2]}"))
        for execution, _ in others:
            try:
                return check_scope(uri, *execution)
            except StorageScopeError:
                continue
        if not others:
            raise
        also = " or ".join(f"{what}'s files" for _, what in others)
        raise StorageScopeError(f"{refused}, or {also}") from None


def check_write_scope(job: Mapping[str, Any], uri: "StorageURI | str") -> StorageURI:
    """A task changes only its own execution's files: the namespace's files and a parent's are
    read-only to it (namespace files have tasks of their own)."""
    location = as_location(uri)
    own = execution_location(job["namespace"], job["flowId"], job["executionId"])
    if not location.is_under(own):
        raise StorageScopeError(
            f"{shown(location.uri)} cannot be changed by this task: a task of execution {job['executionId']} "
            f"changes only its own execution's files ({own.uri}/…)"
        )
    return location


def resolve(job: Mapping[str, Any], path: str) -> StorageURI:
    """A `kestra:///…` URI, or a namespace file's path, as a location this task may read."""
    if not isinstance(path, str) or not path:
        raise StorageError(f"{shown(path)} names no file: give a kestra:/// URI or a namespace file's path")
    if path.startswith(STORAGE_PREFIX):
        return check_read_scope(job, path)
    return parse_uri(namespace_file_uri(job["namespace"], path))


def output_uri(job: Mapping[str, Any], file_name: str) -> str:
    """Where a task run's output file `file_name` is stored: under the task run's own prefix."""
    return task_file_uri(job["namespace"], job["flowId"], job["executionId"], job["task"]["id"],
                         job["taskRunId"], file_name)


class WorkerHooks(SecretHooks):
    """A worker's hooks: secrets (SecretHooks) and the functions that read the internal storage."""

    def __init__(self, job: Mapping[str, Any]) -> None:
        super().__init__(job.get("errorLogs"))
        self._job = job

    def _location(self, function: str, path: str) -> StorageURI:
        try:
            return resolve(self._job, path)
        except StorageError as error:
            raise TemplateError(f"{function}({shown(path)}): {error}") from None

    def read(self, path: str) -> str:
        location = self._location("read", path)
        try:
            with get_storage().get(location) as stream:
                data = stream.read(MAX_READ_BYTES + 1)
        except StorageError as error:
            raise TemplateError(f"read({shown(path)}): {error}") from None
        if len(data) > MAX_READ_BYTES:
            raise TemplateError(
                f"read({shown(path)}): {shown(location.uri)} is larger than {MAX_READ_BYTES // (1024 * 1024)} MiB, "
                "the most read() returns; give its URI to a task that streams it instead"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise TemplateError(f"read({shown(path)}): {shown(location.uri)} is not UTF-8 text "
                                f"(byte {error.start} cannot be decoded)") from None

    def file_size(self, path: str) -> int:
        location = self._location("fileSize", path)
        try:
            return get_storage().size(location)
        except StorageError as error:
            raise TemplateError(f"fileSize({shown(path)}): {error}") from None

    def file_exists(self, path: str) -> bool:
        location = self._location("fileExists", path)
        try:
            return get_storage().exists(location)
        except StorageFileNotFound:
            return False
        except StorageError as error:
            raise TemplateError(f"fileExists({shown(path)}): {error}") from None

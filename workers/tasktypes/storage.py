"""Kestra's storage tasks (`io.kestra.plugin.core.storage.*`): files of the internal storage
written, joined, split, reversed, measured and deleted on a worker.

Every file is streamed: read in pieces, written to a local temporary file, then stored, so the
memory a task takes does not grow with the file (a single line is held whole, up to
MAX_LINE_BYTES). A task reads only the files its execution may read (workers/files.py) and
writes its outputs under its own task run's prefix (`task_file_uri`). docs/tasks.md describes
each type.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator

from pydantic import Field, model_validator

from orchestrator.storage import CHUNK_SIZE, StorageError, StorageURI, execution_prefix, get_storage, parse_uri
from workers.context import RunContext, TaskFailure
from workers.files import check_read_scope, check_write_scope, output_uri
from workers.registry import TaskBase, TaskType, core_aliases, register

PREFIX = "io.kestra.plugin.core.storage."
# One line is held whole while it is split, reversed or filtered.
MAX_LINE_BYTES = 16 * 1024 * 1024
# Split keeps one local file open per partition or per regex group.
MAX_SPLIT_FILES = 1000
# How often (in lines) a long loop looks whether the attempt was asked to stop.
_STOP_CHECK_EVERY = 10_000
_SIZE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def _register(short: str, properties: type[TaskBase], run, title: str, aliases: tuple[str, ...] = (),
              raw: frozenset[str] = frozenset()) -> None:
    name = PREFIX + short
    register(TaskType(name=name, properties=properties, kind="runnable", run=run, title=title,
                      aliases=tuple(dict.fromkeys((*core_aliases(name), *aliases))), raw_properties=raw))


# --- helpers shared by the storage tasks -------------------------------------------------------

def readable(ctx: RunContext, uri: Any, what: str) -> StorageURI:
    """A file this task may read, or the task fails naming the property and the reason."""
    if not isinstance(uri, str) or not uri.strip():
        raise TaskFailure(f"{what}: expected a kestra:/// URI, got {uri!r}")
    try:
        return check_read_scope(ctx.job, uri.strip())
    except StorageError as error:
        raise TaskFailure(f"{what}: {error}") from None


@contextmanager
def opened(location: StorageURI, what: str) -> Iterator[BinaryIO]:
    try:
        stream = get_storage().get(location)
    except StorageError as error:
        raise TaskFailure(f"{what}: {error}") from None
    with stream:
        yield stream


def store(ctx: RunContext, source: "Path | bytes", file_name: str, what: str) -> str:
    """Store an output file under the task run's prefix; its URI."""
    try:
        uri = output_uri(ctx.job, file_name)
        get_storage().put(uri, source)
    except StorageError as error:
        raise TaskFailure(f"{what}: {error}") from None
    return uri


def workspace() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="harrier-storage-")


def extension_of(value: str | None, default: str = ".tmp") -> str:
    """`txt` or `.txt` → `.txt`; the file name built with it is checked when stored."""
    if value is None or value == "":
        return default
    return value if value.startswith(".") else f".{value}"


def source_extension(location: StorageURI) -> str:
    """The extension of a source file, kept by the files made from it (`.tmp` when it has none)."""
    suffix = PurePosixPath(location.name).suffix
    return suffix or ".tmp"


def lines(stream: BinaryIO, what: str, ctx: RunContext | None = None) -> Iterator[bytes]:
    """The lines of a stream without their ending (`\\n` or `\\r\\n`), read in pieces. A last
    line without an ending is a line; an ending at the very end adds no empty line."""
    partial: list[bytes] = []
    partial_size = 0
    count = 0
    while chunk := stream.read(CHUNK_SIZE):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            line = chunk[start:end]
            if partial:
                partial.append(line)
                line, partial, partial_size = b"".join(partial), [], 0
                _check_line(line, what)
            yield line[:-1] if line.endswith(b"\r") else line
            start = end + 1
            count += 1
            if ctx is not None and count % _STOP_CHECK_EVERY == 0 and ctx.stop_requested.is_set():
                raise TaskFailure("stopped")
        if start < len(chunk):
            partial.append(chunk[start:])
            partial_size += len(chunk) - start
            if partial_size > MAX_LINE_BYTES:
                raise _too_long(what)
    if partial:
        line = b"".join(partial)
        _check_line(line, what)
        yield line[:-1] if line.endswith(b"\r") else line


def _check_line(line: bytes, what: str) -> None:
    if len(line) > MAX_LINE_BYTES:
        raise _too_long(what)


def _too_long(what: str) -> TaskFailure:
    return TaskFailure(f"{what}: a line is longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB, the most this "
                       "task holds (it reads a file line by line)")


def separator_bytes(separator: str) -> bytes:
    return separator.encode("utf-8")


def uri_list(value: Any, what: str) -> list[str]:
    """A list of URIs given as a list, or as the JSON text of one (what an expression renders to)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("kestra://"):
            return [text]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise TaskFailure(f"{what}: expected a list of kestra:/// URIs or the JSON text of one, "
                              f"got {text[:80]!r}") from None
    if isinstance(value, dict):  # a map of name → URI, as script tasks' outputFiles
        value = list(value.values())
    if not isinstance(value, list):
        raise TaskFailure(f"{what}: expected a list of kestra:/// URIs")
    return [str(item) for item in value]


# --- Write ---------------------------------------------------------------------------------------

class WriteProperties(TaskBase):
    content: str = Field(description="The text to store, written as UTF-8.")
    extension: str | None = Field(None, description="The stored file's extension (`.txt`); `.tmp` when absent.")


def run_write(props: WriteProperties, ctx: RunContext) -> dict:
    name = ctx.job["task"]["id"] + extension_of(props.extension)
    return {"uri": store(ctx, props.content.encode("utf-8"), name, "content")}


# --- Concat --------------------------------------------------------------------------------------

class ConcatProperties(TaskBase):
    files: list[str] | dict[str, str] | str = Field(
        description="The files to join, in order: a list of kestra:/// URIs, or the JSON text of one.")
    separator: str | None = Field(None, description="Written between two files; nothing when absent.")
    extension: str = Field(".tmp", description="The extension of the joined file.")


def run_concat(props: ConcatProperties, ctx: RunContext) -> dict:
    sources = [readable(ctx, uri, f"files[{index}]") for index, uri in enumerate(uri_list(props.files, "files"))]
    separator = separator_bytes(props.separator or "")
    with workspace() as folder:
        target = Path(folder) / "concat"
        with open(target, "wb") as out:
            for index, location in enumerate(sources):
                if index and separator:
                    out.write(separator)
                with opened(location, f"files[{index}]") as stream:
                    while chunk := stream.read(CHUNK_SIZE):
                        out.write(chunk)
        return {"uri": store(ctx, target, ctx.job["task"]["id"] + extension_of(props.extension), "files")}


# --- Size and Delete -----------------------------------------------------------------------------

class SizeProperties(TaskBase):
    uri: str = Field(description="The kestra:/// URI of the file.")


def run_size(props: SizeProperties, ctx: RunContext) -> dict:
    location = readable(ctx, props.uri, "uri")
    try:
        return {"size": get_storage().size(location)}
    except StorageError as error:
        raise TaskFailure(f"uri: {error}") from None


class DeleteProperties(TaskBase):
    uri: str = Field(description="The kestra:/// URI of a file of this execution.")
    errorOnMissing: bool = Field(False, description="Fail when there is no such file.")


def run_delete(props: DeleteProperties, ctx: RunContext) -> dict:
    try:
        location = check_write_scope(ctx.job, props.uri.strip())
        deleted = get_storage().delete(location)
    except StorageError as error:
        raise TaskFailure(f"uri: {error}") from None
    if not deleted and props.errorOnMissing:
        raise TaskFailure(f"uri: no file {location.uri} to delete")
    return {"uri": location.uri, "deleted": deleted}


# --- Reverse -------------------------------------------------------------------------------------

class ReverseProperties(TaskBase):
    from_: str = Field(alias="from", description="The kestra:/// URI of the file.")
    separator: str = Field("\n", description="Written after each line.")
    charset: str = Field("UTF-8", description="Only UTF-8 (and its ASCII subset) is read.")


def reversed_lines(path: Path, what: str) -> Iterator[bytes]:
    """The lines of a local file, last first, reading it backwards in pieces."""
    with open(path, "rb") as source:
        position = source.seek(0, os.SEEK_END)
        if position and _byte_at(source, position - 1) == b"\n":
            position -= 1  # the ending of the last line makes no empty line
        tail: list[bytes] = []  # the start of a line, found before its end
        tail_size = 0
        while position > 0:
            start = max(0, position - CHUNK_SIZE)
            source.seek(start)
            block = source.read(position - start)
            position = start
            parts = block.split(b"\n")
            for index in range(len(parts) - 1, 0, -1):
                line = parts[index] + b"".join(reversed(tail)) if tail else parts[index]
                tail, tail_size = [], 0
                _check_line(line, what)
                yield line[:-1] if line.endswith(b"\r") else line
            tail.append(parts[0])
            tail_size += len(parts[0])
            if tail_size > MAX_LINE_BYTES:
                raise _too_long(what)
        if tail or path.stat().st_size:
            line = b"".join(reversed(tail))
            yield line[:-1] if line.endswith(b"\r") else line


def _byte_at(source: BinaryIO, offset: int) -> bytes:
    source.seek(offset)
    return source.read(1)


def run_reverse(props: ReverseProperties, ctx: RunContext) -> dict:
    if props.charset.replace("-", "").replace("_", "").upper() not in ("UTF8", "USASCII", "ASCII"):
        raise TaskFailure(f"charset: only UTF-8 is supported, not {props.charset}")
    location = readable(ctx, props.from_, "from")
    separator = separator_bytes(props.separator)
    with workspace() as folder:
        original, target = Path(folder) / "original", Path(folder) / "reversed"
        try:
            get_storage().download(location, original)
        except StorageError as error:
            raise TaskFailure(f"from: {error}") from None
        with open(target, "wb") as out:
            for line in reversed_lines(original, "from"):
                out.write(line + separator)
        return {"uri": store(ctx, target, ctx.job["task"]["id"] + source_extension(location), "from")}


# --- Split ---------------------------------------------------------------------------------------

class SplitProperties(TaskBase):
    from_: str = Field(alias="from", description="The kestra:/// URI of the file.")
    bytes: str | int | None = Field(None, description="At most this size per file (`10MB`, `200KB`, or bytes): "
                                                      "a file ends at the first line that reaches it.")
    rows: int | str | None = Field(None, description="This many lines per file.")
    partitions: int | str | None = Field(None, description="This many files, lines dealt to them in turn.")
    regexPattern: str | None = Field(None, description="One file per value of the pattern's first group; lines "
                                                       "that do not match are left out.")
    separator: str = Field("\n", description="Written after each line.")

    @model_validator(mode="after")
    def _one_way(self) -> "SplitProperties":
        given = [name for name in ("bytes", "rows", "partitions", "regexPattern") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of bytes, rows, partitions or regexPattern"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


def parse_size(value: str | int) -> int:
    """`10MB` → 10485760. Units are powers of 1024, as Kestra reads them."""
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value)
        if not match:
            raise TaskFailure(f"bytes: {value!r} is not a size such as 10MB, 200KB or 1048576")
        size = int(match.group(1)) * 1024 ** "_KMGT".index(match.group(2).upper() or "_")
    if size <= 0:
        raise TaskFailure(f"bytes: {value!r} must be more than zero")
    return size


def _positive(value: int | str, what: str, most: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise TaskFailure(f"{what}: {value!r} is not a whole number") from None
    if number <= 0:
        raise TaskFailure(f"{what}: {number} must be more than zero")
    if most is not None and number > most:
        raise TaskFailure(f"{what}: {number} is more than the {most} files a Split makes at most")
    return number


class _Files:
    """The local files a split writes, opened as needed and kept in creation order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: list[Path] = []
        self.handles: list[BinaryIO] = []

    def new(self) -> int:
        path = self.folder / f"part{len(self.paths)}"
        self.paths.append(path)
        self.handles.append(open(path, "wb"))  # noqa: SIM115 (closed by close())
        return len(self.paths) - 1

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def run_split(props: SplitProperties, ctx: RunContext) -> dict:
    location = readable(ctx, props.from_, "from")
    separator = separator_bytes(props.separator)
    with workspace() as folder, opened(location, "from") as stream:
        files = _Files(Path(folder))
        try:
            _split_into(props, ctx, lines(stream, "from", ctx), separator, files)
        finally:
            files.close()
        extension = source_extension(location)
        task_id = ctx.job["task"]["id"]
        uris = []
        for path in files.paths:
            if path.stat().st_size == 0:
                continue
            uris.append(store(ctx, path, f"{task_id}-{len(uris) + 1}{extension}", "from"))
    return {"uris": uris}


def _split_into(props: SplitProperties, ctx: RunContext, items: Iterator[bytes], separator: bytes,
                files: _Files) -> None:
    if props.regexPattern is not None:
        try:
            pattern = re.compile(props.regexPattern)
        except re.error as error:
            raise TaskFailure(f"regexPattern: {error}") from None
        if pattern.groups < 1:
            raise TaskFailure("regexPattern: the pattern needs a group, whose value picks the file")
        groups: dict[str, int] = {}
        for line in items:
            match = pattern.search(line.decode("utf-8", "replace"))
            if match is None or match.group(1) is None:
                continue
            key = match.group(1)
            if key not in groups:
                if len(groups) >= MAX_SPLIT_FILES:
                    raise TaskFailure(f"regexPattern: more than {MAX_SPLIT_FILES} different values; a Split "
                                      f"makes at most {MAX_SPLIT_FILES} files this way")
                groups[key] = files.new()
            files.handles[groups[key]].write(line + separator)
        return
    if props.partitions is not None:
        count = _positive(props.partitions, "partitions", MAX_SPLIT_FILES)
        for _ in range(count):
            files.new()
        for index, line in enumerate(items):
            files.handles[index % count].write(line + separator)
        return
    if props.bytes is not None:
        limit, by_bytes = parse_size(props.bytes), True
    else:
        limit, by_bytes = _positive(props.rows, "rows"), False
    current, filled = -1, limit
    for line in items:
        if filled >= limit:
            if current >= 0:
                files.handles[current].close()
            current, filled = files.new(), 0
        data = line + separator
        files.handles[current].write(data)
        filled += len(data) if by_bytes else 1


# --- PurgeCurrentExecutionFiles ---------------------------------------------------------------

class PurgeProperties(TaskBase):
    includeChildExecutions: bool = Field(False, description="Not supported: a worker does not know the "
                                                             "execution's subflows. Their files stay.")
    includeStates: bool = Field(False, description="Accepted; Harrier keeps no state files in the storage.")


def run_purge(props: PurgeProperties, ctx: RunContext) -> dict:
    job = ctx.job
    if props.includeChildExecutions:
        ctx.log("WARN", "includeChildExecutions is not supported: only this execution's files are purged")
    try:
        prefix = execution_prefix(job["namespace"], job["flowId"], job["executionId"])
        storage = get_storage()
        found = storage.list(prefix)
        storage.delete_prefix(prefix)
    except StorageError as error:
        raise TaskFailure(str(error)) from None
    return {"uris": [stored.uri for stored in found]}


# --- LocalFiles ----------------------------------------------------------------------------------

class LocalFilesProperties(TaskBase):
    inputs: dict[str, str] | str | None = Field(
        None, description="Files to create: relative path → content, or a kestra:/// URI to copy.")
    outputs: list[str] | None = Field(None, description="Globs of the created files to store, as `uris`.")


def _glob(pattern: str) -> re.Pattern:
    """`*` and `?` within a directory, `**` across directories."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    mapping = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(mapping.get(part, re.escape(part)) for part in parts) + r"\Z")


def _relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise TaskFailure(f"inputs: {name!r} must be a relative path inside the working directory")
    return path


def run_local_files(props: LocalFilesProperties, ctx: RunContext) -> dict:
    given = props.inputs or {}
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except json.JSONDecodeError:
            raise TaskFailure("inputs: expected a map of path → content, or the JSON text of one") from None
        if not isinstance(given, dict):
            raise TaskFailure("inputs: expected a map of path → content")
    uris: dict[str, str] = {}
    # Inside a WorkingDirectory, the directory its tasks share (kept), else one of its own.
    with (nullcontext(str(ctx.directory)) if ctx.directory is not None else workspace()) as folder:
        root = Path(folder)
        for name, content in given.items():
            target = root / _relative(str(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            text = str(content)
            if text.startswith("kestra://") and "\n" not in text.strip():
                location = readable(ctx, text, f"inputs[{name}]")
                try:
                    get_storage().download(location, target)
                except StorageError as error:
                    raise TaskFailure(f"inputs[{name}]: {error}") from None
            else:
                target.write_text(text, encoding="utf-8")
        patterns = [_glob(glob) for glob in props.outputs or []]
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not path.is_symlink() and any(p.match(relative) for p in patterns):
                first, *rest = relative.split("/")
                try:
                    location = parse_uri(output_uri(ctx.job, first))
                    location = location.child(*rest) if rest else location
                    get_storage().put(location, path)
                except StorageError as error:
                    raise TaskFailure(f"outputs: {error}") from None
                uris[relative] = location.uri
    return {"uris": uris}


_register("Write", WriteProperties, run_write, "Write text to a file of the internal storage")
_register("Concat", ConcatProperties, run_concat, "Join files of the internal storage into one")
_register("Size", SizeProperties, run_size, "The size of a file of the internal storage")
_register("Delete", DeleteProperties, run_delete, "Delete a file of the execution from the internal storage")
_register("Reverse", ReverseProperties, run_reverse, "Reverse a file, last line first")
_register("Split", SplitProperties, run_split, "Split a file into several")
_register("PurgeCurrentExecutionFiles", PurgeProperties, run_purge, "Delete every file of this execution",
          aliases=(PREFIX + "PurgeExecution", "io.kestra.core.tasks.storages.PurgeExecution"))
_register("LocalFiles", LocalFilesProperties, run_local_files,
          "Create files and store them (deprecated in Kestra: use a script task's inputFiles/outputFiles)")

"""The worker's part of `io.kestra.plugin.core.flow.ForEachItem` (executor/flowables/for_each_item.py):
`<id>_split` cuts the items file into batch files, `<id>_merge` joins the subflows' outputs.

Both stream: a file of any size costs one line (and, for `partitions`, one open file per batch)
in memory, never the whole. Batch `n` (from 0) of a split task run is stored as
`…/tasks/<id>_split/<taskRunId>/<n><extension of the items file>`, so that the executor names
any batch from the split's outputs alone (`numberOfBatches`, `extension`) without reading a file.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

from executor.flowables.for_each_item import (
    MERGE, MERGE_SUFFIX, SPLIT, Batch, MergeProperties, SplitProperties, batch_file_name, subflow_outputs_prefix,
)
from orchestrator.storage import StorageError, get_storage, task_file_uri
from workers.context import RunContext, TaskFailure
from workers.files import check_read_scope
from workers.registry import TaskType, register

# Kestra reads `bytes` like `10MB`: a number and an optional unit, powers of 1024.
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
# Each partition is an open file while the items are dealt out.
MAX_PARTITIONS = 1024
SPLITS_FILE = "splits.txt"
MERGED_FILE = "outputs.ion"


def parse_size(value: int | str) -> int:
    """`1024`, `"512"`, `"10KB"`, `"10MB"`, `"1GB"` as bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(str(value))
        if match is None:
            raise TaskFailure(f"batch.bytes: {value!r} is not a size (a number of bytes, or with KB, MB or GB)")
        size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if size < 1:
        raise TaskFailure(f"batch.bytes must be at least 1 byte, not {value!r}")
    return size


def _count(value: int | str, what: str, most: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise TaskFailure(f"batch.{what} must be a whole number, not {value!r}") from None
    if number < 1:
        raise TaskFailure(f"batch.{what} must be at least 1, not {number}")
    if most is not None and number > most:
        raise TaskFailure(f"batch.{what} can be at most {most}, not {number}")
    return number


def items_of(stream: BinaryIO) -> Iterator[bytes]:
    """The items of a file: its lines, ended by `\\n`, `\\r\\n` or `\\r` (as Kestra reads them),
    without their ends. Bytes that are not UTF-8 go through unchanged."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline=None)
    for line in text:
        yield line.rstrip("\n").encode("utf-8", "surrogateescape")


class _Batches:
    """Batch files written one after the other into a scratch directory and stored as each is
    done, so that the scratch space holds one batch at a time."""

    def __init__(self, ctx: RunContext, scratch: Path, extension: str) -> None:
        self.ctx, self.scratch, self.extension = ctx, scratch, extension
        self.uris: list[str] = []
        self._file: BinaryIO | None = None
        self._path: Path | None = None

    def new(self) -> BinaryIO:
        self.close()
        self._path = self.scratch / f"batch{self.extension}"
        self._file = open(self._path, "wb")
        return self._file

    def close(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self.uris.append(_store(self.ctx, self._path, batch_file_name(len(self.uris), self.extension)))
        self._path.unlink()
        self._file = None


def _store(ctx: RunContext, path: Path, name: str) -> str:
    job = ctx.job
    uri = task_file_uri(job["namespace"], job["flowId"], job["executionId"], job["task"]["id"], job["taskRunId"], name)
    get_storage().put(uri, path)
    return uri


def _sequential(items: Iterator[bytes], batches: _Batches, separator: bytes,
                full: Callable[[int, int], bool]) -> None:
    """Items in order, a new batch whenever `full(bytes, rows)` of the current one says so."""
    current: BinaryIO | None = None
    size = rows = 0
    for item in items:
        if current is None or full(size, rows):
            current = batches.new()
            size = rows = 0
        data = item + separator
        current.write(data)
        size += len(data)
        rows += 1
    batches.close()


def _partitioned(items: Iterator[bytes], ctx: RunContext, scratch: Path, extension: str, separator: bytes,
                 count: int) -> list[str]:
    """Items dealt to `count` batches in turn; empty batches are left out."""
    paths = [scratch / f"part{index}{extension}" for index in range(count)]
    files = [open(path, "wb") for path in paths]
    try:
        for index, item in enumerate(items):
            files[index % count].write(item + separator)
    finally:
        for file in files:
            file.close()
    uris = []
    for path in paths:
        if path.stat().st_size:
            uris.append(_store(ctx, path, batch_file_name(len(uris), extension)))
        path.unlink()
    return uris


def run_split(props: SplitProperties, ctx: RunContext) -> dict:
    uri = props.items
    if not isinstance(uri, str) or not uri.startswith("kestra://"):
        raise TaskFailure(f"Unable to split the items from {uri!r}: this is not an internal storage URI (kestra:///…)")
    try:
        # This execution's and its namespace's files, and a parent's (a subflow splitting what its
        # parent passed) or a replayed execution's, as `read()` allows.
        location = check_read_scope(ctx.job, uri)
    except StorageError as error:
        raise TaskFailure(str(error)) from None
    batch = props.batch or Batch()
    separator = (batch.separator if batch.separator is not None else "\n").encode("utf-8")
    extension = PurePosixPath(location.name).suffix
    try:
        source = get_storage().get(location)
    except StorageError as error:
        raise TaskFailure(f"Unable to split the items: {error}") from None
    with tempfile.TemporaryDirectory(prefix="harrier-split-") as scratch, source as stream:
        items = items_of(stream)
        if batch.bytes is not None:
            limit = parse_size(batch.bytes)
            batches = _Batches(ctx, Path(scratch), extension)
            _sequential(items, batches, separator, lambda size, rows: size >= limit)
            uris = batches.uris
        elif batch.partitions is not None:
            count = _count(batch.partitions, "partitions", MAX_PARTITIONS)
            uris = _partitioned(items, ctx, Path(scratch), extension, separator, count)
        else:
            rows = _count(batch.rows if batch.rows is not None else 1, "rows")
            batches = _Batches(ctx, Path(scratch), extension)
            _sequential(items, batches, separator, lambda size, count: count >= rows)
            uris = batches.uris
        listing = Path(scratch) / SPLITS_FILE
        with open(listing, "w", encoding="utf-8") as file:
            file.write("\n".join(uris))
        splits = _store(ctx, listing, SPLITS_FILE)
    ctx.log("INFO", f"Split {uri} into {len(uris)} batch{'es' if len(uris) != 1 else ''}")
    return {"splits": splits, "numberOfBatches": len(uris), "extension": extension}


def run_merge(props: MergeProperties, ctx: RunContext) -> dict:
    """The subflows' flow outputs, one line per subflow execution in batch order, as one file;
    no output when there is none (no `wait`, or a subflow without flow outputs)."""
    if not props.wait:
        return {}
    job = ctx.job
    parent_run = (ctx.variables.get("taskrun") or {}).get("parentId")
    expected = props.forEachItem + MERGE_SUFFIX
    if not isinstance(parent_run, str) or job["task"]["id"] != expected:
        raise TaskFailure(f"{job['task']['id']} is not the merge task of ForEachItem {props.forEachItem}")
    storage = get_storage()
    prefix = subflow_outputs_prefix(job["namespace"], job["flowId"], job["executionId"], props.forEachItem, parent_run)
    found = []
    for stored in storage.list(prefix):
        stem = PurePosixPath(stored.uri).name.removesuffix(".ion")
        if stem.isdigit():
            found.append((int(stem), stored.uri))
    if not found:
        return {}
    found.sort()
    with tempfile.TemporaryDirectory(prefix="harrier-merge-") as scratch:
        merged = Path(scratch) / MERGED_FILE
        with open(merged, "wb") as target:
            for _, uri in found:
                last = b"\n"
                with storage.get(uri) as source:
                    while chunk := source.read(1024 * 1024):
                        target.write(chunk)
                        last = chunk[-1:]
                if last != b"\n":
                    target.write(b"\n")
        return {"subflowOutputs": _store(ctx, merged, MERGED_FILE)}


register(TaskType(name=SPLIT, properties=SplitProperties, kind="runnable", run=run_split, internal=True,
                  title="ForEachItem: split the items into batches"))
register(TaskType(name=MERGE, properties=MergeProperties, kind="runnable", run=run_merge, internal=True,
                  title="ForEachItem: merge the subflows' outputs"))

"""A WorkingDirectory's `cache` (Kestra's `cache: {patterns: [...], ttl: PT1H}`): the files of the
directory that `patterns` match are kept in the internal storage after a successful run, and put
back into the directory before the next run of the same task of the same flow, until `ttl` has
passed since they were kept (no `ttl`: they never expire).

One zip archive per flow and task (and loop value, for a WorkingDirectory inside a loop), at
`kestra:///<namespace>/<flowId>/_cache/<taskId>[/<value digest>]/cache.zip`; the moment it was made
is its comment. A valid cache is restored and not made again, so that it does expire; an expired
one is replaced after the next successful run. Whatever the archive holds is checked as
untrusted: a member that would land outside the directory, or a damaged archive, is not restored.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from orchestrator.flowlang.types import parse_duration
from workers.context import RunContext, TaskFailure

CACHE_FILE = "cache.zip"
CACHE_DIRECTORY = "_cache"


class CacheSettings:
    """The `cache` property, checked: its glob patterns and its time to live (None: forever)."""

    def __init__(self, definition: Any) -> None:
        if not isinstance(definition, Mapping):
            raise TaskFailure("`cache` must be a map with `patterns` (a list of globs) and an optional `ttl`")
        patterns = definition.get("patterns")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise TaskFailure("`cache.patterns` must be a non-empty list of file globs, such as `node_modules/**`")
        self.patterns = patterns
        ttl = definition.get("ttl")
        self.ttl: timedelta | None = parse_duration(ttl) if ttl is not None else None
        if ttl is not None and (self.ttl is None or self.ttl <= timedelta(0)):
            raise TaskFailure(f"`cache.ttl` must be a positive ISO-8601 duration such as PT1H, not {ttl!r}")


def cache_location(ctx: RunContext) -> str:
    from orchestrator.storage.uris import StorageURI, namespace_segments

    job = ctx.job
    segments = [*namespace_segments(job["namespace"]), job["flowId"], CACHE_DIRECTORY, job["task"]["id"]]
    value = (job["context"].get("taskrun") or {}).get("value")
    if value is not None:
        segments.append(hashlib.sha256(str(value).encode()).hexdigest()[:32])
    return StorageURI.from_segments((*segments, CACHE_FILE)).uri


def restore(ctx: RunContext, settings: CacheSettings, directory: Path, now: datetime) -> bool:
    """Put the kept files back into the directory; True when a cache still valid was restored."""
    from orchestrator.storage import StorageError, get_storage

    location = cache_location(ctx)
    storage = get_storage()
    try:
        if not storage.exists(location):
            ctx.log("INFO", "No cache yet: the tasks run without one")
            return False
        with storage.get(location) as stream:
            data = stream.read()
    except StorageError as error:
        ctx.log("WARN", f"The cache could not be read ({error}): the tasks run without it")
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            made = _made(archive)
            if made is None or (settings.ttl is not None and now - made >= settings.ttl):
                ctx.log("INFO", "The cache has expired: the tasks run without it, and it is made again")
                return False
            count = _extract(archive, directory)
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        ctx.log("WARN", f"The cache could not be restored ({error}): the tasks run without it")
        return False
    ctx.log("INFO", f"Restored {count} cached file(s) kept at {made.isoformat()}")
    return True


def save(ctx: RunContext, settings: CacheSettings, directory: Path, now: datetime) -> None:
    """Keep the directory's files that the patterns match."""
    from orchestrator.storage import StorageError, get_storage
    from workers.tasktypes.scripts_files import glob_pattern

    patterns = [glob_pattern(glob) for glob in settings.patterns]
    buffer = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.comment = now.isoformat().encode()
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if path.is_file() and not path.is_symlink() and any(pattern.match(relative) for pattern in patterns):
                archive.write(path, relative)
                count += 1
    try:
        get_storage().put(cache_location(ctx), buffer.getvalue())
    except StorageError as error:
        ctx.log("WARN", f"The cache could not be kept: {error}")
        return
    ctx.log("INFO", f"Cached {count} file(s)" + (f" for {settings.ttl}" if settings.ttl else ""))


def _made(archive: zipfile.ZipFile) -> datetime | None:
    try:
        made = datetime.fromisoformat(archive.comment.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return made if made.tzinfo is not None else made.replace(tzinfo=timezone.utc)


def _extract(archive: zipfile.ZipFile, directory: Path) -> int:
    """Write the archive's files into the directory, refusing any member that would land outside."""
    root = directory.resolve()
    members = [member for member in archive.infolist() if not member.is_dir()]
    for member in members:
        name = PurePosixPath(member.filename)
        if name.is_absolute() or ".." in name.parts or not (root / name).resolve().is_relative_to(root):
            raise ValueError(f"the archive holds {member.filename!r}, outside the directory")
    for member in members:
        target = root / member.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, open(target, "wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
    return len(members)

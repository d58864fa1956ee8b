"""Kestra's internal storage URIs: building them, reading them back, and refusing hostile ones.

A file of the internal storage is named by a URI such as

    kestra:///company/team/my-flow/executions/<executionId>/tasks/<taskId>/<taskRunId>/out.csv

(the namespace's dots become slashes). The path of the URI, percent-decoded segment by segment,
is the file's *key*: the path under the local storage directory, or the object name in the
bucket. A URI can come from a user — an input, an expression, a task property — so it is read
as hostile: anything that could name a file outside the storage root, or two different files
depending on who decodes it, is refused with the URI and the reason.

Pure Python, no Django: the webserver, the executor and workers all import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import quote, unquote

SCHEME = "kestra"
PREFIX = "kestra:///"
# Where a namespace's own files live (Kestra's namespace files), beside its flows' directories.
NAMESPACE_FILES = "_files"
EXECUTIONS = "executions"

# File-system and S3 limits: 255 bytes per name on common file systems, 1024 bytes per key on S3.
MAX_SEGMENT_BYTES = 255
MAX_KEY_BYTES = 1024
# Percent-decoding is repeated this many times at most when looking for a hidden payload.
_MAX_DECODINGS = 8
# Characters RFC 3986 allows unescaped in a path segment; anything else is percent-encoded.
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class StorageError(Exception):
    """A storage operation that cannot be done, with a reason the user can act on."""


class InvalidStorageURI(StorageError, ValueError):
    """A URI or path that does not name a storage file safely."""


class StorageScopeError(StorageError, PermissionError):
    """A task asked for a file outside its own execution and its namespace's files."""


def shown(value: object) -> str:
    """A URI as an error message quotes it: short, with control characters escaped."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > 200:
        text = text[:200] + "…"
    return repr(text)


def _refuse(uri: object, reason: str) -> InvalidStorageURI:
    return InvalidStorageURI(f"{shown(uri)} is not a valid storage URI: {reason}")


def check_segment(segment: str, what: object) -> None:
    """Refuse a decoded path segment that is not one plain file or directory name.

    `what` is the URI or value named in the error.
    """
    if not segment:
        raise _refuse(what, "it has an empty path segment ('//' or a trailing '/')")
    if "\x00" in segment:
        raise _refuse(what, "it contains a NUL byte")
    if _CONTROL.search(segment):
        raise _refuse(what, "it contains a control character")
    if segment in (".", ".."):
        raise _refuse(what, f"'{segment}' segments are not allowed")
    if "/" in segment:
        raise _refuse(what, "a path segment contains an encoded '/' (%2F)")
    if "\\" in segment:
        raise _refuse(what, "backslashes are not allowed")
    try:
        encoded = segment.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a file name that was not UTF-8 on disk
        raise _refuse(what, "a path segment is not valid UTF-8") from None
    if len(encoded) > MAX_SEGMENT_BYTES:
        raise _refuse(what, f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
    # A segment that still decodes to something else was encoded twice (or more): whoever
    # decodes it once more — a proxy, a script, another tool — would see that other thing.
    current = segment
    for _ in range(_MAX_DECODINGS):
        if not _PERCENT_ESCAPE.search(current):
            return
        decoded = unquote(current, errors="surrogateescape")
        if decoded == current:
            return
        if decoded in (".", "..") or any(c in decoded for c in "/\\\x00") or _CONTROL.search(decoded):
            raise _refuse(what, "it hides a path separator, '.' or '..', or a control character under "
                                "repeated percent-encoding")
        current = decoded
    raise _refuse(what, "it is percent-encoded too many times over")


def _check_segments(parts: tuple, what: object) -> None:
    shown_as = what if what is not None else "/".join(str(p) for p in parts)
    if not parts:
        raise _refuse(shown_as, "it names no file")
    for part in parts:
        if not isinstance(part, str):
            raise _refuse(shown_as, f"a path segment is {type(part).__name__}, not text")
        check_segment(part, shown_as)
    if len("/".join(parts).encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise _refuse(shown_as, f"its path is longer than {MAX_KEY_BYTES} bytes")


def _decode_segment(raw: str, uri: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _refuse(uri, "a percent-encoded sequence is not valid UTF-8") from None


def _quote_segment(segment: str) -> str:
    return quote(segment, safe=_SEGMENT_SAFE)


@dataclass(frozen=True)
class StorageURI:
    """A checked storage location: its decoded path segments, never empty, all safe."""

    segments: tuple[str, ...]

    def __post_init__(self) -> None:
        # Every instance is checked, however it was made.
        _check_segments(self.segments, None)

    @classmethod
    def from_segments(cls, segments: Iterable[str], what: object = None) -> "StorageURI":
        parts = tuple(segments)
        _check_segments(parts, what)
        return cls(parts)

    @classmethod
    def from_key(cls, key: str) -> "StorageURI":
        """From a storage key (`company/team/flow/…`), as a backend lists it."""
        return cls.from_segments(key.split("/"), what=key)

    @property
    def key(self) -> str:
        """The path under the storage root: the local relative path, or the S3 object name."""
        return "/".join(self.segments)

    @property
    def uri(self) -> str:
        return PREFIX + "/".join(_quote_segment(s) for s in self.segments)

    @property
    def name(self) -> str:
        return self.segments[-1]

    def is_under(self, prefix: "StorageURI") -> bool:
        """Whether this location is inside the directory `prefix` (segment-wise: `a/bc` is not under `a/b`)."""
        return len(self.segments) > len(prefix.segments) and self.segments[: len(prefix.segments)] == prefix.segments

    def child(self, *segments: str) -> "StorageURI":
        return StorageURI.from_segments((*self.segments, *segments))

    def __str__(self) -> str:
        return self.uri


def parse_uri(uri: object) -> StorageURI:
    """Read a `kestra:///…` URI naming one file; refuse it with the reason if it is not safe."""
    return _parse(uri, directory=False)


def parse_prefix(uri: object) -> StorageURI:
    """Read a `kestra:///…` URI naming a directory (a trailing '/' is allowed)."""
    return _parse(uri, directory=True)


def as_location(value: "StorageURI | str", directory: bool = False) -> StorageURI:
    if isinstance(value, StorageURI):
        return value
    return _parse(value, directory=directory)


def _parse(uri: object, directory: bool) -> StorageURI:
    if not isinstance(uri, str):
        raise _refuse(uri, f"expected text, not {type(uri).__name__}")
    if "\x00" in uri:
        raise _refuse(uri, "it contains a NUL byte")
    if not uri.startswith(PREFIX):
        if uri.startswith("kestra://"):
            raise _refuse(uri, "it names a host; storage URIs start with kestra:/// (three slashes)")
        if uri.startswith("/"):
            raise _refuse(uri, "an absolute path is not a storage URI; storage URIs start with kestra:///")
        scheme = uri.split(":", 1)[0] if ":" in uri else ""
        if scheme.lower() == SCHEME:
            raise _refuse(uri, "storage URIs start with kestra:/// (lowercase, three slashes)")
        if scheme and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
            raise _refuse(uri, f"the scheme {scheme}: is not allowed, only kestra:///")
        raise _refuse(uri, "storage URIs start with kestra:///")
    path = uri[len(PREFIX):]
    if "\\" in path:
        raise _refuse(uri, "backslashes are not allowed")
    if "?" in path or "#" in path:
        raise _refuse(uri, "a query ('?') or fragment ('#') is not allowed; encode them as %3F and %23")
    if _CONTROL.search(path):
        raise _refuse(uri, "it contains a control character")
    if path.startswith("/"):
        raise _refuse(uri, "it has an empty path segment ('//' or a trailing '/')")
    if directory and path.endswith("/"):
        path = path[:-1]
    if not path:
        raise _refuse(uri, "it names no file" if not directory else "it names no directory")
    return StorageURI.from_segments((_decode_segment(raw, uri) for raw in path.split("/")), what=uri)


# --- Building the URIs of Harrier's files ---------------------------------------------------

def namespace_segments(namespace: str) -> tuple[str, ...]:
    """`company.team` → (`company`, `team`)."""
    if not isinstance(namespace, str) or not namespace:
        raise _refuse(namespace, "a namespace is needed")
    parts = tuple(namespace.split("."))
    for part in parts:
        if not part:
            raise _refuse(namespace, "a namespace cannot have an empty part ('..', or a leading or trailing '.')")
        # A namespace part named like the namespace-files directory would make the files of
        # `company._files` indistinguishable from the namespace files of `company`.
        if part == NAMESPACE_FILES:
            raise _refuse(namespace, f"a namespace part cannot be '{NAMESPACE_FILES}' (reserved for namespace files)")
    StorageURI.from_segments(parts, what=namespace)
    return parts


def namespace_path(namespace: str) -> str:
    return "/".join(namespace_segments(namespace))


def execution_location(namespace: str, flow_id: str, execution_id: str) -> StorageURI:
    return StorageURI.from_segments((*namespace_segments(namespace), flow_id, EXECUTIONS, execution_id))


def execution_prefix(namespace: str, flow_id: str, execution_id: str) -> str:
    """`kestra:///<namespace path>/<flowId>/executions/<executionId>/`: every file of one execution."""
    return execution_location(namespace, flow_id, execution_id).uri + "/"


def task_file_uri(namespace: str, flow_id: str, execution_id: str, task_id: str, task_run_id: str,
                  file_name: str) -> str:
    """Where a task run's output file lives."""
    return execution_location(namespace, flow_id, execution_id).child("tasks", task_id, task_run_id, file_name).uri


def input_file_uri(namespace: str, flow_id: str, execution_id: str, input_id: str, file_name: str) -> str:
    """Where a FILE input's upload lives."""
    return execution_location(namespace, flow_id, execution_id).child("inputs", input_id, file_name).uri


def namespace_files_location(namespace: str) -> StorageURI:
    return StorageURI.from_segments((*namespace_segments(namespace), NAMESPACE_FILES))


def namespace_files_prefix(namespace: str) -> str:
    """`kestra:///<namespace path>/_files/`: the namespace's own files."""
    return namespace_files_location(namespace).uri + "/"


def namespace_file_uri(namespace: str, path: str) -> str:
    """A namespace file by its relative path (`scripts/etl.py`); the path may not climb out."""
    if not isinstance(path, str) or not path:
        raise _refuse(path, "a namespace file needs a path")
    if path.startswith("/"):
        raise _refuse(path, "a namespace file's path is relative to the namespace, not absolute")
    if "\\" in path:
        raise _refuse(path, "backslashes are not allowed")
    return namespace_files_location(namespace).child(*path.split("/")).uri


# --- Scope -------------------------------------------------------------------------------------

def check_scope(uri: "StorageURI | str", namespace: str, flow_id: str, execution_id: str) -> StorageURI:
    """Refuse a file a task of this execution may not read: only its own execution's files and its
    namespace's files are allowed. Returns the checked location.

    Compared segment by segment, so `company/team2/…` is not inside `company/team`, and a child
    namespace's files (`company.team.sub`) are not the namespace's.
    """
    location = as_location(uri)
    own = execution_location(namespace, flow_id, execution_id)
    shared = namespace_files_location(namespace)
    if location.is_under(own) or location.is_under(shared):
        return location
    raise StorageScopeError(
        f"{shown(location.uri)} is outside this task's scope: a task of execution {execution_id} may read "
        f"only its own execution's files ({own.uri}/…) and its namespace's files ({shared.uri}/…)"
    )

"""The internal storage interface every backend implements.

Files are streamed in chunks both ways, so a file of any size costs the same bounded memory.
Every method takes a `kestra:///…` URI (or a checked `StorageURI`), reads it as hostile
(orchestrator/storage/uris.py) and names it in any error it raises.
"""

from __future__ import annotations

import io
import os
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO, Union

from orchestrator.storage.uris import (
    StorageError,
    StorageURI,
    as_location,
    execution_location,
    shown,
)

# Read and write in pieces of this size: large enough for throughput, small enough that many
# concurrent transfers on one worker stay cheap.
CHUNK_SIZE = 1024 * 1024

# What `put` accepts: the bytes themselves, a binary stream (read to its end), or a local file's path.
Source = Union[bytes, bytearray, memoryview, BinaryIO, "os.PathLike[str]"]


class StorageFileNotFound(StorageError, FileNotFoundError):
    """No file at that URI."""


@dataclass(frozen=True)
class StoredFile:
    uri: str
    size: int


class CountingReader(io.RawIOBase):
    """A source stream read in bounded pieces, counting what went through.

    Backends hand this to whatever consumes the data, so a stream that returns more than it
    was asked for, or text, cannot make a transfer hold more than a chunk.
    """

    def __init__(self, stream: BinaryIO, uri: str) -> None:
        self._stream = stream
        self._uri = uri
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK_SIZE
        data = self._stream.read(size)
        if data is None:  # a non-blocking stream with nothing ready: not supported
            raise StorageError(f"{shown(self._uri)} cannot be written: the source stream is non-blocking")
        if isinstance(data, str):
            raise TypeError(f"{shown(self._uri)} cannot be written from a text stream: open the source in binary mode")
        data = bytes(data)
        if len(data) > size:
            raise StorageError(f"{shown(self._uri)} cannot be written: the source stream returned more than asked")
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Storage(ABC):
    """One place files live: a local directory or an S3 bucket."""

    kind: str = ""

    # --- writing ---------------------------------------------------------------------------

    def put(self, uri: "StorageURI | str", source: Source) -> int:
        """Store a file at `uri` (replacing any file there) and return its size in bytes.

        A reader never sees a partly written file: the new content appears whole, or not at all.
        """
        location = as_location(uri)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return self._put(location, CountingReader(io.BytesIO(data), location.uri), len(data))
        if isinstance(source, str):
            raise TypeError("put() takes bytes, a binary stream or a pathlib.Path, not str "
                            "(is it a path or the content?)")
        if isinstance(source, os.PathLike):
            with open(source, "rb") as stream:
                length = os.fstat(stream.fileno()).st_size
                return self._put(location, CountingReader(stream, location.uri), length)
        if not callable(getattr(source, "read", None)):
            raise TypeError(f"put() cannot read a {type(source).__name__}")
        return self._put(location, CountingReader(source, location.uri), _remaining_length(source))

    @abstractmethod
    def _put(self, location: StorageURI, stream: CountingReader, length: int) -> int:
        """Store the stream (`length` bytes, or -1 when unknown); return the bytes stored."""

    # --- reading ---------------------------------------------------------------------------

    @abstractmethod
    def get(self, uri: "StorageURI | str") -> BinaryIO:
        """The file's content as a binary stream; close it (or use it in a `with`)."""

    @abstractmethod
    def exists(self, uri: "StorageURI | str") -> bool:
        """Whether a file (not a directory) is stored at `uri`."""

    @abstractmethod
    def size(self, uri: "StorageURI | str") -> int:
        """The file's size in bytes; StorageFileNotFound when there is none."""

    @abstractmethod
    def list(self, prefix: "StorageURI | str") -> list[StoredFile]:
        """Every file under the directory `prefix`, at any depth, ordered by URI path."""

    # --- deleting --------------------------------------------------------------------------

    @abstractmethod
    def delete(self, uri: "StorageURI | str") -> bool:
        """Delete one file; whether there was one."""

    @abstractmethod
    def delete_prefix(self, prefix: "StorageURI | str") -> int:
        """Delete every file under the directory `prefix`; how many were deleted."""

    def delete_execution(self, namespace: str, flow_id: str, execution_id: str) -> int:
        """Delete every file of one execution (its inputs and its task runs' files)."""
        return self.delete_prefix(execution_location(namespace, flow_id, execution_id))

    # --- conveniences ----------------------------------------------------------------------

    def read_bytes(self, uri: "StorageURI | str", max_bytes: int) -> bytes:
        """A small file's whole content; refused when it is larger than `max_bytes`."""
        location = as_location(uri)
        with self.get(location) as stream:
            data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise StorageError(f"{shown(location.uri)} is larger than {max_bytes} bytes: read it as a stream")
        return data

    def download(self, uri: "StorageURI | str", path: "os.PathLike[str]") -> int:
        """Copy a file to a local path in chunks; return its size."""
        count = 0
        with self.get(uri) as source, open(path, "wb") as target:
            while chunk := source.read(CHUNK_SIZE):
                target.write(chunk)
                count += len(chunk)
        return count


def _remaining_length(stream: BinaryIO) -> int:
    """The bytes left in an open regular file, or -1 for any other stream.

    A known length lets the S3 backend size its parts to the file instead of assuming the
    largest (and hold fewer bytes meanwhile).
    """
    try:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode) or not stream.seekable():
            return -1
        return max(info.st_size - stream.tell(), 0)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return -1

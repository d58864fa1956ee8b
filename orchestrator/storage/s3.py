"""Internal storage in a bucket of MinIO, Amazon S3 or any S3-compatible server, through the
`minio` client.

The key of a URI is the object's name. Uploads of unknown length go up in parts of
`part_size` bytes, one part in memory at a time; downloads are read from the HTTP response as
the caller reads. S3 writes are atomic per object, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import logging
import threading
from contextlib import contextmanager
from typing import BinaryIO, Iterator
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from orchestrator.storage.base import CHUNK_SIZE, CountingReader, Storage, StorageFileNotFound, StoredFile
from orchestrator.storage.uris import InvalidStorageURI, StorageError, StorageURI, as_location, shown

logger = logging.getLogger("harrier.storage")

# S3 takes at most 10,000 parts per object, each at least 5 MiB. A stream of unknown length goes
# up in parts of this size — the client holds about four copies of one part, so 5 MiB keeps an
# upload near 20 MiB — which allows such a stream up to about 48 GiB. A file given by its path
# has a known length and gets parts sized to fit, whatever its size.
DEFAULT_PART_SIZE = 5 * 1024 * 1024
_MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"})


class S3Storage(Storage):
    kind = "s3"

    def __init__(self, endpoint: str, bucket: str, access_key: str = "", secret_key: str = "",
                 region: str = "", secure: bool = True, part_size: int = DEFAULT_PART_SIZE,
                 http_client: urllib3.PoolManager | None = None) -> None:
        host, secure = split_endpoint(endpoint, secure)
        if not bucket:
            raise StorageError("the S3 storage needs a bucket (HARRIER_S3_BUCKET)")
        self.endpoint = host
        self.bucket = bucket
        self.secure = secure
        self.part_size = part_size
        self.client = Minio(host, access_key=access_key or None, secret_key=secret_key or None,
                            secure=secure, region=region or None, http_client=http_client)
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3Storage({scheme}://{self.endpoint}, bucket={self.bucket!r})"

    @contextmanager
    def _errors(self, location: StorageURI, action: str) -> Iterator[None]:
        """Turn the client's errors into StorageErrors that name the URI and the server."""
        try:
            yield
        except StorageError:
            raise
        except S3Error as error:
            if error.code in _MISSING:
                raise StorageFileNotFound(f"{shown(location.uri)}: no such file in the storage") from None
            raise StorageError(f"{shown(location.uri)} cannot be {action}: the storage server answered "
                               f"{error.code}: {error.message}") from error
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
            raise StorageError(f"{shown(location.uri)} cannot be {action}: the storage server at "
                               f"{self.endpoint} failed: {error}") from error

    def _ensure_bucket(self, location: StorageURI) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock, self._errors(location, "written"):
            if not self._bucket_ready and not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as error:  # another process created it first
                    if error.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
            self._bucket_ready = True

    # --- writing -----------------------------------------------------------------------------

    def _put(self, location: StorageURI, stream: CountingReader, length: int) -> int:
        self._ensure_bucket(location)
        with self._errors(location, "written"):
            # One part at a time: parallel part uploads would hold several parts in memory.
            self.client.put_object(self.bucket, location.key, stream, length=length,
                                   part_size=self.part_size if length < 0 else 0, num_parallel_uploads=1)
        return stream.count

    # --- reading -----------------------------------------------------------------------------

    def get(self, uri: "StorageURI | str") -> BinaryIO:
        location = as_location(uri)
        with self._errors(location, "read"):
            response = self.client.get_object(self.bucket, location.key)
        return io.BufferedReader(_ResponseReader(response, location, self.endpoint), CHUNK_SIZE)

    def _stat(self, location: StorageURI):
        try:
            with self._errors(location, "read"):
                return self.client.stat_object(self.bucket, location.key)
        except StorageFileNotFound:
            return None

    def exists(self, uri: "StorageURI | str") -> bool:
        return self._stat(as_location(uri)) is not None

    def size(self, uri: "StorageURI | str") -> int:
        location = as_location(uri)
        info = self._stat(location)
        if info is None:
            raise StorageFileNotFound(f"{shown(location.uri)}: no such file in the storage")
        return int(info.size)

    def _objects(self, prefix: StorageURI) -> Iterator[tuple[StorageURI, int]]:
        try:
            with self._errors(prefix, "listed"):
                for item in self.client.list_objects(self.bucket, prefix=prefix.key + "/", recursive=True):
                    if item.is_dir or item.object_name is None:
                        continue
                    try:
                        yield StorageURI.from_key(item.object_name), int(item.size or 0)
                    except InvalidStorageURI:
                        # Written by some other tool: no URI can name it, so Harrier leaves it alone.
                        logger.warning("storage: skipping object %r, which no URI can name", item.object_name)
        except StorageFileNotFound:  # no bucket yet: nothing under any prefix
            return

    def list(self, prefix: "StorageURI | str") -> list[StoredFile]:
        location = as_location(prefix, directory=True)
        return [StoredFile(found.uri, size) for found, size in self._objects(location)]

    # --- deleting ----------------------------------------------------------------------------

    def delete(self, uri: "StorageURI | str") -> bool:
        location = as_location(uri)
        if self._stat(location) is None:
            return False
        with self._errors(location, "deleted"):
            self.client.remove_object(self.bucket, location.key)
        return True

    def delete_prefix(self, prefix: "StorageURI | str") -> int:
        location = as_location(prefix, directory=True)
        deleted = 0

        def doomed() -> Iterator[DeleteObject]:
            nonlocal deleted
            for found, _size in self._objects(location):
                deleted += 1
                yield DeleteObject(found.key)

        with self._errors(location, "deleted"):
            # Streams the listing into batched deletions: the errors come back as an iterator.
            failures = [f"{error.name}: {error.code}" for error in self.client.remove_objects(self.bucket, doomed())]
        if failures:
            raise StorageError(f"{shown(location.uri)}: {len(failures)} file(s) could not be deleted: "
                               + "; ".join(failures[:5]))
        return deleted


class _ResponseReader(io.RawIOBase):
    """An object's body as a raw stream: read from the connection as asked, released on close."""

    def __init__(self, response, location: StorageURI, endpoint: str) -> None:
        self._response = response
        self._location = location
        self._endpoint = endpoint

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        try:
            data = self._response.read(len(buffer))
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise StorageError(f"{shown(self._location.uri)} cannot be read: the storage server at "
                               f"{self._endpoint} failed: {error}") from error
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._response.close()
                self._response.release_conn()
            finally:
                super().close()


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """`host:port` as given, or a URL whose scheme decides TLS; the client wants `host:port`."""
    endpoint = (endpoint or "").strip()
    if not endpoint:
        raise StorageError("the S3 storage needs an endpoint (HARRIER_S3_ENDPOINT), e.g. minio:9000 "
                           "or s3.amazonaws.com")
    if "://" not in endpoint:
        return endpoint.rstrip("/"), secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise StorageError(f"HARRIER_S3_ENDPOINT {endpoint!r} must be host:port or http(s)://host:port, "
                           "without a path")
    return parts.netloc, parts.scheme == "https"

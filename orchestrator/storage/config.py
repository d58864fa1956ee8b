"""Which storage this process uses, from settings (themselves from environment variables).

Read when first asked, never at import, so that importing the storage never needs Django
configured. One storage object per process: a client made before a fork (Celery's prefork
pool) is not reused by the children, whose sockets it would share.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from orchestrator.storage.base import Storage
from orchestrator.storage.uris import StorageError

KINDS = ("local", "s3")


@dataclass(frozen=True)
class StorageConfig:
    kind: str = "local"
    path: str = ""
    endpoint: str = ""
    bucket: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    region: str = ""
    secure: bool = True


def config_from_settings(settings: Any) -> StorageConfig:
    """The storage settings of a settings object (django.conf.settings, or any with the names).

    HARRIER_STORAGE is `local` or `s3`; the URL forms `local:///path` and `s3://bucket` are read
    too, their path or bucket taking the place of HARRIER_STORAGE_PATH or HARRIER_S3_BUCKET.
    """
    def value(name: str, default: Any = "") -> Any:
        found = getattr(settings, name, default)
        return default if found is None else found

    kind = str(value("HARRIER_STORAGE", "local")).strip() or "local"
    path = str(value("HARRIER_STORAGE_PATH"))
    bucket = str(value("HARRIER_S3_BUCKET"))
    if "://" in kind:
        scheme, rest = kind.split("://", 1)
        kind = scheme.lower()
        if kind == "local" and rest:
            path = rest
        elif kind == "s3" and rest.strip("/"):
            bucket = rest.strip("/")
    kind = kind.lower()
    if kind not in KINDS:
        raise StorageError(f"HARRIER_STORAGE={kind!r} is not a storage: use one of {', '.join(KINDS)}")
    if kind == "local" and not path:
        raise StorageError("the local storage needs a directory (HARRIER_STORAGE_PATH)")
    return StorageConfig(
        kind=kind,
        path=path,
        endpoint=str(value("HARRIER_S3_ENDPOINT")),
        bucket=bucket,
        access_key=str(value("HARRIER_S3_ACCESS_KEY")),
        secret_key=str(value("HARRIER_S3_SECRET_KEY")),
        region=str(value("HARRIER_S3_REGION")),
        secure=bool(value("HARRIER_S3_SECURE", True)),
    )


def open_storage(config: StorageConfig) -> Storage:
    if config.kind == "local":
        from orchestrator.storage.local import LocalStorage

        return LocalStorage(config.path)
    from orchestrator.storage.s3 import S3Storage

    if not config.endpoint:
        # Amazon's own endpoint when none is named: the region, if any, picks the location.
        return S3Storage("s3.amazonaws.com", config.bucket, config.access_key, config.secret_key,
                         config.region, secure=True)
    return S3Storage(config.endpoint, config.bucket, config.access_key, config.secret_key,
                     config.region, config.secure)


_lock = threading.Lock()
_current: tuple[int, Storage] | None = None


def get_storage() -> Storage:
    """This process's storage, as the settings configure it."""
    global _current
    current = _current
    if current is not None and current[0] == os.getpid():
        return current[1]
    with _lock:
        if _current is None or _current[0] != os.getpid():
            from django.conf import settings

            _current = (os.getpid(), open_storage(config_from_settings(settings)))
        return _current[1]


def reset_storage() -> None:
    """Forget the storage made from settings (after the settings changed, in tests)."""
    global _current
    with _lock:
        _current = None

"""Harrier's internal storage: the files executions read and write — FILE inputs, tasks' output
files, namespace files — addressed by Kestra's `kestra:///…` URIs, kept in a local directory
or an S3 bucket (MinIO, S3, any compatible server). See docs/storage.md.

Workers may use it (it is not the repository): `get_storage().put(uri, path)`.
"""

from orchestrator.storage.base import CHUNK_SIZE, Storage, StorageFileNotFound, StoredFile
from orchestrator.storage.config import StorageConfig, config_from_settings, get_storage, open_storage, reset_storage
from orchestrator.storage.uris import (
    InvalidStorageURI,
    StorageError,
    StorageScopeError,
    StorageURI,
    check_scope,
    execution_prefix,
    input_file_uri,
    namespace_file_uri,
    namespace_files_prefix,
    namespace_path,
    parse_prefix,
    parse_uri,
    task_file_uri,
)

__all__ = [
    "CHUNK_SIZE",
    "InvalidStorageURI",
    "Storage",
    "StorageConfig",
    "StorageError",
    "StorageFileNotFound",
    "StorageScopeError",
    "StorageURI",
    "StoredFile",
    "check_scope",
    "config_from_settings",
    "execution_prefix",
    "get_storage",
    "input_file_uri",
    "namespace_file_uri",
    "namespace_files_prefix",
    "namespace_path",
    "open_storage",
    "parse_prefix",
    "parse_uri",
    "reset_storage",
    "task_file_uri",
]

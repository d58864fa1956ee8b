"""`io.kestra.plugin.aws.s3.Trigger` and `io.kestra.plugin.minio.Trigger` on a worker, through
the `minio` client (any S3-compatible server).

An evaluation lists every object under the prefix, keeps those that have not fired yet — the
trigger remembers each fired key with its ETag, so an object fires once and an overwritten one
(a new ETag) fires again — downloads at most `maxKeys` of them into the internal storage, under
the files of the execution they will start, and then moves or deletes each (MOVE, DELETE) or
leaves it (NONE). A key no longer listed is forgotten: a new object under that key fires.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from scheduler.triggers.storage_trigger import AwsS3TriggerProperties, StorageTriggerProperties
from workers.context import RunContext, TaskFailure
from workers.http_guard import DestinationRefused, checked_addresses, policy_from_settings
from workers.triggers import Evaluation

AWS_ENDPOINT = "https://s3.amazonaws.com"


def evaluate(props: StorageTriggerProperties, ctx: RunContext, state: dict[str, Any] | None) -> Evaluation:
    from minio.error import MinioException
    from urllib3.exceptions import HTTPError

    client = _client(props)
    seen: dict[str, str] = dict((state or {}).get("seen") or {})
    try:
        listed = _listing(client, props)
    except (MinioException, HTTPError, OSError) as error:
        raise TaskFailure(f"bucket {props.bucket!r} cannot be listed: {_describe(error)}") from None
    new = [(key, etag, item) for key, (etag, item) in listed.items() if seen.get(key) != etag][: props.maxKeys]
    objects: list[dict[str, Any]] = []
    error: str | None = None
    for key, etag, item in new:
        try:
            uri = _download(client, props, key, len(objects), ctx)
            _act(client, props, key)
        except (MinioException, HTTPError, OSError, TaskFailure) as failure:
            # What was taken so far fires; the rest stays for the next evaluation.
            error = f"object {key!r} of bucket {props.bucket!r}: {_describe(failure)}"
            break
        seen[key] = etag
        objects.append({"key": key, "uri": uri, "etag": etag, "size": item.size,
                        "lastModified": item.last_modified.isoformat() if item.last_modified else None,
                        "bucket": props.bucket})
        ctx.log("DEBUG", f"object {key} of bucket {props.bucket} fired ({props.action})")
    remembered = {"seen": {key: etag for key, etag in seen.items() if key in listed}}
    if error and not objects:
        raise TaskFailure(error)
    return Evaluation(fired=bool(objects), variables={"objects": objects}, state=remembered, error=error)


def _client(props: StorageTriggerProperties):
    from minio import Minio

    from orchestrator.storage import StorageError
    from orchestrator.storage.s3 import split_endpoint

    if isinstance(props, AwsS3TriggerProperties):
        endpoint = props.endpointOverride or AWS_ENDPOINT
    else:
        endpoint = props.endpoint  # type: ignore[attr-defined]
    try:
        host, secure = split_endpoint(endpoint, True)
    except StorageError:
        raise TaskFailure(f"endpoint {endpoint!r} must be http(s)://host:port, without a path") from None
    _guard(host, secure)
    return Minio(host, access_key=props.accessKeyId or None, secret_key=props.secretKeyId or None,
                 session_token=props.sessionToken or None, secure=secure, region=props.region or None)


def _guard(host: str, secure: bool) -> None:
    """With private destinations denied (HARRIER_HTTP_DENY_PRIVATE), the endpoint's host must
    resolve to allowed addresses only, as for HTTP tasks. The client resolves the name again
    when it connects; the check stops a flow from naming an internal service, not a resolver
    that answers differently a moment later."""
    policy = policy_from_settings()
    if not policy.deny_private:
        return
    name, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
    try:
        checked_addresses(name.strip("[]"), int(port or (443 if secure else 80)), policy)
    except DestinationRefused as refused:
        raise TaskFailure(f"endpoint: {refused}") from None


def _listing(client, props: StorageTriggerProperties) -> dict[str, tuple[str, Any]]:
    """Every object under the prefix that the regexp lets through: key → (ETag, item), in key order."""
    pattern = re.compile(props.regexp) if props.regexp else None
    found: dict[str, tuple[str, Any]] = {}
    for item in client.list_objects(props.bucket, prefix=props.prefix or None, recursive=True):
        if item.is_dir or item.object_name is None:
            continue
        if pattern is not None and not pattern.fullmatch(item.object_name):
            continue
        found[item.object_name] = ((item.etag or "").strip('"'), item)
    return found


def _download(client, props: StorageTriggerProperties, key: str, index: int, ctx: RunContext) -> str:
    from orchestrator.storage import StorageError, get_storage
    from orchestrator.storage.uris import InvalidStorageURI, execution_location

    job = ctx.job
    trigger_files = execution_location(job["namespace"], job["flowId"], job["executionId"]).child(
        "trigger", job["task"]["id"])
    try:
        location = trigger_files.child(*key.split("/"))
    except InvalidStorageURI:  # a key no storage path can be (`a//b`, `..`): numbered instead
        location = trigger_files.child(f"object-{index}")
    response = client.get_object(props.bucket, key)
    try:
        get_storage().put(location, response)
    except StorageError as error:
        raise TaskFailure(f"cannot be stored: {error}") from None
    finally:
        response.close()
        response.release_conn()
    return location.uri


def _act(client, props: StorageTriggerProperties, key: str) -> None:
    from minio.commonconfig import CopySource

    if props.action == "MOVE" and props.moveTo is not None:
        target = f"{props.moveTo.key.rstrip('/')}/{posixpath.basename(key)}"
        client.copy_object(props.moveTo.bucket or props.bucket, target, CopySource(props.bucket, key))
    if props.action in ("MOVE", "DELETE"):
        client.remove_object(props.bucket, key)


def _describe(error: Exception) -> str:
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if code:
        return f"the server answered {code}: {message}"
    return str(error) or type(error).__name__

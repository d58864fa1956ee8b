"""Kestra's KV tasks — `io.kestra.plugin.core.kv.Set`, `Get`, `Delete`, `GetKeys` — over the KV
store of orchestrator/kv.py. `namespace` defaults to the flow's; a flow reads its own, its
parents' and its children's stores, and writes its own and its children's (docs/kv.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from orchestrator import kv
from orchestrator.storage import StorageError
from workers.context import RunContext, TaskFailure
from workers.registry import TaskBase, TaskType, register

PREFIX = "io.kestra.plugin.core.kv."
KV_TYPES = ", ".join(t.value for t in kv.KVType)


class KVTaskProperties(TaskBase):
    namespace: str | None = Field(None, description="The namespace of the KV store; the flow's by default.")


class SetProperties(KVTaskProperties):
    key: str = Field(description="The key: letters, digits, '.', '_' and '-', starting with a letter or a digit.")
    value: Any = Field(description="The value; typed by `kvType`, or kept as written (text is a STRING).")
    kvType: str | None = Field(None, description=f"The type of the value: one of {KV_TYPES}.")
    kvDescription: str | None = Field(None, description="A description of the entry.")
    overwrite: bool = Field(True, description="Whether to replace a value the key already has, or fail.")
    ttl: str | None = Field(None, description="How long the entry lives (ISO-8601 duration, PT1H); forever by default.")


class GetProperties(KVTaskProperties):
    key: str = Field(description="The key to read.")
    errorOnMissing: bool = Field(False, description="Whether to fail when the key has no value (or it expired).")


class DeleteProperties(KVTaskProperties):
    key: str = Field(description="The key to delete.")
    errorOnMissing: bool = Field(False, description="Whether to fail when the key has no value.")


class GetKeysProperties(KVTaskProperties):
    prefix: str | None = Field(None, description="Only the keys that start with this.")


def _store(props: KVTaskProperties, ctx: RunContext, write: bool) -> kv.KVStore:
    own = ctx.job["namespace"]
    namespace = props.namespace or own
    check = kv.check_write if write else kv.check_read
    return kv.KVStore(check(namespace, own))


def _failures(run):
    """KV and storage errors end the attempt FAILED with their message."""
    def wrapped(props, ctx: RunContext):
        try:
            return run(props, ctx)
        except (kv.KVError, StorageError) as error:
            raise TaskFailure(str(error)) from None
    return wrapped


@_failures
def run_set(props: SetProperties, ctx: RunContext) -> None:
    store = _store(props, ctx, write=True)
    entry = store.put(props.key, props.value, props.kvType, ttl=props.ttl, description=props.kvDescription,
                      overwrite=props.overwrite)
    expiry = f", expires {entry.expiration_date}" if entry.expiration_date else ""
    ctx.log("DEBUG", f"Set the key '{entry.key}' ({entry.type.value}{expiry}) in namespace '{store.namespace}'")
    return None


@_failures
def run_get(props: GetProperties, ctx: RunContext) -> dict[str, Any]:
    store = _store(props, ctx, write=False)
    found, expired = store.lookup(kv.validate_key(props.key))
    if found is None and props.errorOnMissing:
        raise TaskFailure(kv.missing_message(props.key, store.namespace, expired) + " (errorOnMissing is true)")
    return {"value": found.value if found is not None else None}


@_failures
def run_delete(props: DeleteProperties, ctx: RunContext) -> dict[str, Any]:
    store = _store(props, ctx, write=True)
    deleted = store.delete(kv.validate_key(props.key))
    if not deleted and props.errorOnMissing:
        raise TaskFailure(kv.missing_message(props.key, store.namespace) + " (errorOnMissing is true)")
    return {"deleted": deleted}


@_failures
def run_get_keys(props: GetKeysProperties, ctx: RunContext) -> dict[str, Any]:
    store = _store(props, ctx, write=False)
    return {"keys": [entry.key for entry in store.list(props.prefix)]}


register(TaskType(name=PREFIX + "Set", properties=SetProperties, kind="runnable", run=run_set,
                  title="Set a key of the KV store"))
register(TaskType(name=PREFIX + "Get", properties=GetProperties, kind="runnable", run=run_get,
                  title="Read a key of the KV store"))
register(TaskType(name=PREFIX + "Delete", properties=DeleteProperties, kind="runnable", run=run_delete,
                  title="Delete a key of the KV store"))
register(TaskType(name=PREFIX + "GetKeys", properties=GetKeysProperties, kind="runnable", run=run_get_keys,
                  title="List the keys of the KV store"))

"""The KV store (orchestrator/kv.py) against the local-disk storage in a temporary directory."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from orchestrator import kv
from orchestrator.storage.local import LocalStorage

NS = "company.team"
START = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(storage, clock):
    return kv.KVStore(NS, storage, clock)


# --- keys and namespaces ----------------------------------------------------------------------

@pytest.mark.parametrize("key", ["a", "A1", "my_key", "my-key", "my.key", "0", "x" * kv.MAX_KEY_LENGTH, "a..b"])
def test_valid_keys(key):
    assert kv.validate_key(key) == key


@pytest.mark.parametrize("key", ["", "_a", ".a", "-a", "a b", "a/b", "..", ".", "é", "a:b", "a\nb", "x" * 251, None, 3])
def test_invalid_keys_are_refused_with_the_rule(key):
    with pytest.raises(kv.KVError) as error:
        kv.validate_key(key)
    message = str(error.value)
    assert "empty" in message or "letters, digits" in message or "limit" in message


def test_a_bad_key_is_refused_before_anything_is_written(store, storage):
    with pytest.raises(kv.KVError, match="'bad key' is not valid"):
        store.put("bad key", "x")
    assert storage.list("kestra:///company") == []


@pytest.mark.parametrize("namespace", ["", "Company", "a..b", "a.", ".a", "a/b", "company._kv", "company._files", None])
def test_invalid_namespaces_are_refused(namespace):
    with pytest.raises(kv.KVError):
        kv.KVStore(namespace)


def test_entries_live_under_the_namespace_path():
    assert kv.kv_uri("company.team", "my.key") == "kestra:///company/team/_kv/my.key.ion"
    assert kv.kv_prefix("company") == "kestra:///company/_kv/"


# --- types --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, kv_type, expected_type, stored", [
    ("hello", None, "STRING", "hello"),
    ("42", None, "STRING", "42"),
    (42, None, "NUMBER", 42),
    (4.5, None, "NUMBER", 4.5),
    (True, None, "BOOLEAN", True),
    ({"a": [1, 2]}, None, "JSON", {"a": [1, 2]}),
    ([1, "x"], None, "JSON", [1, "x"]),
    ("42", "NUMBER", "NUMBER", 42),
    ("-4.25", "number", "NUMBER", -4.25),
    ("1e3", "NUMBER", "NUMBER", 1000.0),
    ("TRUE", "BOOLEAN", "BOOLEAN", True),
    ("false", "BOOLEAN", "BOOLEAN", False),
    ("2024-05-01T12:00:00+02:00", "DATETIME", "DATETIME", "2024-05-01T10:00:00.000Z"),
    ("2024-05-01T10:00:00Z", "DATETIME", "DATETIME", "2024-05-01T10:00:00.000Z"),
    ("2024-05-01T10:00:00", "DATETIME", "DATETIME", "2024-05-01T10:00:00.000Z"),
    ("2024-05-01", "DATE", "DATE", "2024-05-01"),
    (dt.date(2024, 5, 1), None, "DATE", "2024-05-01"),
    ("PT5M", "DURATION", "DURATION", "PT5M"),
    ("P1DT1H", "DURATION", "DURATION", "PT25H"),
    ("PT1.5S", "DURATION", "DURATION", "PT1.5S"),
    ('{"a": 1}', "JSON", "JSON", {"a": 1}),
    ("[1, 2]", "JSON", "JSON", [1, 2]),
    ('"text"', "JSON", "JSON", "text"),
    (42, "STRING", "STRING", "42"),
    (True, "STRING", "STRING", "true"),
    ({"a": 1}, "STRING", "STRING", '{"a":1}'),
])
def test_values_are_typed(value, kv_type, expected_type, stored):
    chosen, result = kv.typed_value(value, kv_type)
    assert chosen.value == expected_type
    assert result == stored
    assert type(result) is type(stored)


@pytest.mark.parametrize("value, kv_type, reason", [
    ("abc", "NUMBER", "not a NUMBER"),
    ("NaN", "NUMBER", "not a NUMBER"),
    (True, "NUMBER", "not a NUMBER"),
    ("yes", "BOOLEAN", "not a BOOLEAN"),
    ("tomorrow", "DATETIME", "not a DATETIME"),
    ("2024-13-01", "DATE", "not a DATE"),
    ("2024-05-01T10:00:00Z", "DATE", "not a DATE"),
    ("5 minutes", "DURATION", "not a DURATION"),
    ("{oops", "JSON", "not a JSON"),
    ("NaN", "JSON", "not a JSON"),
    ("x", "TEXT", "is not a KV type"),
    (None, None, "cannot be null"),
])
def test_values_of_the_wrong_type_are_refused(value, kv_type, reason):
    with pytest.raises(kv.KVError, match=reason):
        kv.typed_value(value, kv_type)


@pytest.mark.parametrize("delta, text", [
    (dt.timedelta(minutes=5), "PT5M"),
    (dt.timedelta(days=2, minutes=1), "PT48H1M"),
    (dt.timedelta(0), "PT0S"),
    (dt.timedelta(seconds=-90), "PT-1M-30S"),
    (dt.timedelta(milliseconds=1500), "PT1.5S"),
    (dt.timedelta(milliseconds=-500), "PT-0.5S"),
])
def test_durations_are_written_as_java_writes_them(delta, text):
    assert kv.iso_duration(delta) == text


def test_every_type_round_trips_through_the_storage(store):
    values = {"s": ("text with\nnewline and ünïcode", None), "n": ("12", "NUMBER"), "b": (False, None),
              "dt": ("2024-05-01T10:00:00Z", "DATETIME"), "d": ("2024-05-01", "DATE"),
              "du": ("PT1H", "DURATION"), "j": ({"nested": {"list": [1, None, "x"]}}, None)}
    for key, (value, kv_type) in values.items():
        store.put(key, value, kv_type)
    read = {key: store.get(key).value for key in values}
    assert read == {"s": "text with\nnewline and ünïcode", "n": 12, "b": False,
                    "dt": "2024-05-01T10:00:00.000Z", "d": "2024-05-01", "du": "PT1H",
                    "j": {"nested": {"list": [1, None, "x"]}}}
    assert store.get("du").entry.type is kv.KVType.DURATION


# --- serialization ------------------------------------------------------------------------------

def test_the_file_holds_the_metadata_line_then_the_value(store, storage, clock):
    store.put("region", "eu-west-1", description="where we run", ttl="PT1H")
    with storage.get("kestra:///company/team/_kv/region.ion") as stream:
        lines = stream.read().decode().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {
        "v": 1, "namespace": NS, "key": "region", "type": "STRING", "description": "where we run",
        "creationDate": "2024-05-01T10:00:00.000Z", "updateDate": "2024-05-01T10:00:00.000Z",
        "expirationDate": "2024-05-01T11:00:00.000Z",
    }
    assert json.loads(lines[1]) == "eu-west-1"


def test_a_damaged_file_is_reported_and_can_be_deleted(store, storage):
    storage.put(kv.kv_uri(NS, "broken"), b"not json\n")
    with pytest.raises(kv.KVError, match="'broken' of namespace 'company.team' is not readable"):
        store.get("broken")
    assert store.list() == []  # skipped, with a warning
    assert store.delete("broken") is True
    assert not storage.exists(kv.kv_uri(NS, "broken"))


def test_the_value_size_is_bounded(store):
    with pytest.raises(kv.KVError, match="limited to 1048576 bytes"):
        store.put("big", "x" * kv.MAX_VALUE_BYTES)
    store.put("fits", "x" * (kv.MAX_VALUE_BYTES - 2))  # the quotes count
    assert len(store.get("fits").value) == kv.MAX_VALUE_BYTES - 2


def test_the_description_is_bounded(store):
    with pytest.raises(kv.KVError, match="description"):
        store.put("k", "v", description="d" * (kv.MAX_DESCRIPTION_LENGTH + 1))


# --- set, get, list, delete --------------------------------------------------------------------

def test_overwrite_keeps_the_creation_date_and_updates_the_rest(store, clock):
    store.put("k", "one", description="first")
    clock.advance(minutes=5)
    entry = store.put("k", 2)
    assert entry.creation_date == "2024-05-01T10:00:00.000Z"
    assert entry.update_date == "2024-05-01T10:05:00.000Z"
    assert entry.type is kv.KVType.NUMBER and entry.description is None
    assert store.get("k").value == 2


def test_overwrite_false_refuses_an_existing_key(store):
    store.put("k", "one")
    with pytest.raises(kv.KVKeyExists, match="the key already exists and `overwrite` is false"):
        store.put("k", "two", overwrite=False)
    assert store.get("k").value == "one"
    store.put("new", "x", overwrite=False)


def test_list_gives_the_live_keys_in_order_with_a_prefix(store, storage):
    for key in ["b.2", "a", "b.1", "c"]:
        store.put(key, key)
    kv.KVStore("company.team.sub", storage).put("b.child", 1)
    kv.KVStore("company.team2", storage).put("b.other", 1)
    assert [entry.key for entry in store.list()] == ["a", "b.1", "b.2", "c"]
    assert [entry.key for entry in store.list("b.")] == ["b.1", "b.2"]
    assert store.list("zzz") == []


def test_list_ignores_the_files_of_a_flow_in_a_namespace_named_kv(store, storage):
    store.put("a", 1)
    storage.put("kestra:///company/team/_kv/flow/executions/e1/tasks/t/r/out.ion", b"x")
    storage.put("kestra:///company/team/_kv/notes.txt", b"x")
    assert [entry.key for entry in store.list()] == ["a"]


def test_delete_says_whether_there_was_a_value(store):
    store.put("k", "v")
    assert store.delete("k") is True
    assert store.get("k") is None
    assert store.delete("k") is False


def test_a_missing_key_is_none_and_require_names_it(store):
    assert store.get("nothing") is None
    with pytest.raises(kv.KVNotFound, match="The key 'nothing' does not exist in the namespace 'company.team'."):
        store.require("nothing")


# --- TTL ----------------------------------------------------------------------------------------

def test_an_expired_key_reads_as_absent_and_is_removed(store, storage, clock):
    store.put("short", "v", ttl="PT10M")
    clock.advance(minutes=9, seconds=59)
    assert store.get("short").value == "v"
    assert [entry.key for entry in store.list()] == ["short"]
    clock.advance(seconds=1)
    found, expired = store.lookup("short")
    assert found is None and expired.expiration_date == "2024-05-01T10:10:00.000Z"
    assert not storage.exists(kv.kv_uri(NS, "short"))
    store.put("again", "v", ttl="PT1S")
    clock.advance(seconds=1)
    with pytest.raises(kv.KVNotFound, match="it expired at 2024-05-01T10:10:01.000Z"):
        store.require("again")


def test_listing_removes_expired_entries(store, storage, clock):
    store.put("short", "v", ttl="PT1M")
    store.put("long", "v")
    clock.advance(minutes=2)
    assert [entry.key for entry in store.list()] == ["long"]
    assert not storage.exists(kv.kv_uri(NS, "short"))


def test_an_expired_key_can_be_set_again_with_overwrite_false(store, clock):
    store.put("k", "old", ttl="PT1M")
    clock.advance(minutes=1)
    store.put("k", "new", overwrite=False)
    assert store.get("k").value == "new"


def test_expiry_does_not_remove_an_entry_written_again_since(store, storage, clock):
    store.put("k", "old", ttl="PT1M")
    clock.advance(minutes=2)
    stale = store._read("k").entry
    store.put("k", "fresh")  # another writer, between the read and the removal
    store._remove_expired(stale)
    assert store.get("k").value == "fresh"


@pytest.mark.parametrize("ttl", ["PT0S", "-PT1M", "soon", "P"])
def test_a_ttl_must_be_a_positive_duration(store, ttl):
    with pytest.raises(kv.KVError, match="ttl"):
        store.put("k", "v", ttl=ttl)


def test_a_ttl_too_long_for_a_date_is_refused(store):
    with pytest.raises(kv.KVError, match="ttl"):
        store.put("k", "v", ttl="P999999999D")


# --- namespaces ---------------------------------------------------------------------------------

@pytest.mark.parametrize("target, allowed", [
    ("company.team", True), ("company", True), ("company.team.sub", True),
    ("company.team2", False), ("company.other", False), ("other", False), ("comp", False),
])
def test_a_flow_reads_its_own_its_parents_and_its_children_stores(target, allowed):
    if allowed:
        assert kv.check_read(target, NS) == target
    else:
        with pytest.raises(kv.KVAccessError, match="Cannot read the KV store"):
            kv.check_read(target, NS)


@pytest.mark.parametrize("target, allowed", [
    ("company.team", True), ("company.team.sub", True), ("company.team.sub.deeper", True),
    ("company", False), ("company.team2", False), ("other", False),
])
def test_a_flow_writes_only_its_own_and_its_children_stores(target, allowed):
    if allowed:
        assert kv.check_write(target, NS) == target
    else:
        with pytest.raises(kv.KVAccessError, match="may change only its own namespace"):
            kv.check_write(target, NS)


def test_find_inherits_from_the_nearest_parent(storage, clock):
    kv.KVStore("company", storage, clock).put("k", "from company")
    kv.KVStore("company.team", storage, clock).put("k", "from team")
    kv.KVStore("company", storage, clock).put("only.top", 1)
    assert kv.find("k", "company.team.sub", storage=storage, clock=clock).value == "from team"
    assert kv.find("only.top", "company.team.sub", storage=storage, clock=clock).value == 1
    with pytest.raises(kv.KVNotFound, match="does not exist in the namespace 'company.team.sub'"):
        kv.find("none", "company.team.sub", storage=storage, clock=clock)


def test_find_with_a_namespace_looks_only_there(storage, clock):
    kv.KVStore("company", storage, clock).put("k", "top")
    with pytest.raises(kv.KVNotFound):
        kv.find("k", "company.team", "company.team", storage=storage, clock=clock)
    assert kv.find("k", "company.team", "company", storage=storage, clock=clock).value == "top"
    with pytest.raises(kv.KVAccessError):
        kv.find("k", "company.team", "elsewhere", storage=storage, clock=clock)


def test_an_expired_child_entry_lets_the_parent_value_show(storage, clock):
    kv.KVStore("company", storage, clock).put("k", "top")
    kv.KVStore("company.team", storage, clock).put("k", "team", ttl="PT1M")
    clock.advance(minutes=1)
    assert kv.find("k", "company.team", storage=storage, clock=clock).value == "top"

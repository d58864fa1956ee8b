"""Kestra's KV store: typed values kept per namespace in the internal storage. See docs/kv.md.

Every entry is one file, `kestra:///<namespace path>/_kv/<key>.ion`, holding its metadata and
its value, so that the database holds none of it (as in Kestra, where values may be private
data and stay in the user's bucket) and a worker, which never touches the database, can read
and write it. The file is Ion text made of two top-level values, each written as JSON on its own
line:

    {"v":1,"key":"region","namespace":"company.team","type":"STRING","description":null,
     "creationDate":"…","updateDate":"…","expirationDate":null}
    "eu-west-1"

The metadata comes first so that listing a namespace reads one short line per key, whatever
the size of the values. One file per entry, written by one `put`, keeps a write atomic: a reader
sees the old entry or the new one, never a value with another entry's metadata.

The logic lives here, free of Django and of the worker, so that the KV tasks, the `kv()`
expression function, the REST API and the admin all use the same code.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from orchestrator.flowlang.types import parse_duration
from orchestrator.input_types import duration_text
from orchestrator.storage import Storage, StorageError, StorageFileNotFound, get_storage
from orchestrator.storage.uris import StorageURI, namespace_segments, parse_uri

logger = logging.getLogger("harrier.kv")

# The directory of a namespace's KV entries, beside its flows' directories and `_files`.
KV_DIRECTORY = "_kv"
EXTENSION = ".ion"
FORMAT_VERSION = 1

# Kestra's key rule (KVStore.validateKey). It also keeps a key one plain file name: no '/',
# and no '.' or '..' since the first character is a letter or a digit.
KEY_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
# A storage name is at most 255 bytes; the key is followed by '.ion'.
MAX_KEY_LENGTH = 250
# A KV store holds small values — settings, cursors, state between executions. Kestra sets no
# limit; one bounds what a task can make every later reader load (files belong in the storage).
MAX_VALUE_BYTES = 1024 * 1024
MAX_DESCRIPTION_LENGTH = 1000
# The metadata line is short (bounded key, namespace and description); anything longer is not ours.
_MAX_HEADER_BYTES = 16 * 1024
# Kestra's namespace rule (the flow language's); repeated here so this module stays importable alone.
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_MAX_NAMESPACE_LENGTH = 150
_INTEGER = re.compile(r"[-+]?\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class KVType(str, enum.Enum):
    STRING = "STRING"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    DATE = "DATE"
    DURATION = "DURATION"
    JSON = "JSON"


class KVError(ValueError):
    """A KV operation refused, with a reason the user can act on."""


class KVNotFound(KVError, LookupError):
    """No value for the key (never set, deleted, or expired)."""


class KVKeyExists(KVError):
    """`overwrite: false` and the key has a value."""


class KVAccessError(KVError, PermissionError):
    """A flow asked for a namespace's KV store it may not use."""


# --- keys, namespaces, locations -----------------------------------------------------------

def validate_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise KVError("A KV key cannot be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise KVError(f"The KV key '{key[:40]}…' is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    if not KEY_PATTERN.fullmatch(key):
        raise KVError(
            f"The KV key {key!r} is not valid: a key must start with a letter or a digit and contain only "
            "letters, digits, dots (.), underscores (_) and hyphens (-)"
        )
    return key


def validate_namespace(namespace: Any) -> str:
    if (not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace)
            or len(namespace) > _MAX_NAMESPACE_LENGTH or ".." in namespace or namespace.endswith(".")):
        raise KVError(
            f"{namespace!r} is not a namespace: lowercase letters, digits, '.', '_' and '-', starting with a "
            f"lowercase letter or a digit, at most {_MAX_NAMESPACE_LENGTH} characters"
        )
    if KV_DIRECTORY in namespace.split("."):
        raise KVError(f"{namespace!r} is not a namespace with a KV store: '{KV_DIRECTORY}' is reserved")
    try:
        namespace_segments(namespace)  # the storage's own rules (reserved names)
    except StorageError as error:
        raise KVError(str(error)) from None
    return namespace


def kv_location(namespace: str) -> StorageURI:
    return StorageURI.from_segments((*namespace_segments(validate_namespace(namespace)), KV_DIRECTORY))


def kv_prefix(namespace: str) -> str:
    """`kestra:///<namespace path>/_kv/`: the directory of a namespace's KV entries."""
    return kv_location(namespace).uri + "/"


def kv_uri(namespace: str, key: str) -> str:
    """Where one entry lives: `kestra:///<namespace path>/_kv/<key>.ion`."""
    return kv_location(namespace).child(validate_key(key) + EXTENSION).uri


# --- which namespace's store a flow may use --------------------------------------------------

def is_same_or_descendant(namespace: str, ancestor: str) -> bool:
    """`company.team` is under `company`; `company2` is not (whole parts are compared)."""
    return namespace == ancestor or namespace.startswith(ancestor + ".")


def ancestors_and_self(namespace: str) -> list[str]:
    """`a.b.c` → [`a.b.c`, `a.b`, `a`]: where `kv('key')` looks, nearest first."""
    parts = namespace.split(".")
    return [".".join(parts[:size]) for size in range(len(parts), 0, -1)]


def check_read(namespace: str, from_namespace: str) -> str:
    """A flow reads the KV store of its namespace, of its parents (which it inherits, as in
    Kestra) and of its children. Kestra's open-source edition lets any namespace be read; Harrier
    has no allow-list yet, so other namespaces are refused rather than open to every flow."""
    validate_namespace(namespace)
    if is_same_or_descendant(from_namespace, namespace) or is_same_or_descendant(namespace, from_namespace):
        return namespace
    raise KVAccessError(
        f"Cannot read the KV store of namespace '{namespace}' from a flow of '{from_namespace}': a flow may "
        f"read only its own namespace's KV store, its parent namespaces' and its child namespaces'"
    )


def check_write(namespace: str, from_namespace: str) -> str:
    """A flow writes (sets, deletes) the KV store of its namespace and of its child namespaces only:
    a parent's entries are shared by every sibling, and no flow of one team should change them."""
    validate_namespace(namespace)
    if is_same_or_descendant(namespace, from_namespace):
        return namespace
    raise KVAccessError(
        f"Cannot change the KV store of namespace '{namespace}' from a flow of '{from_namespace}': a flow may "
        f"change only its own namespace's KV store ('{from_namespace}') and its child namespaces' "
        f"('{from_namespace}.…')"
    )


# --- typed values --------------------------------------------------------------------------

def iso_instant(moment: _dt.datetime) -> str:
    """UTC with milliseconds, as every date Harrier writes: `2024-05-01T10:00:00.000Z`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    moment = moment.astimezone(_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> _dt.datetime:
    """An ISO-8601 date-time; one without an offset is read as UTC."""
    value = text.strip()
    if value[-1:] in ("z", "Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date-time (such as 2024-05-01T10:00:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_dt.timezone.utc)


# Java's Duration.toString(), which Kestra writes (`PT36H0.5S`): the same as typed inputs use.
iso_duration = duration_text


def _duration(value: Any) -> _dt.timedelta:
    if isinstance(value, _dt.timedelta):
        return value
    parsed = parse_duration(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(f"{value!r} is not an ISO-8601 duration (such as PT5M, PT1H30M or P1D)")
    return parsed


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if _INTEGER.fullmatch(text) else float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return value
    raise ValueError(f"a {type(value).__name__} is not a number")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    # Kestra's Boolean.parseBoolean reads anything but "true" as false; a typo should not.
    raise ValueError(f"{value!r} is not a boolean (true or false)")


def _date(value: Any) -> str:
    if isinstance(value, _dt.datetime):
        raise ValueError(f"{value!r} is a date-time, not a date")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return _dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an ISO-8601 date (such as 2024-05-01)")


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the value cannot be written as JSON ({error})") from None


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _json_text(value)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = json.loads(value, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            raise ValueError(f"the value is not JSON ({error.msg} at position {error.pos})") from None
        return parsed
    _json_text(value)  # refuses what JSON cannot hold
    return value


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def infer_type(value: Any) -> KVType:
    """The type of a value given without `kvType`: text is a STRING (as Kestra stores it), other
    YAML values keep their kind."""
    if isinstance(value, bool):
        return KVType.BOOLEAN
    if isinstance(value, (int, float)):
        return KVType.NUMBER
    if isinstance(value, _dt.datetime):
        return KVType.DATETIME
    if isinstance(value, _dt.date):
        return KVType.DATE
    if isinstance(value, _dt.timedelta):
        return KVType.DURATION
    if isinstance(value, (dict, list)):
        return KVType.JSON
    return KVType.STRING


def as_type(kv_type: Any) -> KVType | None:
    if kv_type is None or isinstance(kv_type, KVType):
        return kv_type
    try:
        return KVType(str(kv_type).strip().upper())
    except ValueError:
        raise KVError(f"{kv_type!r} is not a KV type: use one of {', '.join(t.value for t in KVType)}") from None


def typed_value(value: Any, kv_type: Any = None) -> tuple[KVType, Any]:
    """The value as stored for `kv_type` (inferred when None), in its JSON form: DATETIME as
    `2024-05-01T10:00:00.000Z`, DATE as `2024-05-01`, DURATION as `PT5M`. Refused with the reason
    when the value is not of that type."""
    if value is None:
        raise KVError("A KV value cannot be null")
    chosen = as_type(kv_type) or infer_type(value)
    try:
        if chosen is KVType.STRING:
            return chosen, _string(value)
        if chosen is KVType.NUMBER:
            return chosen, _number(value)
        if chosen is KVType.BOOLEAN:
            return chosen, _boolean(value)
        if chosen is KVType.DATETIME:
            moment = value if isinstance(value, _dt.datetime) else parse_instant(_string(value))
            return chosen, iso_instant(moment)
        if chosen is KVType.DATE:
            return chosen, _date(value)
        if chosen is KVType.DURATION:
            return chosen, iso_duration(_duration(value))
        return chosen, _json(value)
    except ValueError as error:
        raise KVError(f"The value is not a {chosen.value}: {error}") from None


def parse_ttl(ttl: Any) -> _dt.timedelta | None:
    """`ttl` (an ISO-8601 duration such as `PT10M`, or a timedelta) as a positive duration."""
    if ttl is None or ttl == "":
        return None
    try:
        delta = _duration(ttl)
    except ValueError as error:
        raise KVError(f"ttl: {error}") from None
    if delta <= _dt.timedelta(0):
        raise KVError(f"ttl: {ttl!r} is not a positive duration")
    return delta


# --- entries -------------------------------------------------------------------------------

@dataclass(frozen=True)
class KVEntry:
    """What is known of a key without its value."""

    namespace: str
    key: str
    type: KVType
    description: str | None
    creation_date: str
    update_date: str
    expiration_date: str | None = None

    def expired(self, now: _dt.datetime) -> bool:
        return self.expiration_date is not None and parse_instant(self.expiration_date) <= now

    def as_dict(self) -> dict[str, Any]:
        """Kestra's field names, for the API and task outputs."""
        return {"namespace": self.namespace, "key": self.key, "type": self.type.value,
                "description": self.description, "creationDate": self.creation_date,
                "updateDate": self.update_date, "expirationDate": self.expiration_date}


@dataclass(frozen=True)
class KVValue:
    entry: KVEntry
    value: Any  # in its JSON form (see typed_value)


def encode(entry: KVEntry, value: Any) -> bytes:
    header = {"v": FORMAT_VERSION, **entry.as_dict()}
    # Compact JSON has no raw newline (they are escaped in strings): one value per line.
    return (_json_text(header) + "\n" + _json_text(value) + "\n").encode("utf-8")


def _decode_header(line: bytes, namespace: str, key: str) -> KVEntry:
    try:
        header = json.loads(line.decode("utf-8"))
        if not isinstance(header, dict) or header.get("v") != FORMAT_VERSION:
            raise ValueError("unknown format")
        entry = KVEntry(namespace=namespace, key=key, type=KVType(header["type"]),
                        description=header.get("description"), creation_date=str(header["creationDate"]),
                        update_date=str(header["updateDate"]), expiration_date=header.get("expirationDate"))
        if entry.expiration_date is not None:
            parse_instant(str(entry.expiration_date))
        return entry
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise KVError(f"The KV entry '{key}' of namespace '{namespace}' is not readable: its file is damaged") from None


def decode(data: bytes, namespace: str, key: str) -> KVValue:
    line, _, rest = data.partition(b"\n")
    entry = _decode_header(line, namespace, key)
    try:
        value = json.loads(rest.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise KVError(f"The KV entry '{key}' of namespace '{namespace}' is not readable: its file is damaged") from None
    return KVValue(entry, value)


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


# --- the store of one namespace --------------------------------------------------------------

class KVStore:
    """The KV entries of one namespace. No access rule is applied here: the callers (tasks, the
    `kv()` function, the API) check which namespace they may use first."""

    def __init__(self, namespace: str, storage: Storage | None = None,
                 clock: Callable[[], _dt.datetime] = utc_now) -> None:
        self.namespace = validate_namespace(namespace)
        self._storage = storage
        self._clock = clock

    @property
    def storage(self) -> Storage:
        return self._storage if self._storage is not None else get_storage()

    def uri(self, key: str) -> str:
        return kv_uri(self.namespace, key)

    # --- reading ---------------------------------------------------------------------------

    def _read(self, key: str) -> KVValue | None:
        uri = self.uri(key)
        try:
            data = self.storage.read_bytes(uri, MAX_VALUE_BYTES + _MAX_HEADER_BYTES)
        except StorageFileNotFound:
            return None
        return decode(data, self.namespace, key)

    def _header(self, uri: str, key: str) -> KVEntry | None:
        try:
            with self.storage.get(uri) as stream:
                line = stream.readline(_MAX_HEADER_BYTES)
        except StorageFileNotFound:
            return None
        return _decode_header(line, self.namespace, key)

    def lookup(self, key: str) -> tuple[KVValue | None, KVEntry | None]:
        """(the live value or None, the entry that expired or None). An expired entry is removed."""
        found = self._read(key)
        if found is None:
            return None, None
        if found.entry.expired(self._clock()):
            self._remove_expired(found.entry)
            return None, found.entry
        return found, None

    def get(self, key: str) -> KVValue | None:
        """The value of `key`, or None when it has none (or it expired)."""
        return self.lookup(key)[0]

    def require(self, key: str) -> KVValue:
        found, expired = self.lookup(key)
        if found is None:
            raise KVNotFound(missing_message(key, self.namespace, expired))
        return found

    def entry(self, key: str) -> KVEntry | None:
        """The metadata of `key` (None when missing or expired), reading only its first line."""
        entry = self._header(self.uri(key), key)
        if entry is None or entry.expired(self._clock()):
            return None
        return entry

    def list(self, prefix: str | None = None) -> list[KVEntry]:
        """The live entries, ordered by key; `prefix` keeps the keys that start with it.

        Expired entries are left out, and removed."""
        now = self._clock()
        depth = len(kv_location(self.namespace).segments) + 1
        entries = []
        for stored in self.storage.list(kv_prefix(self.namespace)):
            location = parse_uri(stored.uri)
            if len(location.segments) != depth:
                continue  # deeper: the files of flows of a namespace `<ours>._kv`, not entries
            name = location.name
            key = name[: -len(EXTENSION)] if name.endswith(EXTENSION) else ""
            if not KEY_PATTERN.fullmatch(key) or (prefix and not key.startswith(prefix)):
                continue
            try:
                entry = self._header(stored.uri, key)
            except (KVError, StorageError) as error:
                logger.warning("kv: skipping %s: %s", stored.uri, error)
                continue
            if entry is None:
                continue  # deleted meanwhile
            if entry.expired(now):
                self._remove_expired(entry)
                continue
            entries.append(entry)
        return sorted(entries, key=lambda item: item.key)

    # --- writing ---------------------------------------------------------------------------

    def put(self, key: str, value: Any, kv_type: Any = None, *, ttl: Any = None,
            description: str | None = None, overwrite: bool = True) -> KVEntry:
        """Set `key` to `value` (typed by `kv_type`, inferred when None); return its entry.

        `overwrite=False` refuses a key that has a live value. It is a check before the write, not
        a lock: two writers racing on a new key may both succeed (the last one wins)."""
        validate_key(key)
        chosen, stored = typed_value(value, kv_type)
        size = len(_json_text(stored).encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise KVError(f"The value of the key '{key}' is {size} bytes; a KV value is limited to "
                          f"{MAX_VALUE_BYTES} bytes (keep large data in files, and their URI in the KV store)")
        expiry = parse_ttl(ttl)
        if description is not None:
            description = str(description)
            if len(description) > MAX_DESCRIPTION_LENGTH:
                raise KVError(f"A KV description is limited to {MAX_DESCRIPTION_LENGTH} characters")
        now = self._clock()
        previous = self.entry(key)
        if previous is not None and not overwrite:
            raise KVKeyExists(
                f"Cannot set the value of the key '{key}' in namespace '{self.namespace}': the key already exists "
                "and `overwrite` is false"
            )
        created = previous.creation_date if previous is not None else iso_instant(now)
        try:
            expiration = iso_instant(now + expiry) if expiry is not None else None
        except OverflowError:
            raise KVError(f"ttl: {ttl!r} is too long") from None
        entry = KVEntry(namespace=self.namespace, key=key, type=chosen, description=description,
                        creation_date=created, update_date=iso_instant(now), expiration_date=expiration)
        self.storage.put(self.uri(key), encode(entry, stored))
        return entry

    def delete(self, key: str) -> bool:
        """Delete `key`; whether it had a live value."""
        try:
            live = self.entry(key) is not None
        except KVError:  # a damaged entry can still be deleted
            live = True
        deleted = self.storage.delete(self.uri(key))
        return live and deleted

    def _remove_expired(self, entry: KVEntry) -> None:
        """Remove an expired entry, unless it was written again since it was read (by updateDate)."""
        uri = self.uri(entry.key)
        try:
            current = self._header(uri, entry.key)
            if current is not None and current.update_date == entry.update_date:
                self.storage.delete(uri)
        except (KVError, StorageError) as error:  # the entry reads as absent all the same
            logger.warning("kv: could not remove the expired entry %s: %s", uri, error)


def missing_message(key: str, namespace: str, expired: KVEntry | None = None) -> str:
    if expired is not None:
        return (f"The key '{key}' does not exist in the namespace '{namespace}': "
                f"it expired at {expired.expiration_date}.")
    return f"The key '{key}' does not exist in the namespace '{namespace}'."


# --- what flows use -------------------------------------------------------------------------

def find(key: str, from_namespace: str, namespace: str | None = None, *,
         storage: Storage | None = None, clock: Callable[[], _dt.datetime] = utc_now) -> KVValue:
    """`kv(key)`: the value in the flow's namespace, else in the nearest parent that has one
    (Kestra's inheritance); `kv(key, namespace)`: in that namespace only. KVNotFound when none."""
    validate_key(key)
    if namespace is not None:
        store = KVStore(check_read(namespace, from_namespace), storage, clock)
        return store.require(key)
    expired_here = None
    for candidate in ancestors_and_self(validate_namespace(from_namespace)):
        found, expired = KVStore(candidate, storage, clock).lookup(key)
        if found is not None:
            return found
        if candidate == from_namespace:
            expired_here = expired
    raise KVNotFound(missing_message(key, from_namespace, expired_here))

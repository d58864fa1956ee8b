"""The internal storage's behaviour, the same scenarios on every backend: a local directory, and
an S3 bucket through the `minio` client against a real S3-compatible server (moto's server mode,
started by the tests). No database: these tests never request the `db` fixture."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tracemalloc
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import urllib3

from orchestrator.storage import (
    InvalidStorageURI,
    StorageError,
    StorageFileNotFound,
    execution_prefix,
    get_storage,
    input_file_uri,
    namespace_file_uri,
    reset_storage,
    task_file_uri,
)
from orchestrator.storage.local import LocalStorage
from orchestrator.storage.s3 import DEFAULT_PART_SIZE, S3Storage
from orchestrator.storage.uris import shown
from tests.harness import wait_for

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
NS, FLOW = "company.team", "etl"
EXECUTION, OTHER_EXECUTION = "4xU3n1mQq7T0aZ8bLcVdE2", "7pQ2m9Xs4Lk1Jh8Gf6Dd3S"
TASK_RUN = "1hG5kPq2Rs3Tu4Vw5Xy6Za"
# What one transfer may hold in memory, whatever the file's size: a chunk or two locally; for
# S3, the parts the client holds (about four copies of one part for a stream of unknown length).
MEMORY_BOUND = {"local": 8 * MiB, "s3": 4 * DEFAULT_PART_SIZE + 4 * MiB}


def out(name: str, execution: str = EXECUTION, task: str = "extract") -> str:
    return task_file_uri(NS, FLOW, execution, task, TASK_RUN, name)


# --- the S3-compatible server ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # an HTTP error is an answer
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """`host:port` of a moto S3 server running for this module; stopped at the end."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    for _attempt in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            wait_for(lambda: process.poll() is not None or _answers(f"http://127.0.0.1:{port}/"),
                     60, "the moto S3 server to answer")
        except BaseException:
            process.kill()
            process.wait(10)
            raise
        if process.poll() is None:
            break
    else:
        raise RuntimeError(f"the moto S3 server did not start: {log_path.read_text()[-2000:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def make_s3(endpoint: str, bucket: str | None = None) -> S3Storage:
    return S3Storage(endpoint, bucket or f"harrier-{uuid.uuid4().hex[:12]}", "testing", "testing",
                     region="us-east-1", secure=False)


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")
    return make_s3(request.getfixturevalue("s3_endpoint"))


def read_all(storage, uri) -> bytes:
    with storage.get(uri) as stream:
        return stream.read()


class PatternStream(io.RawIOBase):
    """`size` bytes of a repeating pattern, of unknown length to the reader, made as read."""

    def __init__(self, size: int, on_half=None) -> None:
        self.left = size
        self.half = size // 2
        self.on_half = on_half
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.on_half and self.left <= self.half:
            self.on_half()
            self.on_half = None
        count = min(len(buffer), self.left)
        data = (b"0123456789abcdef" * (count // 16 + 1))[:count]
        buffer[:count] = data
        self.digest.update(data)
        self.left -= count
        return count


# --- writing and reading -----------------------------------------------------------------------

def test_put_then_get_exists_and_size(storage):
    uri = out("report.csv")
    assert not storage.exists(uri)
    assert storage.put(uri, b"a,b\n1,2\n") == 8
    assert storage.exists(uri)
    assert storage.size(uri) == 8
    assert read_all(storage, uri) == b"a,b\n1,2\n"


def test_put_from_a_path_and_from_a_stream(storage, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"from a file")
    assert storage.put(out("a.bin"), source) == 11
    assert storage.put(out("b.bin"), io.BytesIO(b"from a stream")) == 13
    assert read_all(storage, out("a.bin")) == b"from a file"
    assert read_all(storage, out("b.bin")) == b"from a stream"


def test_put_from_an_open_file_stores_the_rest_of_it(storage, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"skip:keep this")
    with open(source, "rb") as stream:
        stream.seek(5)
        assert storage.put(out("rest.bin"), stream) == 9
    assert read_all(storage, out("rest.bin")) == b"keep this"


def test_put_replaces_an_existing_file(storage):
    storage.put(out("f.txt"), b"first version, longer")
    storage.put(out("f.txt"), b"second")
    assert read_all(storage, out("f.txt")) == b"second"
    assert storage.size(out("f.txt")) == 6


def test_an_empty_file(storage):
    assert storage.put(out("empty"), b"") == 0
    assert storage.exists(out("empty"))
    assert storage.size(out("empty")) == 0
    assert read_all(storage, out("empty")) == b""


def test_names_with_spaces_unicode_and_reserved_characters(storage):
    for name in ["my file.csv", "résumé 100%.pdf", "a?b#c.txt", "日本語.json"]:
        uri = out(name)
        storage.put(uri, name.encode())
        assert read_all(storage, uri) == name.encode()
        assert storage.exists(uri)
    listed = {item.uri for item in storage.list(execution_prefix(NS, FLOW, EXECUTION))}
    assert listed == {out(name) for name in ["my file.csv", "résumé 100%.pdf", "a?b#c.txt", "日本語.json"]}


def test_the_stream_is_read_in_pieces(storage):
    storage.put(out("f"), bytes(range(256)) * 1000)
    with storage.get(out("f")) as stream:
        assert stream.read(10) == bytes(range(10))
        rest = stream.read()
    assert len(rest) == 256_000 - 10


def test_missing_files(storage):
    uri = out("missing.txt")
    assert not storage.exists(uri)
    with pytest.raises(StorageFileNotFound, match="missing.txt.*no such file"):
        storage.get(uri)
    with pytest.raises(StorageFileNotFound, match="missing.txt"):
        storage.size(uri)
    with pytest.raises(FileNotFoundError):
        storage.get(uri)
    assert storage.delete(uri) is False


def test_a_directory_is_not_a_file(storage):
    storage.put(out("f.txt"), b"x")
    directory = execution_prefix(NS, FLOW, EXECUTION).rstrip("/")
    assert not storage.exists(directory)
    with pytest.raises(StorageFileNotFound):
        storage.get(directory)
    with pytest.raises(StorageFileNotFound):
        storage.size(directory)


def test_a_reader_never_sees_a_partly_written_file(storage):
    uri = out("big.bin")
    seen = []
    source = PatternStream(2 * MiB, on_half=lambda: seen.append(storage.exists(uri)))
    storage.put(uri, source)
    assert seen == [False]
    assert storage.size(uri) == 2 * MiB


def test_read_bytes_is_bounded_and_download_copies(storage, tmp_path):
    storage.put(out("f"), b"x" * 100)
    assert storage.read_bytes(out("f"), 100) == b"x" * 100
    with pytest.raises(StorageError, match="larger than 99 bytes"):
        storage.read_bytes(out("f"), 99)
    assert storage.download(out("f"), tmp_path / "copy") == 100
    assert (tmp_path / "copy").read_bytes() == b"x" * 100


def test_text_is_refused_as_a_source(storage):
    with pytest.raises(TypeError, match="pathlib.Path"):
        storage.put(out("f"), "is this a path or content?")
    with pytest.raises(TypeError, match="binary mode"):
        storage.put(out("f"), io.StringIO("text"))
    assert not storage.exists(out("f"))


# --- listing and deleting ----------------------------------------------------------------------

def populate(storage) -> dict[str, bytes]:
    files = {
        out("b.csv"): b"bb",
        out("a.csv"): b"a",
        out("nested.json", task="load"): b"{}",
        input_file_uri(NS, FLOW, EXECUTION, "orders", "orders.csv"): b"1,2,3",
        out("other.csv", execution=OTHER_EXECUTION): b"other",
        namespace_file_uri(NS, "sql/query.sql"): b"select 1",
        namespace_file_uri("company.team2", "x.sql"): b"select 2",
        task_file_uri("company.team2", FLOW, EXECUTION, "extract", TASK_RUN, "lookalike.csv"): b"no",
    }
    for uri, content in files.items():
        storage.put(uri, content)
    return files


def test_list_under_a_prefix_at_any_depth_in_order(storage):
    files = populate(storage)
    listed = storage.list(execution_prefix(NS, FLOW, EXECUTION))
    expected = sorted((uri for uri in files if uri.startswith(execution_prefix(NS, FLOW, EXECUTION))),
                      key=lambda uri: uri)
    assert [item.uri for item in listed] == expected
    assert {item.uri: item.size for item in listed}[out("b.csv")] == 2


def test_list_compares_whole_segments(storage):
    populate(storage)
    under_team = {item.uri for item in storage.list("kestra:///company/team")}
    assert under_team == {item.uri for item in storage.list("kestra:///company/team/")}
    assert not any("/company/team2/" in uri for uri in under_team)
    assert len(storage.list("kestra:///company")) == 8


def test_list_of_an_empty_or_unknown_prefix(storage):
    assert storage.list("kestra:///nothing/here") == []
    storage.put(out("f"), b"x")
    assert storage.list(out("f") + "/") == []  # a file is not a directory


def test_delete_one_file(storage):
    files = populate(storage)
    assert storage.delete(out("a.csv")) is True
    assert not storage.exists(out("a.csv"))
    assert storage.exists(out("b.csv"))
    assert storage.delete(out("a.csv")) is False
    assert len(storage.list("kestra:///company")) == len(files) - 1


def test_delete_an_execution_leaves_everything_else(storage):
    files = populate(storage)
    assert storage.delete_execution(NS, FLOW, EXECUTION) == 4
    assert storage.list(execution_prefix(NS, FLOW, EXECUTION)) == []
    remaining = {item.uri for item in storage.list("kestra:///company")}
    assert remaining == {uri for uri in files if not uri.startswith(execution_prefix(NS, FLOW, EXECUTION))}
    assert storage.delete_execution(NS, FLOW, EXECUTION) == 0


def test_delete_prefix_counts_files(storage):
    populate(storage)
    assert storage.delete_prefix("kestra:///company/team2/") == 2
    assert storage.delete_prefix("kestra:///company/team2/") == 0


# --- hostile URIs, on every operation ----------------------------------------------------------

HOSTILE = [
    "kestra:///company/../../../etc/passwd",
    "kestra:///company/%2e%2e/%2e%2e/etc/passwd",
    "kestra:///company/%252e%252e/%252e%252e/etc/passwd",
    "kestra:///company\\..\\..\\etc\\passwd",
    "kestra:///company/..%2f..%2fetc%2fpasswd",
    "/etc/passwd",
    "file:///etc/passwd",
    "kestra:///company/f\x00.txt",
    "kestra:///company//f.txt",
]


@pytest.mark.parametrize("uri", HOSTILE)
def test_hostile_uris_are_refused_by_every_operation(storage, uri, tmp_path):
    operations = {
        "put": lambda: storage.put(uri, b"pwned"),
        "get": lambda: storage.get(uri),
        "exists": lambda: storage.exists(uri),
        "size": lambda: storage.size(uri),
        "delete": lambda: storage.delete(uri),
        "list": lambda: storage.list(uri),
        "delete_prefix": lambda: storage.delete_prefix(uri),
    }
    for name, operation in operations.items():
        with pytest.raises(InvalidStorageURI) as refused:
            operation()
        assert str(refused.value).startswith(shown(uri) + " is not a valid storage URI"), name
    assert storage.list("kestra:///company") == []
    assert not any(path.read_bytes() == b"pwned" for path in tmp_path.rglob("*") if path.is_file())


# --- large files, bounded memory ---------------------------------------------------------------

@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> tuple[Path, str]:
    """A 50 MiB file of random bytes and its SHA-256."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as target:
        for _ in range(50):
            chunk = os.urandom(MiB)
            digest.update(chunk)
            target.write(chunk)
    return path, digest.hexdigest()


def peak_memory(action) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stream_digest(storage, uri) -> str:
    digest = hashlib.sha256()
    with storage.get(uri) as stream:
        while chunk := stream.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_a_large_file_from_a_path_in_bounded_memory(storage, big_file):
    path, expected = big_file
    bound = MEMORY_BOUND[storage.kind]
    assert bound < path.stat().st_size / 2  # the bound means something only well below the size
    size, peak = peak_memory(lambda: storage.put(out("big.bin"), path))
    assert size == 50 * MiB
    assert peak < bound, f"put held {peak / MiB:.1f} MiB"
    digest, peak = peak_memory(lambda: stream_digest(storage, out("big.bin")))
    assert digest == expected
    assert peak < bound, f"get held {peak / MiB:.1f} MiB"
    assert storage.size(out("big.bin")) == 50 * MiB
    with open(path, "rb") as stream:
        size, peak = peak_memory(lambda: storage.put(out("big-from-stream.bin"), stream))
    assert size == 50 * MiB
    assert peak < bound, f"put from an open file held {peak / MiB:.1f} MiB"
    assert stream_digest(storage, out("big-from-stream.bin")) == expected


def test_a_large_stream_of_unknown_length_in_bounded_memory(storage):
    source = PatternStream(50 * MiB)
    size, peak = peak_memory(lambda: storage.put(out("stream.bin"), source))
    assert size == 50 * MiB
    assert peak < MEMORY_BOUND[storage.kind], f"put held {peak / MiB:.1f} MiB"
    assert stream_digest(storage, out("stream.bin")) == source.digest.hexdigest()


# --- local directory only ----------------------------------------------------------------------

@pytest.fixture
def local(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def outside(tmp_path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_bytes(b"outside the storage")
    return directory


def test_files_are_under_the_root_by_key(local):
    local.put(out("f.csv"), b"x")
    assert (local.root / "company/team/etl/executions" / EXECUTION / "tasks/extract" / TASK_RUN / "f.csv").is_file()


def test_a_symlinked_directory_leading_out_is_refused(local, outside):
    (local.root / "company").mkdir()
    (local.root / "company" / "team").symlink_to(outside, target_is_directory=True)
    uri = "kestra:///company/team/secret.txt"
    for operation in (lambda: local.get(uri), lambda: local.exists(uri), lambda: local.size(uri),
                      lambda: local.put(uri, b"pwned"), lambda: local.delete(uri),
                      lambda: local.list("kestra:///company/team"),
                      lambda: local.delete_prefix("kestra:///company/team")):
        with pytest.raises(InvalidStorageURI, match="resolves outside the storage directory"):
            operation()
    assert (outside / "secret.txt").read_bytes() == b"outside the storage"


def test_a_symlinked_file_leading_out_is_refused_and_never_written_through(local, outside):
    (local.root / "company").mkdir()
    (local.root / "company" / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(InvalidStorageURI, match="resolves outside"):
        local.get("kestra:///company/link.txt")
    assert local.list("kestra:///company") == []  # links are not listed
    # a write replaces the link itself; the target is untouched
    local.put("kestra:///company/link.txt", b"new")
    assert (outside / "secret.txt").read_bytes() == b"outside the storage"
    assert local.get("kestra:///company/link.txt").read() == b"new"


def test_deleting_a_prefix_never_follows_links(local, outside):
    local.put("kestra:///company/team/kept/f.txt", b"x")
    (local.root / "company" / "team" / "escape").symlink_to(outside, target_is_directory=True)
    assert local.delete_prefix("kestra:///company/team") == 1
    assert (outside / "secret.txt").read_bytes() == b"outside the storage"
    assert not (local.root / "company").exists()


def test_a_link_loop_is_refused(local):
    (local.root / "company").mkdir()
    (local.root / "company" / "loop").symlink_to(local.root / "company" / "loop")
    with pytest.raises(InvalidStorageURI):
        local.get("kestra:///company/loop/f")


def test_the_staging_directory_is_not_addressable(local):
    local.put(out("f"), b"x")
    with pytest.raises(InvalidStorageURI, match="reserved"):
        local.put("kestra:///.staging/f", b"x")
    with pytest.raises(InvalidStorageURI, match="reserved"):
        local.list("kestra:///.staging")
    assert list((local.root / ".staging").iterdir()) == []  # nothing left behind


def test_a_fifo_is_not_served(local):
    (local.root / "company").mkdir()
    os.mkfifo(local.root / "company" / "pipe")
    with pytest.raises(StorageFileNotFound, match="not a regular file"):
        local.get("kestra:///company/pipe")
    assert not local.exists("kestra:///company/pipe")


def test_deleting_prunes_empty_directories(local):
    local.put(out("f"), b"x")
    local.put(namespace_file_uri(NS, "keep.sql"), b"x")
    local.delete_execution(NS, FLOW, EXECUTION)
    assert not (local.root / "company/team/etl").exists()
    assert (local.root / "company/team/_files/keep.sql").is_file()
    local.delete(namespace_file_uri(NS, "keep.sql"))
    assert sorted(p.name for p in local.root.iterdir()) == [".staging"]


def test_files_no_uri_can_name_are_not_listed(local):
    local.put(out("f"), b"x")
    directory = local.root / "company" / "team"
    (directory / "back\\slash").write_bytes(b"y")
    with open(os.path.join(os.fsencode(directory), b"caf\xe9.txt"), "wb") as latin1:  # not UTF-8
        latin1.write(b"z")
    assert [item.uri for item in local.list("kestra:///company")] == [out("f")]


def test_a_file_in_the_way_of_a_directory(local):
    local.put("kestra:///company/a", b"x")
    with pytest.raises(StorageError, match="is a file, not a directory"):
        local.put("kestra:///company/a/b", b"y")


def test_a_failed_write_leaves_nothing(local):
    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise OSError("the source broke")

    with pytest.raises(OSError, match="the source broke"):
        local.put(out("f"), Broken())
    assert not local.exists(out("f"))
    assert list((local.root / ".staging").iterdir()) == []


# --- S3 only -----------------------------------------------------------------------------------

def test_the_bucket_is_created_on_the_first_write(s3_endpoint):
    storage = make_s3(s3_endpoint)
    assert not storage.client.bucket_exists(storage.bucket)
    assert storage.list("kestra:///company") == []
    assert not storage.exists(out("f"))
    storage.put(out("f"), b"x")
    assert storage.client.bucket_exists(storage.bucket)
    # a second storage on the same bucket finds it there
    assert make_s3(s3_endpoint, storage.bucket).get(out("f")).read() == b"x"


def test_objects_no_uri_can_name_are_left_alone(s3_endpoint):
    storage = make_s3(s3_endpoint)
    storage.put(out("f"), b"x")
    storage.client.put_object(storage.bucket, "company/team/odd\\name", io.BytesIO(b"y"), 1)
    assert [item.uri for item in storage.list("kestra:///company")] == [out("f")]


def test_an_endpoint_url_sets_tls(s3_endpoint):
    storage = S3Storage(f"http://{s3_endpoint}", "harrier-url", "testing", "testing", region="us-east-1")
    assert (storage.endpoint, storage.secure) == (s3_endpoint, False)
    storage.put(out("f"), b"x")
    assert storage.exists(out("f"))
    with pytest.raises(StorageError, match="without a path"):
        S3Storage(f"http://{s3_endpoint}/bucket", "b")


def test_a_server_that_fails_names_the_uri_and_the_server(s3_endpoint):
    # TLS spoken to a plain-HTTP server: every request fails below S3.
    # (No retries: the client's own would only make the test slower.)
    broken = S3Storage(s3_endpoint, "harrier-broken", "testing", "testing", region="us-east-1", secure=True,
                       http_client=urllib3.PoolManager(retries=False, timeout=5))
    with pytest.raises(StorageError, match=f"{out('f')}' cannot be read: the storage server at {s3_endpoint} failed"):
        broken.get(out("f"))


# --- configuration -----------------------------------------------------------------------------

def test_get_storage_follows_the_settings(settings, tmp_path, s3_endpoint):
    settings.HARRIER_STORAGE = "local"
    settings.HARRIER_STORAGE_PATH = str(tmp_path / "configured")
    reset_storage()
    try:
        storage = get_storage()
        assert isinstance(storage, LocalStorage)
        assert storage.root == (tmp_path / "configured").resolve()
        assert get_storage() is storage
        settings.HARRIER_STORAGE = "s3"
        settings.HARRIER_S3_ENDPOINT = f"http://{s3_endpoint}"
        settings.HARRIER_S3_BUCKET = "harrier-configured"
        settings.HARRIER_S3_ACCESS_KEY = settings.HARRIER_S3_SECRET_KEY = "testing"
        settings.HARRIER_S3_REGION = "us-east-1"
        reset_storage()
        storage = get_storage()
        assert isinstance(storage, S3Storage)
        storage.put(out("f"), b"x")
        assert storage.size(out("f")) == 1
    finally:
        reset_storage()


def test_each_process_makes_its_own_storage(settings, tmp_path, monkeypatch):
    settings.HARRIER_STORAGE = "local"
    settings.HARRIER_STORAGE_PATH = str(tmp_path / "configured")
    reset_storage()
    try:
        parent = get_storage()
        pid = os.getpid()
        monkeypatch.setattr(os, "getpid", lambda: pid + 1)  # as in a child forked by the prefork pool
        child = get_storage()
        assert child is not parent
        assert get_storage() is child
    finally:
        reset_storage()

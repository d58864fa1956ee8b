"""Storage URIs: building Kestra's URIs, reading them back, refusing every way out of the root,
and the scope a task may read. Pure: no storage, no database."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from orchestrator.storage import (
    InvalidStorageURI,
    StorageError,
    StorageScopeError,
    StorageURI,
    check_scope,
    config_from_settings,
    execution_prefix,
    input_file_uri,
    namespace_file_uri,
    namespace_files_prefix,
    namespace_path,
    parse_prefix,
    parse_uri,
    task_file_uri,
)
from orchestrator.storage.uris import shown

EXECUTION = "4xU3n1mQq7T0aZ8bLcVdE2"
TASK_RUN = "1hG5kPq2Rs3Tu4Vw5Xy6Za"


# --- building ----------------------------------------------------------------------------------

def test_task_file_uri_has_kestra_shape():
    uri = task_file_uri("company.team", "my-flow", EXECUTION, "extract", TASK_RUN, "data.csv")
    assert uri == f"kestra:///company/team/my-flow/executions/{EXECUTION}/tasks/extract/{TASK_RUN}/data.csv"


def test_input_file_uri_has_kestra_shape():
    uri = input_file_uri("company.team", "my-flow", EXECUTION, "orders", "orders.json")
    assert uri == f"kestra:///company/team/my-flow/executions/{EXECUTION}/inputs/orders/orders.json"


def test_namespace_file_uri_keeps_its_directories():
    assert namespace_file_uri("company.team", "scripts/etl.py") == "kestra:///company/team/_files/scripts/etl.py"
    assert namespace_files_prefix("company.team") == "kestra:///company/team/_files/"


def test_execution_prefix_and_namespace_path():
    assert execution_prefix("a.b.c", "f", EXECUTION) == f"kestra:///a/b/c/f/executions/{EXECUTION}/"
    assert namespace_path("company.team.sub") == "company/team/sub"


@pytest.mark.parametrize("name, encoded", [
    ("my file.csv", "my%20file.csv"),
    ("100%.txt", "100%25.txt"),
    ("résumé.pdf", "r%C3%A9sum%C3%A9.pdf"),
    ("a?b#c.txt", "a%3Fb%23c.txt"),
    ("x+y=z@1.csv", "x+y=z@1.csv"),
])
def test_file_names_are_encoded_and_read_back(name, encoded):
    uri = task_file_uri("company", "f", EXECUTION, "t", TASK_RUN, name)
    assert uri.endswith("/" + encoded)
    location = parse_uri(uri)
    assert location.name == name
    assert location.uri == uri


def test_parse_gives_the_key_and_round_trips():
    location = parse_uri("kestra:///company/team/f/executions/e/tasks/t/r/my%20file.csv")
    assert location.key == "company/team/f/executions/e/tasks/t/r/my file.csv"
    assert StorageURI.from_key(location.key) == location
    assert str(location) == "kestra:///company/team/f/executions/e/tasks/t/r/my%20file.csv"


def test_a_prefix_may_end_with_a_slash():
    assert parse_prefix("kestra:///company/team/") == parse_prefix("kestra:///company/team")
    with pytest.raises(InvalidStorageURI, match="trailing"):
        parse_uri("kestra:///company/team/")


def test_is_under_compares_whole_segments():
    assert parse_uri("kestra:///a/b/c").is_under(parse_prefix("kestra:///a/b"))
    assert not parse_uri("kestra:///a/bc/d").is_under(parse_prefix("kestra:///a/b"))
    assert not parse_prefix("kestra:///a/b").is_under(parse_prefix("kestra:///a/b"))


@pytest.mark.parametrize("namespace", ["", "company..team", ".company", "company.", "company._files",
                                       "a/b", "a\\b", "..", "a.%2e%2e"])
def test_bad_namespaces_are_refused(namespace):
    with pytest.raises(InvalidStorageURI):
        namespace_path(namespace)


@pytest.mark.parametrize("part", ["..", ".", "a/b", "/etc/passwd", "a\\b", "", "a\x00b", "%2e%2e", "%252e%252e",
                                  "x" * 256])
def test_builders_refuse_hostile_ids_and_names(part):
    with pytest.raises(InvalidStorageURI):
        task_file_uri("company", "f", EXECUTION, "t", TASK_RUN, part)
    with pytest.raises(InvalidStorageURI):
        task_file_uri("company", part, EXECUTION, "t", TASK_RUN, "ok.txt")
    with pytest.raises(InvalidStorageURI):
        input_file_uri("company", "f", part, "i", "ok.txt")


@pytest.mark.parametrize("path", ["../secrets", "a/../../b", "/etc/passwd", "a//b", "a/", "a\\..\\b", "%2e%2e/x",
                                  "a/%2F/b", "nul\x00.txt"])
def test_namespace_file_paths_cannot_climb_out(path):
    with pytest.raises(InvalidStorageURI):
        namespace_file_uri("company", path)


# --- hostile URIs ------------------------------------------------------------------------------

TRAVERSALS = [
    # plain and encoded dot segments
    ("kestra:///a/../b", "'..' segments"),
    ("kestra:///../etc/passwd", "'..' segments"),
    ("kestra:///a/./b", "'.' segments"),
    ("kestra:///a/..", "'..' segments"),
    ("kestra:///a/%2e%2e/b", "'..' segments"),
    ("kestra:///a/%2E%2E/b", "'..' segments"),
    ("kestra:///a/.%2e/b", "'..' segments"),
    ("kestra:///a/%2e./b", "'..' segments"),
    ("kestra:///a/%2e/b", "'.' segments"),
    # double and triple encoding
    ("kestra:///a/%252e%252e/b", "repeated percent-encoding"),
    ("kestra:///a/%252E%252E/b", "repeated percent-encoding"),
    ("kestra:///a/%25252e%25252e/b", "repeated percent-encoding"),
    ("kestra:///a/%252f..%252f/b", "repeated percent-encoding"),
    ("kestra:///a/..%255c..%255cb", "repeated percent-encoding"),
    ("kestra:///a/%2500", "repeated percent-encoding"),
    # separators hidden in a segment
    ("kestra:///a/%2f..%2fb", "encoded '/'"),
    ("kestra:///a/%2F", "encoded '/'"),
    ("kestra:///a/..%2f..%2fetc", "encoded '/'"),
    ("kestra:///a\\..\\b", "backslashes"),
    ("kestra:///a/%5c..%5cb", "backslashes"),
    ("kestra:///a/..%5c..%5cetc", "backslashes"),
    # absolute paths and other schemes
    ("/etc/passwd", "absolute path"),
    ("//etc/passwd", "absolute path"),
    ("kestra:////etc/passwd", "empty path segment"),
    ("file:///etc/passwd", "scheme file:"),
    ("s3://bucket/key", "scheme s3:"),
    ("http://169.254.169.254/latest/meta-data", "scheme http:"),
    ("KESTRA:///a/b", "start with kestra:///"),
    ("kestra://host/a/b", "names a host"),
    ("kestra:/a/b", "start with kestra:///"),
    ("etc/passwd", "start with kestra:///"),
    ("C:\\Windows\\win.ini", "scheme C:"),
    ("", "start with kestra:///"),
    # NUL bytes and control characters
    ("kestra:///a/b\x00.txt", "NUL"),
    ("kestra:///a/b%00.txt", "NUL"),
    ("kestra:///a/b%0a.txt", "control character"),
    ("kestra:///a/b\n.txt", "control character"),
    # empty segments
    ("kestra:///", "names no file"),
    ("kestra:///a//b", "empty path segment"),
    ("kestra:///a/b/", "empty path segment"),
    # invalid UTF-8 (overlong encodings of '.' and '/')
    ("kestra:///a/%c0%ae%c0%ae/b", "not valid UTF-8"),
    ("kestra:///a/%c0%af", "not valid UTF-8"),
    ("kestra:///a/%ff", "not valid UTF-8"),
    # query and fragment
    ("kestra:///a/b?x=../../c", "query"),
    ("kestra:///a/b#../c", "fragment"),
    # too long
    ("kestra:///a/" + "x" * 256, "longer than 255 bytes"),
    ("kestra:///" + "/".join(["abcdefghi"] * 110), "longer than 1024 bytes"),
]


@pytest.mark.parametrize("uri, reason", TRAVERSALS)
def test_hostile_uris_are_refused_with_the_uri_and_the_reason(uri, reason):
    with pytest.raises(InvalidStorageURI) as refused:
        parse_uri(uri)
    message = str(refused.value)
    assert reason in message
    assert message.startswith(shown(uri))


@pytest.mark.parametrize("uri, reason", TRAVERSALS)
def test_hostile_uris_are_refused_as_prefixes_too(uri, reason):
    if uri.endswith("/b/") or uri == "kestra:///":
        return  # a trailing slash is how a prefix is written; the bare root is refused below
    with pytest.raises(InvalidStorageURI):
        parse_prefix(uri)


def test_the_root_is_not_a_prefix():
    with pytest.raises(InvalidStorageURI, match="names no directory"):
        parse_prefix("kestra:///")


@pytest.mark.parametrize("value", [None, 42, b"kestra:///a", ["kestra:///a"]])
def test_non_text_is_refused(value):
    with pytest.raises(InvalidStorageURI, match="expected text"):
        parse_uri(value)


def test_a_name_that_is_not_utf8_is_refused():
    with pytest.raises(InvalidStorageURI, match="not valid UTF-8"):
        StorageURI.from_key("company/caf\udce9.txt")  # how os.listdir shows a Latin-1 name


def test_a_checked_location_cannot_be_made_unchecked():
    with pytest.raises(InvalidStorageURI):
        StorageURI(("a", "..", "b"))
    with pytest.raises(InvalidStorageURI):
        StorageURI(())


def test_error_messages_are_bounded_and_escaped():
    with pytest.raises(InvalidStorageURI) as refused:
        parse_uri("kestra:///" + "a/" * 2000 + "..")
    assert len(str(refused.value)) < 400
    with pytest.raises(InvalidStorageURI) as refused:
        parse_uri("kestra:///a/\x1b[31mred")
    assert "\x1b" not in str(refused.value)


def test_invalid_uris_are_value_errors_and_storage_errors():
    with pytest.raises(ValueError):
        parse_uri("kestra:///a/../b")
    with pytest.raises(StorageError):
        parse_uri("kestra:///a/../b")


# --- scope -------------------------------------------------------------------------------------

OWN = task_file_uri("company.team", "etl", EXECUTION, "extract", TASK_RUN, "out.csv")


def test_a_task_reads_its_own_execution_files():
    assert check_scope(OWN, "company.team", "etl", EXECUTION) == parse_uri(OWN)
    own_input = input_file_uri("company.team", "etl", EXECUTION, "orders", "orders.csv")
    assert check_scope(own_input, "company.team", "etl", EXECUTION).name == "orders.csv"


def test_a_task_reads_its_namespace_files():
    uri = namespace_file_uri("company.team", "sql/query.sql")
    assert check_scope(uri, "company.team", "etl", EXECUTION).key == "company/team/_files/sql/query.sql"


@pytest.mark.parametrize("uri", [
    task_file_uri("company.team", "etl", "OtherExecution000000000", "extract", TASK_RUN, "out.csv"),
    task_file_uri("company.team", "other-flow", EXECUTION, "extract", TASK_RUN, "out.csv"),
    task_file_uri("company.other", "etl", EXECUTION, "extract", TASK_RUN, "out.csv"),
    task_file_uri("company.team2", "etl", EXECUTION, "extract", TASK_RUN, "out.csv"),
    namespace_file_uri("company", "shared.sql"),
    namespace_file_uri("company.team.sub", "child.sql"),
    namespace_file_uri("company.team2", "x.sql"),
    f"kestra:///company/team/etl/executions/{EXECUTION}0/tasks/t/r/f.csv",
    "kestra:///company/team/etl/executions",
    f"kestra:///company/team/etl/executions/{EXECUTION}",
    "kestra:///company/team/_files",
    "kestra:///company/team/secrets.txt",
])
def test_a_task_cannot_read_outside_its_scope(uri):
    with pytest.raises(StorageScopeError) as refused:
        check_scope(uri, "company.team", "etl", EXECUTION)
    message = str(refused.value)
    assert uri in message
    assert f"kestra:///company/team/etl/executions/{EXECUTION}/" in message
    assert "kestra:///company/team/_files/" in message


@pytest.mark.parametrize("uri", ["kestra:///company/team/etl/executions/%2e%2e/x",
                                 f"kestra:///company/team/etl/executions/{EXECUTION}/../../other/f",
                                 f"kestra:///company/team/etl/executions/{EXECUTION}/%252e%252e/f"])
def test_scope_checks_refuse_traversal_before_comparing(uri):
    with pytest.raises(InvalidStorageURI):
        check_scope(uri, "company.team", "etl", EXECUTION)


def test_scope_errors_are_permission_errors():
    with pytest.raises(PermissionError):
        check_scope("kestra:///elsewhere/f.csv", "company.team", "etl", EXECUTION)


# --- settings ----------------------------------------------------------------------------------

def settings(**values):
    return SimpleNamespace(**{"HARRIER_STORAGE_PATH": "/srv/storage", **values})


def test_local_is_the_default():
    config = config_from_settings(settings())
    assert (config.kind, config.path) == ("local", "/srv/storage")


def test_s3_settings_are_read_and_the_secret_not_shown():
    config = config_from_settings(settings(
        HARRIER_STORAGE="s3", HARRIER_S3_ENDPOINT="minio:9000", HARRIER_S3_BUCKET="harrier",
        HARRIER_S3_ACCESS_KEY="key", HARRIER_S3_SECRET_KEY="very-secret", HARRIER_S3_REGION="eu-west-1",
        HARRIER_S3_SECURE=False))
    assert (config.kind, config.endpoint, config.bucket, config.region, config.secure) == (
        "s3", "minio:9000", "harrier", "eu-west-1", False)
    assert "very-secret" not in repr(config)


def test_url_forms_of_the_storage_setting():
    assert config_from_settings(settings(HARRIER_STORAGE="local:///data/files")).path == "/data/files"
    config = config_from_settings(settings(HARRIER_STORAGE="s3://my-bucket"))
    assert (config.kind, config.bucket) == ("s3", "my-bucket")


def test_an_unknown_storage_is_refused():
    with pytest.raises(StorageError, match="HARRIER_STORAGE='gcs'"):
        config_from_settings(settings(HARRIER_STORAGE="gcs"))


def test_s3_without_a_bucket_is_refused():
    from orchestrator.storage import open_storage

    with pytest.raises(StorageError, match="HARRIER_S3_BUCKET"):
        open_storage(config_from_settings(settings(HARRIER_STORAGE="s3", HARRIER_S3_ENDPOINT="minio:9000")))

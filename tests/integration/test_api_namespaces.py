"""Namespaces, their KV store and their files, the plugin catalogue, and CORS, over HTTP.

The KV store and the files are the internal storage's, the very ones flows use (orchestrator/kv.py,
`namespaceFiles`), so what the API writes is read back through that code."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from orchestrator import kv
from orchestrator.storage import get_storage, namespace_file_uri
from tests.integration.test_api import HELLO, deploy

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ENDPOINTS = [
    ("get", "/api/v1/namespaces/search"), ("get", "/api/v1/namespaces/ns"), ("get", "/api/v1/namespaces/ns/kv"),
    ("delete", "/api/v1/namespaces/ns/kv"), ("get", "/api/v1/namespaces/ns/kv/k"), ("put", "/api/v1/namespaces/ns/kv/k"),
    ("delete", "/api/v1/namespaces/ns/kv/k"), ("get", "/api/v1/namespaces/ns/files?path=/a"),
    ("post", "/api/v1/namespaces/ns/files?path=/a"), ("put", "/api/v1/namespaces/ns/files?from=/a&to=/b"),
    ("delete", "/api/v1/namespaces/ns/files?path=/a"), ("get", "/api/v1/namespaces/ns/files/directory"),
    ("get", "/api/v1/namespaces/ns/files/stats"), ("get", "/api/v1/namespaces/ns/files/search"),
    ("get", "/api/v1/namespaces/ns/files/export"), ("get", "/api/v1/plugins"),
    ("get", "/api/v1/plugins/io.kestra.plugin.core.log.Log"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_namespace_endpoints_refuse_an_anonymous_client(method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert response.json() == {"message": "Authentication credentials were not provided."}


def test_a_user_who_is_not_staff_cannot_change_kv_or_files(reader, namespace):
    assert reader.put(f"/api/v1/namespaces/{namespace}/kv/k", '"v"', content_type="application/json").status_code == 403
    assert reader.delete(f"/api/v1/namespaces/{namespace}/kv/k").status_code == 403
    response = reader.post(f"/api/v1/namespaces/{namespace}/files?path=/a.txt",
                           {"fileContent": SimpleUploadedFile("a.txt", b"x")}, format="multipart")
    assert response.status_code == 403
    assert reader.delete(f"/api/v1/namespaces/{namespace}/files?path=/a.txt").status_code == 403
    assert kv.KVStore(namespace).get("k") is None


# --- namespaces ------------------------------------------------------------------------------

def test_namespaces_are_those_of_the_flows_and_the_ones_above(staff, namespace):
    deploy(staff, HELLO, f"{namespace}.team.etl")
    response = staff.get("/api/v1/namespaces/search", {"q": namespace.upper(), "size": 2})
    assert response.status_code == 200
    assert response.json() == {"results": [{"id": namespace, "disabled": False},
                                           {"id": f"{namespace}.team", "disabled": False}], "total": 3}
    second = staff.get("/api/v1/namespaces/search", {"q": namespace, "size": 2, "page": 2}).json()
    assert [item["id"] for item in second["results"]] == [f"{namespace}.team.etl"]
    newest_first = staff.get("/api/v1/namespaces/search", {"q": namespace, "sort": "id:desc"}).json()
    assert newest_first["results"][0]["id"] == f"{namespace}.team.etl"
    assert staff.get("/api/v1/namespaces/search", {"sort": "size:asc"}).status_code == 400
    assert staff.get("/api/v1/namespaces/search", {"size": 0}).status_code == 400

    assert staff.get(f"/api/v1/namespaces/{namespace}.team").json() == {"id": f"{namespace}.team", "disabled": False}
    missing = staff.get(f"/api/v1/namespaces/{namespace}.other")
    assert missing.status_code == 404 and "no flow lives in it" in missing.json()["message"]
    staff.delete(f"/api/v1/flows/{namespace}.team.etl/hello")
    assert staff.get(f"/api/v1/namespaces/{namespace}").status_code == 404


# --- KV --------------------------------------------------------------------------------------

def put(client, namespace: str, key: str, body: str, content_type: str = "application/json", **headers):
    return client.put(f"/api/v1/namespaces/{namespace}/kv/{key}", body, content_type=content_type,
                      headers=headers)


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    ('"eu-west-1"', "application/json", ("STRING", "eu-west-1")),
    ("42", "application/json", ("NUMBER", 42)),
    ("-4.25", "application/json", ("NUMBER", -4.25)),
    ("true", "application/json", ("BOOLEAN", True)),
    ('{"a": [1, 2]}', "application/json", ("JSON", {"a": [1, 2]})),
    ("2024-05-01", "application/json", ("DATE", "2024-05-01")),
    ("2024-05-01T12:00:00+02:00", "application/json", ("DATETIME", "2024-05-01T10:00:00.000Z")),
    ("PT90M", "application/json", ("DURATION", "PT1H30M")),
    ("plain words", "text/plain", ("STRING", "plain words")),
])
def test_kv_values_keep_kestras_types(staff, namespace, body, content_type, expected):
    response = put(staff, namespace, "key", body, content_type)
    assert response.status_code == 200, response.content
    assert response.json()["type"] == expected[0]
    got = staff.get(f"/api/v1/namespaces/{namespace}/kv/key")
    assert got.status_code == 200
    assert (got.json()["type"], got.json()["value"]) == expected
    assert kv.KVStore(namespace).get("key").value == expected[1]  # what flows read


def test_kv_is_listed_with_metadata_expires_and_is_deleted(staff, namespace):
    assert put(staff, namespace, "b.cursor", "17", description="the last row").status_code == 200
    assert put(staff, namespace, "a.token", '"secret"', ttl="PT10M").status_code == 200
    listed = staff.get(f"/api/v1/namespaces/{namespace}/kv").json()
    assert [entry["key"] for entry in listed] == ["a.token", "b.cursor"]
    token, cursor = listed
    assert token["expirationDate"] is not None and cursor["expirationDate"] is None
    assert cursor["description"] == "the last row" and cursor["type"] == "NUMBER"
    assert set(cursor) >= {"key", "description", "creationDate", "updateDate", "expirationDate"}

    kv.KVStore(namespace).put("gone", "x", ttl="PT0.001S")
    expired = staff.get(f"/api/v1/namespaces/{namespace}/kv/gone")
    assert expired.status_code == 404 and "expired" in expired.json()["message"]

    assert staff.delete(f"/api/v1/namespaces/{namespace}/kv/b.cursor").json() is True
    assert staff.delete(f"/api/v1/namespaces/{namespace}/kv/b.cursor").json() is False
    assert staff.get(f"/api/v1/namespaces/{namespace}/kv/b.cursor").status_code == 404
    response = staff.delete(f"/api/v1/namespaces/{namespace}/kv", {"keys": ["a.token", "never"]}, format="json")
    assert response.json() == {"keys": ["a.token"]}
    assert staff.get(f"/api/v1/namespaces/{namespace}/kv").json() == []


@pytest.mark.parametrize(("key", "body", "headers", "content_type", "status", "message"), [
    ("my key", '"v"', {}, "application/json", 400, "is not valid"),
    ("k", "not json", {}, "application/json", 400, "not JSON"),
    ("k", "null", {}, "application/json", 400, "cannot be null"),
    ("k", "NaN", {}, "application/json", 400, "not a finite number"),
    ("k", "[" * 100_000, {}, "application/json", 400, "nested too deeply"),
    ("k", '"v"', {"ttl": "ten minutes"}, "application/json", 400, "ttl"),
    ("k", '"v"', {"ttl": "-PT5M"}, "application/json", 400, "not a positive duration"),
    ("k", '"v"', {}, "application/xml", 415, "Unsupported media type"),
    ("k", '"' + "x" * (kv.MAX_VALUE_BYTES + 100_000) + '"', {}, "application/json", 413, "limited to"),
])
def test_bad_kv_writes_are_refused_with_the_reason(staff, namespace, key, body, headers, content_type, status,
                                                   message):
    response = put(staff, namespace, key, body, content_type, **headers)
    assert response.status_code == status
    assert message in response.json()["message"]
    assert kv.KVStore(namespace).list() == []


def test_kv_refuses_bad_namespaces_and_reports_damaged_entries(staff, namespace):
    response = staff.get("/api/v1/namespaces/Not-A-Namespace/kv")
    assert response.status_code == 400 and "is not a namespace" in response.json()["message"]
    assert staff.get(f"/api/v1/namespaces/{namespace}/kv/bad%20key").status_code == 400
    get_storage().put(kv.kv_uri(namespace, "damaged"), b"not an entry")
    response = staff.get(f"/api/v1/namespaces/{namespace}/kv/damaged")
    assert response.status_code == 409
    assert staff.delete(f"/api/v1/namespaces/{namespace}/kv/damaged").json() is True


# --- namespace files -------------------------------------------------------------------------

def upload(client, namespace: str, path: str, content: bytes):
    return client.post(f"/api/v1/namespaces/{namespace}/files?path={path}",
                       {"fileContent": SimpleUploadedFile("upload.bin", content)}, format="multipart")


def listing(client, namespace: str, path: str = "/") -> list[tuple[str, str, int]]:
    response = client.get(f"/api/v1/namespaces/{namespace}/files/directory", {"path": path})
    assert response.status_code == 200, response.content
    return [(item["fileName"], item["type"], item["size"]) for item in response.json()]


def test_namespace_files_are_uploaded_listed_read_and_deleted(staff, namespace):
    response = upload(staff, namespace, "/scripts/etl.py", b"print('hi')\n")
    assert response.status_code == 200, response.content
    assert response.json()["fileName"] == "etl.py" and response.json()["size"] == 12
    assert upload(staff, namespace, "readme.md", b"# notes").status_code == 200
    # the store scripts' namespaceFiles read
    with get_storage().get(namespace_file_uri(namespace, "scripts/etl.py")) as stream:
        assert stream.read() == b"print('hi')\n"

    assert listing(staff, namespace) == [("readme.md", "File", 7), ("scripts", "Directory", 0)]
    assert listing(staff, namespace, "/scripts") == [("etl.py", "File", 12)]
    download = staff.get(f"/api/v1/namespaces/{namespace}/files", {"path": "/scripts/etl.py"})
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"print('hi')\n"
    assert 'filename="etl.py"' in download["Content-Disposition"]

    stats = staff.get(f"/api/v1/namespaces/{namespace}/files/stats", {"path": "/scripts"}).json()
    assert (stats["fileName"], stats["type"]) == ("scripts", "Directory")
    assert staff.get(f"/api/v1/namespaces/{namespace}/files/stats", {"path": "/readme.md"}).json()["size"] == 7
    assert staff.get(f"/api/v1/namespaces/{namespace}/files/stats").json()["type"] == "Directory"
    assert staff.get(f"/api/v1/namespaces/{namespace}/files/stats", {"path": "/nope"}).status_code == 404

    assert staff.delete(f"/api/v1/namespaces/{namespace}/files?path=/scripts").status_code == 204
    assert listing(staff, namespace) == [("readme.md", "File", 7)]
    assert staff.delete(f"/api/v1/namespaces/{namespace}/files?path=/scripts").status_code == 404
    assert staff.get(f"/api/v1/namespaces/{namespace}/files", {"path": "/scripts/etl.py"}).status_code == 404
    assert staff.get(f"/api/v1/namespaces/{namespace}/files/directory", {"path": "/scripts"}).status_code == 404


def test_namespace_files_and_directories_move(staff, namespace):
    upload(staff, namespace, "/a/one.txt", b"1")
    upload(staff, namespace, "/a/deep/two.txt", b"22")
    upload(staff, namespace, "/taken.txt", b"t")
    moved = staff.put(f"/api/v1/namespaces/{namespace}/files?from=/a&to=/b")
    assert moved.status_code == 204
    assert listing(staff, namespace) == [("b", "Directory", 0), ("taken.txt", "File", 1)]
    assert listing(staff, namespace, "/b/deep") == [("two.txt", "File", 2)]
    assert staff.put(f"/api/v1/namespaces/{namespace}/files?from=/b/one.txt&to=/taken.txt").status_code == 409
    assert staff.put(f"/api/v1/namespaces/{namespace}/files?from=/b&to=/b/inside").status_code == 400
    assert staff.put(f"/api/v1/namespaces/{namespace}/files?from=/none&to=/x").status_code == 404
    assert staff.put(f"/api/v1/namespaces/{namespace}/files?from=/b/one.txt&to=/one.txt").status_code == 204
    assert listing(staff, namespace, "/b") == [("deep", "Directory", 0)]


@pytest.mark.parametrize("path", ["/../escape.txt", "a/../../b", "//etc/passwd", "a\\b", "a/./b", "a//b",
                                  "%2e%2e/x", "a\x01b"])
def test_hostile_namespace_file_paths_are_refused(staff, namespace, path):
    response = upload(staff, namespace, path.replace("%", "%25"), b"x")
    assert response.status_code == 400, response.content
    assert response.json()["details"][0]["path"] == "path"
    assert staff.get(f"/api/v1/namespaces/{namespace}/files", {"path": path}).status_code == 400
    assert listing(staff, namespace) == []


def test_a_nul_in_a_path_and_a_file_where_a_directory_is_are_refused(staff, namespace):
    assert staff.get(f"/api/v1/namespaces/{namespace}/files", {"path": "a\x00b"}).status_code == 400
    upload(staff, namespace, "/dir/file.txt", b"x")
    response = upload(staff, namespace, "/dir", b"y")
    assert response.status_code == 409 and "is a directory" in response.json()["message"]
    response = upload(staff, namespace, "/dir/file.txt/below.txt", b"y")
    assert response.status_code == 409 and "is a file, not a directory" in response.json()["message"]
    assert staff.get(f"/api/v1/namespaces/{namespace}/files/directory", {"path": "/dir/file.txt"}).status_code == 400
    assert staff.post(f"/api/v1/namespaces/{namespace}/files?path=/x", {}, format="multipart").status_code == 400
    assert staff.get(f"/api/v1/namespaces/{namespace}/files").status_code == 400
    response = staff.get("/api/v1/namespaces/company._files/files/directory")
    assert response.status_code == 400 and "reserved" in response.json()["message"]


def test_an_oversized_namespace_file_is_refused(staff, namespace, settings):
    settings.HARRIER_MAX_UPLOAD_BYTES = 10_000
    response = upload(staff, namespace, "/big.bin", b"x" * 20_000)
    assert response.status_code == 413 and "larger than 10000 bytes" in response.json()["message"]
    assert listing(staff, namespace) == []


def test_namespace_files_are_searched_and_exported_as_a_zip(staff, namespace, monkeypatch):
    import io
    import zipfile

    from orchestrator.api import archives

    upload(staff, namespace, "/scripts/ETL.py", b"print(1)")
    upload(staff, namespace, "/data/rows.csv", b"a,b\n")
    found = staff.get(f"/api/v1/namespaces/{namespace}/files/search", {"q": "etl"})
    assert found.json() == ["/scripts/ETL.py"]
    assert staff.get(f"/api/v1/namespaces/{namespace}/files/search").json() == ["/data/rows.csv", "/scripts/ETL.py"]

    response = staff.get(f"/api/v1/namespaces/{namespace}/files/export")
    assert response.status_code == 200 and f'filename="{namespace}_files.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {name: archive.read(name) for name in archive.namelist()} == {"data/rows.csv": b"a,b\n",
                                                                          "scripts/ETL.py": b"print(1)"}
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 5)
    too_much = staff.get(f"/api/v1/namespaces/{namespace}/files/export")
    assert too_much.status_code == 413 and "download them one by one" in too_much.json()["message"]


# --- plugins ---------------------------------------------------------------------------------

def test_plugins_list_the_types_and_give_their_property_schemas(staff):
    catalogue = staff.get("/api/v1/plugins").json()
    assert len(catalogue) == 1
    tasks = {item["cls"]: item for item in catalogue[0]["tasks"]}
    assert tasks["io.kestra.plugin.core.log.Log"]["title"]
    assert "io.kestra.core.tasks.log.Log" in tasks["io.kestra.plugin.core.log.Log"]["aliases"]
    assert "io.kestra.plugin.core.trigger.Schedule" in {item["cls"] for item in catalogue[0]["triggers"]}
    assert "io.kestra.plugin.core.condition.DayWeek" in {item["cls"] for item in catalogue[0]["conditions"]}

    log = staff.get("/api/v1/plugins/io.kestra.core.tasks.log.Log").json()  # an alias names the type too
    assert log["cls"] == "io.kestra.plugin.core.log.Log" and log["kind"] == "task"
    assert "message" in log["schema"]["properties"] and "message" in log["schema"]["required"]
    schedule = staff.get("/api/v1/plugins/io.kestra.plugin.core.trigger.Schedule").json()
    assert "cron" in schedule["schema"]["properties"]
    condition = staff.get("/api/v1/plugins/io.kestra.plugin.core.condition.DayWeekCondition").json()
    assert condition["kind"] == "condition" and condition["schema"] is None
    missing = staff.get("/api/v1/plugins/io.kestra.plugin.core.log.Nope")
    assert missing.status_code == 404 and "GET /api/v1/plugins lists them" in missing.json()["message"]


# --- the OpenAPI document --------------------------------------------------------------------

def test_the_openapi_document_describes_the_namespace_endpoints(staff):
    from drf_spectacular.validation import validate_schema

    document = staff.get("/api/v1/openapi.json").json()
    validate_schema(document)
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()
                  if isinstance(op, dict) and "operationId" in op}
    assert {"importFlows", "bulkUpdateFlows", "updateFlowsInNamespace", "exportFlowsByQuery", "exportFlowsByIds",
            "searchNamespaces", "getNamespace", "listKeys", "getKeyValue", "setKeyValue", "deleteKeyValue",
            "deleteKeyValues", "getFileContent", "createNamespaceFile", "moveFileDirectory", "deleteFileDirectory",
            "listNamespaceDirectoryFiles", "getFileMetadatas", "searchNamespaceFiles", "exportNamespaceFiles",
            "listPlugins", "getPluginDocumentation"} <= operations


# --- CORS ------------------------------------------------------------------------------------

def test_cors_is_closed_by_default(staff):
    response = staff.get("/api/v1/plugins", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
    preflight = APIClient().options("/api/v1/plugins", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "PUT"})
    assert "Access-Control-Allow-Origin" not in preflight


def test_cors_opens_for_the_configured_origins_only(staff, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://ui.example.com"]
    allowed = staff.get("/api/v1/plugins", headers={"Origin": "https://ui.example.com"})
    assert allowed["Access-Control-Allow-Origin"] == "https://ui.example.com"
    foreign = staff.get("/api/v1/plugins", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in foreign
    preflight = APIClient().options("/api/v1/namespaces/ns/kv/k", headers={
        "Origin": "https://ui.example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type, ttl"})
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://ui.example.com"
    assert "ttl" in preflight["Access-Control-Allow-Headers"]
    admin = staff.get("/admin/login/", headers={"Origin": "https://ui.example.com"})
    assert "Access-Control-Allow-Origin" not in admin  # only the API answers other origins


def test_the_allowed_origins_come_from_the_environment():
    code = "import django; django.setup(); from django.conf import settings; print(settings.CORS_ALLOWED_ORIGINS)"
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin",
           "HARRIER_CORS_ALLOWED_ORIGINS": " https://a.example.com, https://b.example.com:8443 ,"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['https://a.example.com', 'https://b.example.com:8443']"


def test_namespace_grants_bound_what_a_member_sees_and_changes(staff, django_user_model, namespace):
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from orchestrator.models import NamespaceGrant

    user = django_user_model.objects.create_user("member")
    group = Group.objects.create(name="team")
    user.groups.add(group)
    mine, theirs = f"{namespace}.mine", f"{namespace}.theirs"
    NamespaceGrant.objects.create(group=group, namespace=mine, read=True)
    member = APIClient()
    member.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    deploy(staff, HELLO, mine)
    deploy(staff, HELLO, theirs)
    put(staff, mine, "k", '"v"')
    put(staff, theirs, "k", '"v"')

    found = member.get("/api/v1/namespaces/search", {"q": namespace}).json()
    assert [item["id"] for item in found["results"]] == [mine]
    assert member.get(f"/api/v1/namespaces/{theirs}").status_code == 403
    assert member.get(f"/api/v1/namespaces/{mine}/kv/k").json()["value"] == "v"
    assert member.get(f"/api/v1/namespaces/{theirs}/kv/k").status_code == 403
    assert put(member, mine, "k", '"changed"').status_code == 403  # read only
    assert member.get(f"/api/v1/namespaces/{theirs}/files/directory").status_code == 403

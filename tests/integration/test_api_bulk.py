"""Many flows at once over HTTP: import (a YAML file or a zip), the namespace-wide update CI/CD
pipelines use (`/flows/bulk`, `POST /flows/{namespace}`), and export as zips of YAML sources.
Hostile archives are refused whole, before anything is stored."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from orchestrator.models import Flow
from tests.harness import with_namespace
from tests.integration.test_api import YAML, deploy

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLOW = """
id: {id}
namespace: tests
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{message}"
"""

INVALID = """
id: broken
namespace: tests
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Nope
"""


def flow(namespace: str, flow_id: str, message: str = "hi") -> str:
    return with_namespace(FLOW.format(id=flow_id, message=message), namespace)


def zip_of(files: dict[str, str | bytes], link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def upload(client, name: str, content: bytes, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return client.post(f"/api/v1/flows/import?{query}", {"fileUpload": SimpleUploadedFile(name, content)},
                       format="multipart")


def live(namespace: str) -> dict[str, int]:
    return dict(Flow.objects.filter(namespace=namespace, deleted=False).values_list("flow_id", "revision"))


ENDPOINTS = [("post", "/api/v1/flows/import"), ("post", "/api/v1/flows/bulk"), ("post", "/api/v1/flows/ns"),
             ("get", "/api/v1/flows/export/by-query"), ("post", "/api/v1/flows/export/by-ids")]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_bulk_endpoints_refuse_an_anonymous_client(method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert response.json() == {"message": "Authentication credentials were not provided."}


def test_a_user_who_is_not_staff_cannot_import_or_replace_flows(reader, namespace):
    assert upload(reader, "flows.yaml", flow(namespace, "a").encode()).status_code == 403
    assert reader.post(f"/api/v1/flows/bulk?namespace={namespace}", flow(namespace, "a"),
                       content_type=YAML).status_code == 403
    assert reader.post(f"/api/v1/flows/{namespace}", flow(namespace, "a"), content_type=YAML).status_code == 403
    assert live(namespace) == {}


def test_a_multi_document_yaml_file_imports_its_valid_flows_and_names_the_refused_ones(staff, namespace):
    body = "\n---\n".join([flow(namespace, "one"), with_namespace(INVALID, namespace), flow(namespace, "two")])
    response = upload(staff, "flows.yaml", body.encode())
    assert response.status_code == 200, response.content
    assert response.json() == ["1"]
    assert live(namespace) == {"one": 1, "two": 1}


def test_fail_on_error_imports_nothing_and_says_why(staff, namespace):
    archive = zip_of({"good.yaml": flow(namespace, "good"), "bad.yml": with_namespace(INVALID, namespace),
                      "notes.txt": "not a flow"})
    response = upload(staff, "flows.zip", archive, failOnError="true")
    assert response.status_code == 400
    body = response.json()
    assert "nothing was imported" in body["message"]
    paths = {detail["path"] for detail in body["details"]}
    assert "bad.yml: tasks[0].type" in paths and "notes.txt" in paths
    assert any("not a .yml or .yaml file" in detail["message"] for detail in body["details"])
    assert live(namespace) == {}


def test_a_zip_imports_its_yaml_files_and_updates_existing_flows(staff, namespace):
    deploy(staff, flow(namespace, "kept", "old"), namespace)
    archive = zip_of({"team/kept.yaml": flow(namespace, "kept", "new"), "team/added.yml": flow(namespace, "added"),
                      "team/": ""})
    response = upload(staff, "export.zip", archive)
    assert response.status_code == 200 and response.json() == []
    assert live(namespace) == {"kept": 2, "added": 1}


@pytest.mark.parametrize("entry", ["../escape.yaml", "/etc/flow.yaml", "a/../../b.yaml", "C:/flow.yaml",
                                   "dir\\flow.yaml"])
def test_an_archive_with_a_path_trick_is_refused_whole(staff, namespace, entry):
    archive = zip_of({"fine.yaml": flow(namespace, "fine"), entry: flow(namespace, "trick")})
    response = upload(staff, "flows.zip", archive)
    assert response.status_code == 400
    assert "not a plain relative file name" in response.json()["message"]
    assert live(namespace) == {}


def test_an_archive_with_a_symbolic_link_is_refused_whole(staff, namespace):
    response = upload(staff, "flows.zip", zip_of({"fine.yaml": flow(namespace, "fine")}, link="link.yaml"))
    assert response.status_code == 400 and "symbolic link" in response.json()["message"]
    assert live(namespace) == {}


def test_a_zip_bomb_is_refused_before_anything_is_stored(staff, namespace, monkeypatch):
    from orchestrator.api import archives

    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 200_000)
    # Each entry compresses to a few hundred bytes and inflates to 100 kB: together past the bound.
    padding = "# " + "x" * 100_000 + "\n"
    archive = zip_of({f"f{index}.yaml": flow(namespace, f"f{index}") + padding for index in range(5)})
    assert len(archive) < 10_000
    response = upload(staff, "flows.zip", archive)
    assert response.status_code == 413 and "inflates to more than" in response.json()["message"]
    assert live(namespace) == {}


def test_too_many_entries_and_damaged_archives_are_refused(staff, namespace, monkeypatch):
    from orchestrator.api import archives

    monkeypatch.setattr(archives, "MAX_ENTRIES", 3)
    many = zip_of({f"f{index}.yaml": flow(namespace, f"f{index}") for index in range(4)})
    assert upload(staff, "flows.zip", many).status_code == 413
    documents = "\n---\n".join(flow(namespace, f"d{index}") for index in range(4))
    assert upload(staff, "flows.yaml", documents.encode()).status_code == 413
    response = upload(staff, "flows.zip", b"PK\x03\x04 this is no archive")
    assert response.status_code == 400 and "not a readable zip" in response.json()["message"]
    assert upload(staff, "flows.yaml", b"\xff\xfe not utf-8").status_code == 400
    assert staff.post("/api/v1/flows/import", {}, format="multipart").status_code == 400
    assert live(namespace) == {}


def test_an_oversized_entry_is_refused_alone(staff, namespace, settings):
    settings.HARRIER_MAX_FLOW_BYTES = 2000
    archive = zip_of({"small.yaml": flow(namespace, "small"), "big.yaml": flow(namespace, "big") + "#" * 5000})
    response = upload(staff, "flows.zip", archive)
    assert response.status_code == 200 and response.json() == ["big.yaml"]
    assert live(namespace) == {"small": 1}


def test_bulk_replaces_a_namespace_and_deletes_what_the_body_leaves_out(staff, namespace):
    deploy(staff, flow(namespace, "stays", "old"), namespace)
    deploy(staff, flow(namespace, "goes"), namespace)
    other = f"{namespace}x"
    deploy(staff, flow(other, "elsewhere"), other)
    body = "\n---\n".join([flow(namespace, "stays", "new"), flow(namespace, "added")])
    response = staff.post(f"/api/v1/flows/bulk?namespace={namespace}", body, content_type=YAML)
    assert response.status_code == 200, response.content
    answered = {(item["id"], item["deleted"]) for item in response.json()}
    assert answered == {("goes", True), ("stays", False), ("added", False)}
    assert live(namespace) == {"stays": 2, "added": 1}
    assert live(other) == {"elsewhere": 1}


def test_bulk_without_delete_keeps_the_other_flows(staff, namespace):
    deploy(staff, flow(namespace, "kept"), namespace)
    response = staff.post(f"/api/v1/flows/bulk?namespace={namespace}&delete=false", flow(namespace, "added"),
                          content_type=YAML)
    assert response.status_code == 200
    assert live(namespace) == {"kept": 1, "added": 1}


def test_bulk_changes_nothing_when_one_flow_is_refused(staff, namespace):
    deploy(staff, flow(namespace, "kept"), namespace)
    body = "\n---\n".join([flow(namespace, "added"), with_namespace(INVALID, namespace)])
    response = staff.post(f"/api/v1/flows/bulk?namespace={namespace}", body, content_type=YAML)
    assert response.status_code == 400
    assert response.json()["details"][0]["path"] == "[1]: tasks[0].type"
    assert live(namespace) == {"kept": 1}
    twice = "\n---\n".join([flow(namespace, "same"), flow(namespace, "same", "again")])
    response = staff.post(f"/api/v1/flows/bulk?namespace={namespace}", twice, content_type=YAML)
    assert response.status_code == 400 and "also given by [0]" in response.json()["details"][0]["message"]
    outside = flow(f"{namespace}.child", "nested")
    response = staff.post(f"/api/v1/flows/bulk?namespace={namespace}", outside, content_type=YAML)
    assert response.status_code == 400 and response.json()["details"][0]["path"] == "[0]: namespace"
    assert live(namespace) == {"kept": 1}


def test_bulk_needs_a_namespace_to_delete_and_may_allow_children(staff, namespace):
    response = staff.post("/api/v1/flows/bulk", flow(namespace, "a"), content_type=YAML)
    assert response.status_code == 400 and "delete=true needs a namespace" in response.json()["message"]
    child = f"{namespace}.child"
    response = staff.post(f"/api/v1/flows/bulk?namespace={namespace}&allowNamespaceChild=true&delete=false",
                          flow(child, "nested"), content_type=YAML)
    assert response.status_code == 200
    assert live(child) == {"nested": 1}
    assert staff.post("/api/v1/flows/bulk?delete=maybe", flow(namespace, "a"),
                      content_type=YAML).status_code == 400


def test_post_on_a_namespace_replaces_its_flows_as_kestra_deploys_them(staff, namespace):
    deploy(staff, flow(namespace, "old"), namespace)
    response = staff.post(f"/api/v1/flows/{namespace}", flow(namespace, "new"), content_type=YAML)
    assert response.status_code == 200
    assert live(namespace) == {"new": 1}
    assert [item["id"] for item in staff.get(f"/api/v1/flows/{namespace}").json()] == ["new"]


def test_export_by_query_and_by_ids_answer_zips_of_the_sources(staff, namespace):
    sources = {name: flow(namespace, name) for name in ("alpha", "beta")}
    for source in sources.values():
        deploy(staff, source, namespace)
    deploy(staff, flow(f"{namespace}.sub", "gamma"), f"{namespace}.sub")

    response = staff.get(f"/api/v1/flows/export/by-query?namespace={namespace}")
    assert response.status_code == 200 and 'filename="flows.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == [f"{namespace}-alpha.yml", f"{namespace}-beta.yml",
                                          f"{namespace}.sub-gamma.yml"]
    assert archive.read(f"{namespace}-alpha.yml").decode() == sources["alpha"]

    response = staff.post("/api/v1/flows/export/by-ids", [{"namespace": namespace, "id": "beta"}], format="json")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == [f"{namespace}.beta.yaml"]

    missing = staff.post("/api/v1/flows/export/by-ids", [{"namespace": namespace, "id": "nope"}], format="json")
    assert missing.status_code == 404 and "nope does not exist" in missing.json()["message"]
    assert staff.post("/api/v1/flows/export/by-ids", {"id": "x"}, format="json").status_code == 400
    assert staff.post("/api/v1/flows/export/by-ids", [{"id": 3}], format="json").status_code == 400
    nul = staff.post("/api/v1/flows/export/by-ids", '[{"namespace": "a\\u0000", "id": "x"}]',
                     content_type="application/json")
    assert nul.status_code == 400 and "without NUL" in nul.json()["details"][0]["message"]
    surrogate = staff.post("/api/v1/flows/export/by-ids", '[{"namespace": "a", "id": "\\ud800"}]',
                           content_type="application/json")
    assert surrogate.status_code == 400


def test_an_exported_zip_imports_back(staff, namespace):
    deploy(staff, flow(namespace, "round"), namespace)
    response = staff.get(f"/api/v1/flows/export/by-query?namespace={namespace}")
    exported = b"".join(response.streaming_content)
    staff.delete(f"/api/v1/flows/{namespace}/round")
    assert live(namespace) == {}
    assert upload(staff, "flows.zip", exported).json() == []
    assert live(namespace) == {"round": 2}


def test_namespace_grants_bound_what_a_member_imports_replaces_and_exports(staff, django_user_model, namespace):
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from orchestrator.models import NamespaceGrant

    user = django_user_model.objects.create_user("member")
    group = Group.objects.create(name="team")
    user.groups.add(group)
    NamespaceGrant.objects.create(group=group, namespace=f"{namespace}.mine", write=True)
    member = APIClient()
    member.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    mine, theirs = f"{namespace}.mine", f"{namespace}.theirs"
    deploy(staff, flow(theirs, "secret"), theirs)

    assert upload(member, "flows.yaml", flow(mine, "a").encode()).json() == []
    both = "\n---\n".join([flow(mine, "b"), flow(theirs, "c")])
    assert upload(member, "flows.yaml", both.encode()).status_code == 403
    assert member.post(f"/api/v1/flows/bulk?namespace={theirs}", flow(theirs, "c"),
                       content_type=YAML).status_code == 403
    assert member.post(f"/api/v1/flows/{theirs}", flow(theirs, "c"), content_type=YAML).status_code == 403
    assert live(mine) == {"a": 1} and live(theirs) == {"secret": 1}

    exported = member.get(f"/api/v1/flows/export/by-query?namespace={namespace}")
    assert zipfile.ZipFile(io.BytesIO(b"".join(exported.streaming_content))).namelist() == [f"{mine}-a.yml"]
    hidden = member.post("/api/v1/flows/export/by-ids", [{"namespace": theirs, "id": "secret"}], format="json")
    assert hidden.status_code == 404


def test_an_oversized_upload_is_refused_before_it_is_read(staff, namespace, monkeypatch):
    from orchestrator.api import archives

    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 1000)
    response = upload(staff, "flows.yaml", flow(namespace, "big").encode() + b"#" * 100_000)
    assert response.status_code == 413 and "The upload is larger than" in response.json()["message"]
    assert live(namespace) == {}

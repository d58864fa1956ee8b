"""The files of an execution over the API: download, size and preview, on the local-disk and the
S3 storage, and every path that is not the execution's own refused with the reason."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from orchestrator.storage import get_storage, namespace_file_uri, reset_storage, task_file_uri
from tests.integration.test_api import deploy, ended
from tests.integration.test_storage import s3_endpoint  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CSV = "id,name\n1,ada\n2,grace\n3,linus\n"

REPORT = """
id: report
namespace: tests
inputs:
  - id: data
    type: FILE
tasks:
  - id: upper
    type: io.kestra.plugin.core.storage.Write
    content: "{{ read(inputs.data) | upper }}"
    extension: .csv
"""

FILE_ENDPOINTS = ["/api/v1/executions/e1/file", "/api/v1/executions/e1/file/metas",
                  "/api/v1/executions/e1/file/preview"]


@pytest.mark.parametrize("path", FILE_ENDPOINTS)
def test_the_file_endpoints_refuse_an_anonymous_client(path):
    response = APIClient().get(path, {"path": "kestra:///tests/report/executions/e1/inputs/data/a.csv"})
    assert response.status_code == 401


@pytest.fixture
def report(cluster, staff, namespace):
    """An ended execution of REPORT with its input file and its output file."""
    deploy(staff, REPORT, namespace)
    upload = SimpleUploadedFile("people.csv", CSV.encode(), content_type="text/csv")
    response = staff.post(f"/api/v1/executions/{namespace}/report", {"data": upload}, format="multipart")
    assert response.status_code == 200, response.content
    execution = ended(response.json()["id"])
    assert execution.state == "SUCCESS"
    run = execution.task_runs.get(task_id="upper")
    return execution, execution.inputs["data"], run.outputs["uri"]


def download(client, execution_id: str, uri: str, what: str = ""):
    return client.get(f"/api/v1/executions/{execution_id}/file{what}", {"path": uri})


def test_an_output_and_an_input_file_are_downloaded_measured_and_previewed(report, staff, reader):
    execution, input_uri, output_uri = report
    response = download(staff, execution.id, output_uri)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CSV.upper().encode()
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Length"] == str(len(CSV))
    assert response["Content-Disposition"] == 'attachment; filename="upper.csv"'

    response = download(staff, execution.id, input_uri)
    assert b"".join(response.streaming_content) == CSV.encode()
    assert response["Content-Disposition"] == 'attachment; filename="people.csv"'

    assert download(staff, execution.id, output_uri, "/metas").json() == {"size": len(CSV)}
    preview = staff.get(f"/api/v1/executions/{execution.id}/file/preview", {"path": input_uri, "maxRows": 2}).json()
    assert preview == {"extension": "csv", "type": "TEXT", "content": "id,name\n1,ada\n", "truncated": True}
    whole = staff.get(f"/api/v1/executions/{execution.id}/file/preview", {"path": input_uri}).json()
    assert whole["content"] == CSV and whole["truncated"] is False

    # a user without a grant on the namespace learns nothing of the execution
    refused = download(reader, execution.id, output_uri)
    assert refused.status_code == 404
    assert refused.json() == {"message": f"execution {execution.id} does not exist"}


def test_a_path_outside_the_execution_is_refused_with_the_reason(report, cluster, staff, namespace):
    execution, _, output_uri = report
    other = staff.post(f"/api/v1/executions/{namespace}/report",
                       {"data": SimpleUploadedFile("secret.csv", b"secret\n")}, format="multipart").json()
    other_uri = ended(other["id"]).inputs["data"]
    get_storage().put(namespace_file_uri(namespace, "shared.txt"), b"namespace file")

    for uri in (other_uri, namespace_file_uri(namespace, "shared.txt")):
        response = download(staff, execution.id, uri)
        assert response.status_code == 404
        assert f"is not a file of execution {execution.id}" in response.json()["message"]
    prefix = output_uri.split("/tasks/")[0]
    for uri, reason in [
        (prefix + "/../../../" + other["id"] + "/inputs/data/secret.csv", "'..' segments are not allowed"),
        (prefix + "/%2E%2E/x", "'..' segments are not allowed"),
        ("file:///etc/passwd", "the scheme file: is not allowed"),
        ("/etc/passwd", "an absolute path is not a storage URI"),
        (prefix + "/a%252F..%252Fb", "hides a path separator"),
    ]:
        response = download(staff, execution.id, uri)
        assert response.status_code == 400, uri
        assert reason in response.json()["message"]

    missing = download(staff, execution.id, prefix + "/tasks/upper/nothing.csv")
    assert missing.status_code == 404 and "does not exist" in missing.json()["message"]
    assert staff.get(f"/api/v1/executions/{execution.id}/file").status_code == 400
    unknown = download(staff, "nosuchexecution", output_uri, "/metas")
    assert unknown.status_code == 404 and unknown.json()["message"] == "execution nosuchexecution does not exist"


def test_a_preview_refuses_binary_and_unknown_encodings_and_bounds_its_rows(report, staff):
    execution, input_uri, _ = report
    binary = task_file_uri(execution.namespace, execution.flow_id, execution.id, "upper", "r1", "blob.bin")
    get_storage().put(binary, b"\x89PNG\x00\x01\x02")
    path = f"/api/v1/executions/{execution.id}/file/preview"
    assert staff.get(path, {"path": binary}).json()["message"].startswith("The file is not text")
    for encoding in ("klingon", "rot13", "zlib"):
        refused = staff.get(path, {"path": input_uri, "encoding": encoding})
        assert refused.status_code == 400 and f"encoding '{encoding}' is unknown or not a text encoding" in refused.json()["message"]
    too_many = staff.get(path, {"path": input_uri, "maxRows": 5001})
    assert too_many.status_code == 400 and too_many.json()["message"] == "maxRows is at most 5000"
    latin = task_file_uri(execution.namespace, execution.flow_id, execution.id, "upper", "r1", "latin.txt")
    get_storage().put(latin, "café\n".encode("latin-1"))
    assert staff.get(path, {"path": latin}).status_code == 400
    assert staff.get(path, {"path": latin, "encoding": "ISO-8859-1"}).json()["content"] == "café\n"


@pytest.fixture
def s3_storage(settings, s3_endpoint):  # noqa: F811
    settings.HARRIER_STORAGE = "s3"
    settings.HARRIER_S3_ENDPOINT = s3_endpoint
    settings.HARRIER_S3_BUCKET = "harrier-api-files"
    settings.HARRIER_S3_ACCESS_KEY = settings.HARRIER_S3_SECRET_KEY = "testing"
    settings.HARRIER_S3_REGION = "us-east-1"
    settings.HARRIER_S3_SECURE = False
    reset_storage()
    yield get_storage()
    reset_storage()


def test_files_are_served_from_the_s3_storage(s3_storage, staff, namespace):
    from orchestrator.models import Execution
    from orchestrator.repository import now

    execution = Execution.objects.create(namespace=namespace, flow_id="report", flow_revision=1, state="SUCCESS",
                                         start_date=now(), updated=now())
    uri = task_file_uri(namespace, "report", execution.id, "upper", "r1", "big data.json")
    content = b'{"rows": [' + b",".join(b"%d" % i for i in range(300_000)) + b"]}\n"
    s3_storage.put(uri, content)
    assert s3_storage.kind == "s3"

    response = download(staff, execution.id, uri)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="big data.json"'
    assert b"".join(response.streaming_content) == content
    assert download(staff, execution.id, uri, "/metas").json() == {"size": len(content)}
    assert download(staff, execution.id, uri.replace("big%20data", "other"), "/metas").status_code == 404


def test_a_storage_that_cannot_answer_is_a_503_with_the_reason(settings, staff, namespace):
    from orchestrator.models import Execution
    from orchestrator.repository import now
    from tests.integration.test_storage import _free_port

    execution = Execution.objects.create(namespace=namespace, flow_id="report", flow_revision=1, state="SUCCESS",
                                         start_date=now(), updated=now())
    settings.HARRIER_STORAGE = "s3"
    settings.HARRIER_S3_ENDPOINT = f"127.0.0.1:{_free_port()}"  # nothing listens there
    settings.HARRIER_S3_BUCKET = "harrier-api-files"
    settings.HARRIER_S3_ACCESS_KEY = settings.HARRIER_S3_SECRET_KEY = "testing"
    settings.HARRIER_S3_SECURE = False
    reset_storage()
    try:
        uri = task_file_uri(namespace, "report", execution.id, "upper", "r1", "out.csv")
        response = download(staff, execution.id, uri, "/metas")
        assert response.status_code == 503
        assert response.json()["message"].startswith("The internal storage cannot serve the file now")
    finally:
        reset_storage()

"""The HTTP tasks on a worker's side, against a real local HTTP server: what they send, what
they output, when they fail, and how Download streams into internal storage."""

from __future__ import annotations

import base64
import json
import threading
import time
import tracemalloc

import pytest

from tests.httpserver import LocalServer, big_body
from workers.context import RunContext, TaskFailure
from workers.runtime import execute

REQUEST = "io.kestra.plugin.core.http.Request"
DOWNLOAD = "io.kestra.plugin.core.http.Download"


@pytest.fixture(autouse=True)
def storage(local_storage):
    return local_storage


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


class Run:
    """One attempt of one task, as the worker runs it (without the cluster)."""

    def __init__(self, task: dict) -> None:
        self.logs: list[dict] = []
        task = {"id": "call", **task}
        self.ctx = RunContext({"v": 1, "executionId": "e1", "taskRunId": "r1", "attempt": 1, "task": task,
                               "context": {}, "namespace": "company.team", "flowId": "f"}, self.logs.extend)
        self.task = task

    def __call__(self) -> dict:
        try:
            return execute(self.task, self.ctx)
        finally:
            self.ctx.flush_logs()

    def messages(self, level: str | None = None) -> list[str]:
        return [log["message"] for log in self.logs if level is None or log["level"] == level]


def request(**task) -> dict:
    return Run({"type": REQUEST, **task})()


def echoed(outputs: dict) -> dict:
    return json.loads(outputs["body"])


# --- Request ---------------------------------------------------------------------------------

def test_a_get_outputs_code_headers_body_as_text_and_the_uri(server):
    outputs = request(uri=server.url("/echo?q=1"))
    assert outputs["code"] == 200
    assert outputs["uri"] == server.url("/echo?q=1")
    assert isinstance(outputs["body"], str)  # JSON stays text, as in Kestra
    document = echoed(outputs)
    assert (document["method"], document["path"], document["query"]) == ("GET", "/echo", {"q": ["1"]})
    assert outputs["headers"]["Content-Type"] == ["application/json"]
    # header names are case-insensitive: the values of X-Multi and x-multi are one header's
    assert outputs["headers"]["X-Multi"] == ["one", "two"]
    assert "Content-Type" not in {k.title() for k in document["headers"]}  # no body, no Content-Type


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_are_sent_as_written(server, method):
    assert echoed(request(uri=server.url("/echo"), method=method.lower()))["method"] == method


def test_head_has_no_body(server):
    outputs = request(uri=server.url("/echo"), method="HEAD")
    assert outputs["code"] == 200 and outputs["body"] is None


def test_headers_and_a_json_body_are_sent(server):
    document = echoed(request(uri=server.url("/echo"), method="POST", headers={"X-Trace": "abc", "User-Agent": "me"},
                              body='{"name": "Harrier", "n": 1}'))
    assert document["headers"]["x-trace"] == "abc"
    assert document["headers"]["user-agent"] == "me"
    assert document["headers"]["content-type"] == "application/json"
    assert json.loads(document["body"]) == {"name": "Harrier", "n": 1}


def test_a_map_body_is_sent_as_json_with_the_given_content_type(server):
    document = echoed(request(uri=server.url("/echo"), method="POST", body={"a": [1, 2]},
                              contentType="application/vnd.api+json"))
    assert json.loads(document["body"]) == {"a": [1, 2]}
    assert document["headers"]["content-type"] == "application/vnd.api+json"


def test_form_data_is_url_encoded(server):
    document = echoed(request(uri=server.url("/echo"), method="POST", formData={"user": "John Doe", "n": 3}))
    assert document["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert document["body"] == "user=John+Doe&n=3"


def test_multipart_form_data_sends_fields_and_files_from_storage(server, storage):
    from orchestrator.storage import task_file_uri

    uri = task_file_uri("company.team", "f", "e1", "earlier", "r0", "data.csv")
    storage.put(uri, b"a,b\n1,2\n")
    document = echoed(request(uri=server.url("/echo"), method="POST", contentType="multipart/form-data",
                              formData={"user": "John", "file": uri,
                                        "renamed": {"name": "other.csv", "content": uri}}))
    assert document["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    body = document["body"]
    assert 'name="user"\r\n\r\nJohn\r\n' in body
    assert 'name="file"; filename="data.csv"' in body and "a,b\n1,2\n" in body
    assert 'name="renamed"; filename="other.csv"' in body


def test_a_file_of_another_execution_is_not_sent(server):
    from orchestrator.storage import task_file_uri

    uri = task_file_uri("company.team", "f", "OTHER", "t", "r", "secret.csv")
    with pytest.raises(TaskFailure, match="outside this task's scope"):
        request(uri=server.url("/echo"), method="POST", contentType="multipart/form-data", formData={"f": uri})
    assert server.requests == []


@pytest.mark.parametrize("options", [
    {"auth": {"type": "BASIC", "username": "user", "password": "secret"}},
    {"basicAuthUser": "user", "basicAuthPassword": "secret"},  # Kestra's older spelling
    {"auth": {"type": "BEARER", "token": "token-1"}},
])
def test_authentication(server, options):
    assert request(uri=server.url("/auth"), options=options)["body"] == "welcome"


def test_wrong_credentials_fail_with_the_status_the_url_and_the_body(server):
    with pytest.raises(TaskFailure) as failure:
        request(uri=server.url("/auth"), options={"auth": {"type": "BASIC", "username": "user", "password": "no"}})
    assert str(failure.value) == f"GET {server.url('/auth')} answered HTTP 401 Unauthorized: who are you?"


@pytest.mark.parametrize("code", [400, 404, 500, 503])
def test_an_error_status_fails_the_attempt(server, code):
    with pytest.raises(TaskFailure, match=f"answered HTTP {code}"):
        request(uri=server.url(f"/status/{code}"))


@pytest.mark.parametrize("allow", [{"options": {"allowFailed": True}}, {"allowFailed": True}])
def test_allow_failed_keeps_the_error_response(server, allow):
    outputs = request(uri=server.url("/status/404"), **allow)
    assert (outputs["code"], outputs["body"]) == (404, "status 404")


def test_allowed_response_codes_are_the_only_ones_that_pass(server):
    assert request(uri=server.url("/status/404"), options={"allowedResponseCodes": [404]})["code"] == 404
    with pytest.raises(TaskFailure, match="answered HTTP 200"):
        request(uri=server.url("/status/200"), options={"allowedResponseCodes": [201]})


@pytest.mark.parametrize("code, method, sent, body", [
    (301, "PUT", "PUT", "payload"), (302, "POST", "GET", ""), (303, "PUT", "GET", ""), (307, "POST", "POST", "payload"),
    (308, "PUT", "PUT", "payload"),
])
def test_redirects_are_followed_as_browsers_do(server, code, method, sent, body):
    outputs = request(uri=server.url(f"/redirect/{code}?to=/echo"), method=method, body="payload")
    document = echoed(outputs)
    assert document["method"] == sent
    assert document["body"] == body
    assert ("content-type" in document["headers"]) == bool(body)
    assert outputs["uri"] == server.url(f"/redirect/{code}?to=/echo")  # the URL requested, as Kestra


def test_a_307_sends_a_file_again(server, storage):
    from orchestrator.storage import task_file_uri

    uri = task_file_uri("company.team", "f", "e1", "earlier", "r0", "data.csv")
    storage.put(uri, b"x,y\n")
    document = echoed(request(uri=server.url("/redirect/307?to=/echo"), method="POST",
                              contentType="multipart/form-data", formData={"file": uri}))
    assert 'filename="data.csv"' in document["body"] and "x,y\n" in document["body"]


def test_without_follow_redirects_the_redirect_is_the_response(server):
    outputs = request(uri=server.url("/redirect/302?to=/echo"), options={"followRedirects": False})
    assert outputs["code"] == 302 and outputs["headers"]["Location"] == ["/echo"]


def test_credentials_do_not_follow_a_redirect_to_another_origin(server):
    other = server.url("/echo").replace("127.0.0.1", "localhost")
    document = echoed(request(uri=server.url(f"/redirect/302?to={other}"),
                              headers={"Authorization": "Bearer token-1"},
                              options={"auth": {"type": "BASIC", "username": "user", "password": "secret"}}))
    assert "authorization" not in document["headers"]
    same = echoed(request(uri=server.url("/redirect/302?to=/echo"),
                          options={"auth": {"type": "BASIC", "username": "user", "password": "secret"}}))
    assert same["headers"]["authorization"] == "Basic " + base64.b64encode(b"user:secret").decode()


def test_redirects_are_bounded(server):
    assert echoed(request(uri=server.url("/loop/19")))["path"] == "/echo"  # 20 redirects
    with pytest.raises(TaskFailure, match=r"/loop/20 redirected more than 20 times \(the last to .*/echo\)"):
        request(uri=server.url("/loop/20"))


def test_text_is_decoded_with_its_declared_charset(server):
    assert request(uri=server.url("/latin1"))["body"] == "café"


def test_a_binary_body_fails_and_points_to_download(server):
    with pytest.raises(TaskFailure, match="not UTF-8 text: use io.kestra.plugin.core.http.Download"):
        request(uri=server.url("/binary"))


def test_a_body_larger_than_max_content_length_fails(server):
    assert request(uri=server.url("/status/200"), options={"maxContentLength": 10})["body"] == "status 200"
    with pytest.raises(TaskFailure, match="larger than 9 bytes: raise options.maxContentLength"):
        request(uri=server.url("/status/200"), options={"maxContentLength": 9})


def test_encrypt_body_outputs_it_encrypted(server):
    from orchestrator.encryption import decrypt, is_encrypted

    outputs = request(uri=server.url("/status/200"), encryptBody=True)
    assert "body" not in outputs and is_encrypted(outputs["encryptedBody"])
    assert decrypt(outputs["encryptedBody"]) == "status 200"


def test_options_logs_log_the_exchange(server):
    run = Run({"type": REQUEST, "uri": server.url("/echo"), "method": "POST", "body": "hi",
               "options": {"logs": ["REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS"]}})
    run()
    messages = run.messages("INFO")
    assert any(m.startswith(f"request POST {server.url('/echo')} headers: ") and "user-agent: Harrier" in m
               for m in messages)
    assert f"request POST {server.url('/echo')} body: hi" in messages
    assert any(m.startswith(f"response 200 from {server.url('/echo')} headers: ") for m in messages)


def test_an_unsupported_method_is_refused():
    with pytest.raises(TaskFailure, match="method 'BREW' is not supported"):
        request(uri="http://example.com/", method="BREW")


def test_the_read_timeout_ends_a_stalled_response(server):
    started = time.monotonic()
    with pytest.raises(TaskFailure, match="timed out \\(no data came within the read timeout\\)"):
        request(uri=server.url("/slow"), options={"timeout": {"readIdleTimeout": "PT0.3S"}})
    assert time.monotonic() - started < 5


def test_a_stop_request_aborts_a_blocked_read_at_once(server):
    """A kill or the task's timeout (workers/watch.py calls ctx.stop) must not wait for the read
    timeout: the sockets are shut down under the blocked read."""
    run = Run({"type": REQUEST, "uri": server.url("/slow")})
    threading.Thread(target=lambda: (wait_for_request(server), run.ctx.stop("timeout")), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(TaskFailure, match="stopped: the task was asked to stop"):
        run()
    assert time.monotonic() - started < 3


def wait_for_request(server, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not server.requests:
        assert time.monotonic() < deadline, "the server saw no request"
        time.sleep(0.01)


# --- Download ----------------------------------------------------------------------------------

def download(**task) -> dict:
    return Run({"type": DOWNLOAD, **task})()


def test_download_stores_the_body_and_outputs_uri_code_length_headers(server, storage):
    outputs = download(uri=server.url("/big/300000"))
    assert outputs["code"] == 200 and outputs["length"] == 300000
    assert outputs["uri"] == "kestra:///company/team/f/executions/e1/tasks/call/r1/300000"
    assert outputs["headers"]["Content-Length"] == ["300000"]
    assert storage.read_bytes(outputs["uri"], 10**6) == big_body(300000)


def test_a_large_download_streams_with_bounded_memory(server, storage):
    size = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        outputs = download(uri=server.url(f"/big/{size}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outputs["length"] == size and storage.size(outputs["uri"]) == size
    # about a storage chunk (1 MiB) and an HTTP read piece, whatever the body's size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte download"


def test_the_file_name_comes_from_content_disposition_without_its_path(server, storage):
    outputs = download(uri=server.url("/named"))
    assert outputs["uri"].endswith("/tasks/call/r1/report.csv")
    assert storage.read_bytes(outputs["uri"], 100) == b"a,b\n1,2\n"


def test_an_empty_download_fails_unless_told_otherwise(server, storage):
    with pytest.raises(TaskFailure, match="answered HTTP 200 with no content"):
        download(uri=server.url("/empty"))
    assert storage.list("kestra:///company/team/f/executions/e1/") == []
    run = Run({"type": DOWNLOAD, "uri": server.url("/empty"), "failOnEmptyResponse": False})
    assert run()["length"] == 0
    assert any("is empty" in message for message in run.messages("WARN"))


def test_a_download_error_status_fails_naming_it(server):
    with pytest.raises(TaskFailure, match=f"GET {server.url('/status/404')} answered HTTP 404"):
        download(uri=server.url("/status/404"))


def test_a_stop_request_aborts_a_download_and_stores_nothing(server, storage):
    run = Run({"type": DOWNLOAD, "uri": server.url("/slow")})
    threading.Thread(target=lambda: (wait_for_request(server), run.ctx.stop("killed")), daemon=True).start()
    with pytest.raises(TaskFailure):
        run()
    assert storage.list("kestra:///company/team/f/executions/e1/") == []

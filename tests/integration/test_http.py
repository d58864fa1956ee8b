"""HTTP tasks through real processes: the cluster's worker calls a local test server; the SSRF
guard is shown through `flow run` processes started with HARRIER_HTTP_DENY_PRIVATE on (the
session's cluster keeps the default, off, so that the other tests can call the local server)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from orchestrator.storage import get_storage
from tests.harness import ROOT
from tests.httpserver import LocalServer, big_body
from tests.integration.test_local import local_env

pytestmark = [pytest.mark.integration]


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


@pytest.mark.django_db(transaction=True)
def test_a_request_posts_json_and_later_tasks_read_its_outputs(run_flow, server):
    source = f"""
id: http-request
namespace: tests
tasks:
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: "{server.url('/echo')}"
    method: POST
    contentType: application/json
    headers:
      X-Flow: "{{{{ flow.id }}}}"
    body: |
      {{"title": "Harrier", "n": {{{{ 40 + 2 }}}}}}
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.call.code }}}} {{{{ (outputs.call.body | fromJson).headers['x-flow'] }}}}"
"""
    outcome = run_flow(source)
    assert outcome.state == "SUCCESS", outcome.logs
    call = outcome.run("call").outputs
    assert call["code"] == 200 and call["uri"] == server.url("/echo")
    assert call["headers"]["Content-Type"] == ["application/json"]
    assert '\\"n\\": 42' in call["body"]
    assert outcome.run("use").outputs == {"value": "200 http-request"}


@pytest.mark.django_db(transaction=True)
def test_an_error_status_fails_the_task_naming_status_and_url_unless_allowed(run_flow, server):
    source = f"""
id: http-errors
namespace: tests
tasks:
  - id: tolerated
    type: io.kestra.plugin.core.http.Request
    uri: "{server.url('/status/503')}"
    options:
      allowFailed: true
  - id: failing
    type: io.kestra.plugin.core.http.Request
    uri: "{server.url('/status/404')}"
"""
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "FAILED"
    assert outcome.run("tolerated").state == "SUCCESS"
    assert outcome.run("tolerated").outputs["code"] == 503
    assert outcome.run("failing").state == "FAILED"
    assert f"GET {server.url('/status/404')} answered HTTP 404 Not Found: status 404" in outcome.logs_of("failing")


@pytest.mark.django_db(transaction=True)
def test_a_download_lands_in_internal_storage(run_flow, server):
    source = f"""
id: http-download
namespace: tests
tasks:
  - id: fetch
    type: io.kestra.plugin.core.http.Download
    uri: "{server.url('/big/3000000')}"
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.fetch.length }}}} {{{{ outputs.fetch.uri }}}}"
"""
    outcome = run_flow(source)
    assert outcome.state == "SUCCESS", outcome.logs
    fetch = outcome.run("fetch")
    uri = fetch.outputs["uri"]
    assert uri.endswith(f"/executions/{outcome.execution.id}/tasks/fetch/{fetch.id}/3000000")
    assert fetch.outputs["code"] == 200 and fetch.outputs["length"] == 3000000
    assert get_storage().read_bytes(uri, 4_000_000) == big_body(3000000)
    assert outcome.run("report").outputs == {"value": f"3000000 {uri}"}


@pytest.mark.django_db(transaction=True)
def test_the_task_timeout_ends_a_request_to_a_stalled_server_promptly(run_flow, server):
    source = f"""
id: http-timeout
namespace: tests
tasks:
  - id: stalled
    type: io.kestra.plugin.core.http.Request
    uri: "{server.url('/slow')}"
    timeout: PT1S
"""
    started = time.monotonic()
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "FAILED"
    assert any("Timeout" in message for message in outcome.logs_of("stalled"))
    # the read timeout is five minutes: the stop cut the connection
    assert time.monotonic() - started < 30


# --- the SSRF guard, on, in `flow run` processes -------------------------------------------------

def flow_run(tmp_path, source: str, **env: str) -> subprocess.CompletedProcess:
    path = tmp_path / "flow.yaml"
    path.write_text(source)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "flow", "run", str(path)],
        env={**local_env(tmp_path / "home"), "HARRIER_HTTP_DENY_PRIVATE": "true", **env},
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def test_with_the_guard_on_a_request_to_loopback_is_refused(tmp_path, server):
    source = f"""
id: ssrf
namespace: tests
tasks:
  - id: metadata
    type: io.kestra.plugin.core.http.Request
    uri: "http://127.0.0.1:{server.port}/echo"
"""
    completed = flow_run(tmp_path, source)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    refused = f"http://127.0.0.1:{server.port}/echo is refused: 127.0.0.1 is a loopback address"
    assert refused in completed.stdout
    assert server.requests == []


def test_with_the_guard_on_a_redirect_from_an_allowed_server_to_loopback_is_refused(tmp_path, server):
    """127.0.0.2 stands for a public server: the allowed network makes it reachable, while
    127.0.0.1, where the redirect leads, stays refused."""
    with LocalServer("127.0.0.2") as public:
        redirect = public.url(f"/redirect/302?to={server.url('/echo')}")
        source = f"""
id: ssrf-redirect
namespace: tests
tasks:
  - id: allowed
    type: io.kestra.plugin.core.http.Request
    uri: "{public.url('/echo')}"
  - id: redirected
    type: io.kestra.plugin.core.http.Request
    uri: "{redirect}"
"""
        completed = flow_run(tmp_path, source, HARRIER_HTTP_ALLOW_NETWORKS="127.0.0.2/32")
        assert completed.returncode == 1, completed.stdout + completed.stderr
        assert f"{server.url('/echo')} is refused (redirected from {redirect})" in completed.stdout
        assert [path for _, path, _ in public.requests] == ["/echo", redirect.split(str(public.port), 1)[1]]
        assert server.requests == []

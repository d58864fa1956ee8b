"""Harrier over HTTP only, as a user's client sees it: a real webserver process (gunicorn, as
`server webserver` runs it) beside real executor, worker and indexer processes, called with httpx.
A flow is deployed as YAML, executed with a file, followed over server-sent events to its end,
and its output file downloaded."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from typing import Iterator

import httpx
import orjson
import pytest

from tests.harness import ROOT, wait_for
from tests.integration.test_local import local_env
from tests.integration.test_storage import _free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FLOW = """
id: shout
namespace: {namespace}
inputs:
  - id: data
    type: FILE
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "shouting {{{{ fileSize(inputs.data) }}}} bytes"
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: upper
    type: io.kestra.plugin.core.storage.Write
    content: "{{{{ read(inputs.data) | upper }}}}"
    extension: .txt
"""

# As FLOW, but it waits in the middle until it is resumed: an event received then can only have
# been sent while the execution was still running.
FLOW_WITH_PAUSE = FLOW.replace("""    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S""", """    type: io.kestra.plugin.core.flow.Pause""")

PAUSED = """
id: held
namespace: {namespace}
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
"""

MAX_STREAMS = 2


@pytest.fixture(scope="module")
def server(cluster) -> Iterator[str]:
    """The base URL of a webserver process (one gunicorn worker, so its stream bound is the
    server's), stopped after the module."""
    port = _free_port()
    cluster.start("webserver", "webserver", "--no-indexer", "--port", str(port), env={
        "HARRIER_WEB_WORKERS": "1", "HARRIER_FOLLOW_MAX_STREAMS": str(MAX_STREAMS),
        "HARRIER_FOLLOW_KEEPALIVE_SECONDS": "0.3", "HARRIER_FOLLOW_POLL_SECONDS": "0.2",
    })
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/api/v1/version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 60, "the webserver to answer", interval=0.2)
        yield url
    finally:
        cluster.stop("webserver")


@pytest.fixture
def api(server, django_user_model) -> Iterator[httpx.Client]:
    from rest_framework.authtoken.models import Token

    user = django_user_model.objects.create_user(f"ops-{uuid.uuid4().hex[:8]}", is_staff=True)
    token = Token.objects.create(user=user).key
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def events(response: httpx.Response) -> Iterator[tuple[str, dict | None]]:
    """(id, data) of each server-sent event as it arrives; keep-alive comments as ("comment", None)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "comment", None
        elif line:
            name, _, value = line.partition(": ")
            fields[name] = value
        elif fields:
            yield fields["id"], orjson.loads(fields["data"])
            fields = {}


def test_a_flow_is_deployed_run_with_a_file_followed_and_its_output_downloaded(api, namespace):
    deployed = api.post("/api/v1/flows", content=FLOW.format(namespace=namespace),
                        headers={"Content-Type": "application/x-yaml"})
    assert deployed.status_code == 200, deployed.text
    content = "name,city\nada,london\ngrace,new york\n" * 1000
    created = api.post(f"/api/v1/executions/{namespace}/shout",
                       files={"data": ("people.csv", content.encode(), "text/csv")})
    assert created.status_code == 200, created.text
    execution_id = created.json()["id"]

    seen = []
    with api.stream("GET", f"/api/v1/executions/{execution_id}/follow",
                    headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        for name, data in events(response):
            if name != "comment":
                seen.append((name, data))
    assert seen[-1][0] == "end"
    final = seen[-1][1]
    assert final["state"]["current"] == "SUCCESS"
    assert any(run["taskId"] == "wait" and run["state"]["current"] == "RUNNING"
               for _, data in seen for run in data["taskRunList"])

    output = next(run for run in final["taskRunList"] if run["taskId"] == "upper")["outputs"]["uri"]
    metas = api.get(f"/api/v1/executions/{execution_id}/file/metas", params={"path": output})
    assert metas.json() == {"size": len(content)}
    download = api.get(f"/api/v1/executions/{execution_id}/file", params={"path": output})
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="upper.txt"'
    assert download.text == content.upper()
    uploaded = api.get(f"/api/v1/executions/{execution_id}/file", params={"path": final["inputs"]["data"]})
    assert uploaded.content == content.encode()

    with api.stream("GET", f"/api/v1/logs/{execution_id}/follow") as response:
        lines = [data["message"] for name, data in events(response) if name == "progress"]
    assert f"shouting {len(content)} bytes" in lines


def test_a_client_that_leaves_frees_its_stream_and_streams_never_starve_the_api(api, namespace):
    assert api.post("/api/v1/flows", content=PAUSED.format(namespace=namespace),
                    headers={"Content-Type": "application/x-yaml"}).status_code == 200
    execution_id = api.post(f"/api/v1/executions/{namespace}/held").json()["id"]
    follow = f"/api/v1/executions/{execution_id}/follow"
    streams = []
    try:
        for _ in range(MAX_STREAMS):
            client = httpx.Client(base_url=str(api.base_url), headers=dict(api.headers), timeout=30)
            response = client.send(client.build_request("GET", follow), stream=True)
            assert response.status_code == 200
            assert next(events(response))[0] == "progress"
            streams.append((client, response))

        # every stream the process may serve is open: the API still answers, a further stream is refused
        assert api.get(f"/api/v1/executions/{execution_id}").json()["state"]["current"] in {"RUNNING", "PAUSED"}
        refused = api.get(follow)
        assert refused.status_code == 503 and refused.headers["retry-after"]

        client, response = streams.pop()
        response.close()
        client.close()

        # the server notices at its next keep-alive that the client left, and frees the place
        def reopened():
            response = api.send(api.build_request("GET", follow), stream=True)
            if response.status_code == 503:
                response.close()
                return None
            return response
        again = wait_for(reopened, 10, "a stream to be served again")
        assert again.status_code == 200
        again.close()
    finally:
        for client, response in streams:
            response.close()
            client.close()
        api.delete(f"/api/v1/executions/{execution_id}/kill")


def test_a_stopped_webserver_leaves_no_server_behind(cluster):
    port = _free_port()
    process = cluster.start("webserver-stopped", "webserver", "--no-indexer", "--port", str(port),
                            env={"HARRIER_WEB_WORKERS": "1"})
    url = f"http://127.0.0.1:{port}/api/v1/version"

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 60, "the webserver to answer", interval=0.2)
    cluster.stop("webserver-stopped")
    assert process.returncode is not None
    wait_for(lambda: not answers(), 20, "the port to be closed", interval=0.2)


def test_server_local_streams_each_event_as_it_happens(tmp_path):
    """`server local` (waitress, everything in one process, SQLite) sends each event when it
    happens, not once the stream ends: the stream says the execution is paused, the client
    resumes it, and the same stream goes on to its end."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "server", "local", "--port", str(port), "--no-example"],
        env=local_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()
    try:
        wait_for(lambda: any("Press Ctrl-C" in line for line in lines), 90, "server local to start")
        password = re.search(r"Admin user created: admin / (\S+)", "".join(lines)).group(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("admin", password), timeout=30) as api:
            source = FLOW_WITH_PAUSE.format(namespace="company.team")
            assert api.post("/api/v1/flows", content=source, headers={"Content-Type": "application/x-yaml"}
                            ).status_code == 200
            created = api.post("/api/v1/executions/company.team/shout", files={"data": ("a.txt", b"quiet\n")})
            execution_id = created.json()["id"]
            with api.stream("GET", f"/api/v1/executions/{execution_id}/follow") as response:
                resumed = False
                for name, data in events(response):
                    if name == "progress" and data["state"]["current"] == "PAUSED" and not resumed:
                        assert api.post(f"/api/v1/executions/{execution_id}/resume").status_code == 204
                        resumed = True
                    if name == "end":
                        final = data
                        break
            assert resumed
            assert final["state"]["current"] == "SUCCESS"
            output = next(run for run in final["taskRunList"] if run["taskId"] == "upper")["outputs"]["uri"]
            assert api.get(f"/api/v1/executions/{execution_id}/file", params={"path": output}).text == "QUIET\n"
    finally:
        process.terminate()
        process.wait(20)

"""The same flows with no external service: `flow run` and `server local` on SQLite, in-process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path


from tests.harness import ROOT, wait_for
from tests.integration.test_execution import FAILING, SEQUENTIAL


def local_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    # An unreachable broker proves that nothing local talks to Redis.
    env.update(HARRIER_HOME=str(home), CELERY_BROKER_URL="redis://127.0.0.1:1/0", PYTHONUNBUFFERED="1",
               DJANGO_SETTINGS_MODULE="orchestrator.settings")
    return env


def flow_run(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "flow.yaml"
    path.write_text(source)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "flow", "run", str(path), *args],
        env=local_env(tmp_path / "home"), capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def test_flow_run_json_prints_the_execution_in_kestra_shape(tmp_path):
    completed = flow_run(tmp_path, SEQUENTIAL, "--json")
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["state"]["current"] == "SUCCESS"
    assert [h["state"] for h in document["state"]["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
    assert (document["namespace"], document["flowId"], document["flowRevision"]) == ("tests", "hello", 1)
    runs = {run["taskId"]: run for run in document["taskRunList"]}
    assert list(runs) == ["greet", "nested", "answer", "report"]
    assert runs["answer"]["outputs"] == {"value": "42"}
    assert runs["answer"]["parentTaskRunId"] == runs["nested"]["id"]
    assert runs["answer"]["attempts"][0]["state"]["current"] == "SUCCESS"
    assert {"key": "team", "value": "data"} in document["labels"]
    assert {"key": "system.correlationId", "value": document["id"]} in document["labels"]
    messages = [(log["taskId"], log["message"]) for log in document["logs"]]
    assert ("greet", "Hello hello from data") in messages
    assert ("report", f"answer=42 task=report execution={document['id']}") in messages


def test_flow_run_reports_failure_with_exit_status_and_logs(tmp_path):
    completed = flow_run(tmp_path, FAILING)
    assert completed.returncode == 1
    assert "FAILED" in completed.stdout.splitlines()[0]
    assert "the disk is full" in completed.stdout
    assert "cleaning up" in completed.stdout


def test_flow_run_refuses_an_invalid_flow_naming_the_problem(tmp_path):
    completed = flow_run(tmp_path, "id: broken\nnamespace: tests\ntasks:\n  - id: x\n    type: nope.Unknown\n")
    assert completed.returncode != 0
    assert "nope.Unknown" in completed.stderr
    assert "Traceback" not in completed.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_local_runs_the_example_and_serves_the_admin(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "server", "local", "--port", str(port)],
        env=local_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Press Ctrl-C" in line for line in lines), 90, "server local to start")
        output = "".join(lines)
        assert "Example execution" in output and ": SUCCESS" in output, output
        assert "Hello from hello-world" in output
        assert "The answer is 42" in output
        assert "Admin user created: admin / " in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=10) as response:
            assert json.load(response)["status"] == "UP"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=10) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(20)
    assert process.returncode == 0


def manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=local_env(tmp_path / "home"),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_flow_validate_names_the_property_and_line(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(SEQUENTIAL)
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nnamespace: tests\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
                   "    mesage: typo\n")
    completed = manage(tmp_path, "flow", "validate", str(good), str(bad))
    assert completed.returncode == 1
    assert f"{good}: valid (tests.hello)" in completed.stdout
    assert "tasks[0].mesage (line 6)" in completed.stderr
    assert "1 of 2 flow(s) invalid" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_flow_deploy_makes_a_revision_only_when_the_source_changes(tmp_path):
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "hello.yaml").write_text(SEQUENTIAL)
    first = manage(tmp_path, "flow", "deploy", str(folder))
    assert first.returncode == 0, first.stderr
    assert "deployed tests.hello revision 1" in first.stdout
    again = manage(tmp_path, "flow", "deploy", str(folder))
    assert "unchanged tests.hello revision 1" in again.stdout
    (folder / "hello.yaml").write_text(SEQUENTIAL.replace("team: data", "team: ops"))
    changed = manage(tmp_path, "flow", "deploy", str(folder / "hello.yaml"))
    assert "deployed tests.hello revision 2" in changed.stdout


def test_flow_run_refuses_a_disabled_flow(tmp_path):
    completed = flow_run(tmp_path, SEQUENTIAL.replace("namespace: tests", "namespace: tests\ndisabled: true"))
    assert completed.returncode == 1
    assert "flow tests.hello is disabled: enable it to run it" in completed.stderr


AFTER_EXECUTION = """
id: after
namespace: tests
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
afterExecution:
  - id: notify
    type: io.kestra.plugin.core.log.Log
    message: "after {{ flow.id }}"
"""


def test_after_execution_tasks_run_once_the_flow_has_ended(tmp_path):
    completed = flow_run(tmp_path, AFTER_EXECUTION, "--json")
    document = json.loads(completed.stdout)
    assert document["state"]["current"] == "FAILED"
    assert [run["taskId"] for run in document["taskRunList"]] == ["boom", "notify"]
    assert [log["message"] for log in document["logs"] if log["taskId"] == "notify"] == ["after after"]


CHECKED = """
id: checked
namespace: tests
inputs:
  - id: size
    type: INT
checks:
  - condition: "{{ inputs.size > 0 }}"
    message: size must be positive
  - condition: "{{ inputs.size < 100 }}"
    message: size too large for today
    behavior: FAIL_EXECUTION
tasks:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "size {{ inputs.size }}"
"""


def test_flow_checks_block_or_fail_an_execution_before_it_runs(tmp_path):
    blocked = flow_run(tmp_path, CHECKED, "--input", "size=0")
    assert blocked.returncode == 1 and "size must be positive" in blocked.stderr
    failed = flow_run(tmp_path, CHECKED, "--input", "size=500", "--json")
    document = json.loads(failed.stdout)
    assert document["state"]["current"] == "FAILED" and document["taskRunList"] == []
    assert [log["message"] for log in document["logs"]] == ["Check failed: size too large for today"]
    fine = flow_run(tmp_path, CHECKED, "--input", "size=5", "--json")
    assert json.loads(fine.stdout)["state"]["current"] == "SUCCESS"

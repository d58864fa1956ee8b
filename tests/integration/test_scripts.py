"""Script tasks through real executor, worker and indexer processes: the scripts run as real
processes on the worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.models import Execution, LogEntry, TaskRun
from orchestrator.repository import create_execution, deploy
from orchestrator.states import State
from tests.harness import wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_shell_commands_give_outputs_logs_and_exit_code(run_flow):
    source = """
id: shell
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    beforeCommands:
      - GREETING=hello
    commands:
      - echo "$GREETING from {{ flow.id }}"
      - echo "a warning" >&2
      - echo '::{"outputs":{"answer":42,"nested":{"ok":true}},"metrics":[{"name":"rows","type":"counter","value":3}]}::'
      - echo '::{"logs":[{"level":"WARN","message":"said through the protocol"}]}::'
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sh.vars.answer }} {{ outputs.sh.vars.nested.ok }} {{ outputs.sh.exitCode }}"
"""
    outcome = run_flow(source, expect_logs=3)
    assert outcome.state == "SUCCESS", outcome.logs_of("sh")
    sh = outcome.run("sh")
    assert sh.outputs["vars"] == {"answer": 42, "nested": {"ok": True}}
    assert sh.outputs["exitCode"] == 0 and sh.outputs["outputFiles"] == {}
    assert sh.outputs["metrics"] == [{"name": "rows", "type": "counter", "value": 3, "tags": {}}]
    assert outcome.run("use").outputs == {"value": "42 true 0"}
    levels = {entry.message: entry.level for entry in outcome.logs if entry.task_id == "sh"}
    assert levels["hello from shell"] == "INFO"
    assert levels["a warning"] == "ERROR"  # stderr, as Kestra logs it; the task still succeeds
    assert levels["said through the protocol"] == "WARN"
    assert not any("::{" in message for message in levels)


def test_a_non_zero_exit_code_fails_the_attempt_and_names_the_code(run_flow):
    source = """
id: failing-script
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Script
    script: |
      echo "before"
      false
      echo "never printed: failFast stops at the first failure"
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: unreachable
errors:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "{{ errorLogs()[0].message }}"
"""
    outcome = run_flow(source, expect_logs=3)
    assert outcome.state == "FAILED"
    assert outcome.run("sh").state == "FAILED"
    assert "Command failed with exit code 1" in outcome.run("sh").attempts[-1]["error"]
    assert outcome.logs_of("sh")[0] == "before"
    assert not any("never printed" in line for line in outcome.logs_of("sh"))
    assert "never" not in [run.task_id for run in outcome.runs]
    assert "Command failed with exit code 1" in outcome.logs_of("report")[0]


def test_without_fail_fast_the_last_command_decides(run_flow):
    source = """
id: lenient-script
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    failFast: false
    commands:
      - "false"
      - echo still here
      - exit 3
"""
    outcome = run_flow(source, expect_logs=2)
    assert outcome.logs_of("sh")[0] == "still here"
    assert "Command failed with exit code 3" in outcome.run("sh").attempts[-1]["error"]


def test_python_script_with_the_sdk_input_files_and_env(run_flow):
    source = """
id: python
namespace: tests
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    containerImage: python:3.12-slim
    env:
      REGION: "{{ envs.region }}"
      TOKEN: "{{ secret('API_TOKEN') }}"
    inputFiles:
      helper.py: |
        def double(x):
            return 2 * x
      data/numbers.txt: "1 2 3"
    script: |
      import os, sys
      from kestra import Kestra
      from helper import double
      numbers = [int(n) for n in open("data/numbers.txt").read().split()]
      Kestra.outputs({"total": double(sum(numbers)), "region": os.environ["REGION"], "flag": true})
      Kestra.counter("numbers", len(numbers), {"source": "file"})
      Kestra.logger().info("from the logger")
      print("token is " + os.environ["TOKEN"])
      print("working dir {{ workingDir }} is cwd:", os.getcwd() == "{{ workingDir }}")
      print("a problem", file=sys.stderr)
"""
    outcome = run_flow(source, expect_logs=4)
    assert outcome.state == "SUCCESS", outcome.logs_of("py")
    py = outcome.run("py")
    assert py.outputs["vars"] == {"total": 12, "region": "eu-west", "flag": True}
    assert py.outputs["metrics"][0]["tags"] == {"source": "file"}
    logs = outcome.logs_of("py")
    assert "from the logger" in logs and "token is ********" in logs
    assert any(line.endswith("is cwd: True") for line in logs)
    assert [e.level for e in outcome.logs if e.message == "a problem"] == ["ERROR"]


def test_python_commands_run_files_with_the_workers_python(run_flow):
    source = """
id: python-commands
namespace: tests
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    inputFiles:
      main.py: |
        import sys
        from kestra import Kestra
        Kestra.outputs({"argv": sys.argv[1:], "unbuffered": __import__("os").environ.get("PYTHONUNBUFFERED")})
    commands:
      - python main.py one two
"""
    outcome = run_flow(source)
    assert outcome.state == "SUCCESS", outcome.logs_of("py")
    assert outcome.run("py").outputs["vars"] == {"argv": ["one", "two"], "unbuffered": "1"}


def test_the_worker_environment_does_not_reach_the_script(run_flow):
    source = """
id: environment
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      GIVEN: "by the flow"
    commands:
      - env | sort
"""
    outcome = run_flow(source, expect_logs=5)
    variables = dict(line.split("=", 1) for line in outcome.logs_of("sh") if "=" in line)
    assert variables["GIVEN"] == "by the flow"
    for leaked in ("SECRET_API_TOKEN", "DATABASE_URL", "CELERY_BROKER_URL", "ENV_REGION", "HARRIER_GLOBALS"):
        assert leaked not in variables
    assert "/harrier-task-" in variables["HOME"] and variables["HOME"] != variables["WORKING_DIR"]
    assert variables["PWD"] == variables["WORKING_DIR"]
    assert set(variables) <= {"PATH", "LANG", "HOME", "TMPDIR", "TMP", "TEMP", "WORKING_DIR", "OUTPUT_DIR",
                              "GIVEN", "PWD", "SHLVL", "_", "OLDPWD"}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_timeout_kills_the_script_and_everything_it_started(run_flow, tmp_path):
    marker, pids = tmp_path / "late-marker", tmp_path / "pids"
    source = f"""
id: slow-script
namespace: tests
tasks:
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    timeout: PT1S
    commands:
      - echo $$ > {pids}
      - (sleep 5; touch {marker}) &
      - echo $! >> {pids}
      - sleep 30
"""
    started = time.monotonic()
    outcome = run_flow(source, timeout=30, expect_logs=1)
    assert outcome.state == "FAILED"
    assert "Timeout: the task ran longer than PT1S" in outcome.run("slow").attempts[-1]["error"]
    assert time.monotonic() - started < 15
    recorded = [int(pid) for pid in pids.read_text().split()]
    assert len(recorded) == 2
    wait_for(lambda: not any(_alive(pid) for pid in recorded), 10, "the script's processes to be gone")
    # the processes that would have written it are gone, so it never will be
    assert not marker.exists()


def test_logs_reach_the_repository_while_the_script_still_runs(cluster, namespace, tmp_path):
    go = tmp_path / "go"
    source = f"""
id: streaming
namespace: tests
tasks:
  - id: talk
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "first line"
      - while [ ! -f {go} ]; do sleep 0.05; done
      - echo "last line"
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: LogEntry.objects.filter(execution_id=execution.id, message="first line").exists(), 20,
             "the first line in the repository")
    talk = TaskRun.objects.get(execution_id=execution.id, task_id="talk")
    assert not State(talk.state).is_terminal  # the worker reports once, at the end
    assert not LogEntry.objects.filter(execution_id=execution.id, message="last line").exists()
    go.write_text("")
    done = wait_for(lambda: Execution.objects.filter(id=execution.id, state="SUCCESS").first(), 20,
                    "the execution to succeed")
    wait_for(lambda: LogEntry.objects.filter(execution_id=done.id, message="last line").exists(), 10, "the last line")


def test_output_files_are_stored_and_read_back_by_the_next_task(run_flow):
    from orchestrator.storage import get_storage

    source = """
id: files
namespace: tests
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles:
      - "*.csv"
      - "reports/**/*.txt"
    commands:
      - printf 'a,b\\n1,2\\n' > data.csv
      - echo ignored > notes.md
      - mkdir -p reports/2024/q1 && echo quarterly > reports/2024/q1/summary.txt
      - echo "from the output dir" > "{{ outputDir }}/extra.txt"
  - id: read
    type: io.kestra.plugin.scripts.python.Script
    inputFiles:
      copy.csv: "{{ outputs.make.outputFiles['data.csv'] }}"
    script: |
      from kestra import Kestra
      Kestra.outputs({
          "copy": open("copy.csv").read(),
          "direct": open("{{ outputs.make.outputFiles['reports/2024/q1/summary.txt'] }}").read().strip(),
      })
  - id: cat
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - cat {{ outputs.make.outputFiles['extra.txt'] }}
"""
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "SUCCESS", [(e.task_id, e.message) for e in outcome.logs]
    files = outcome.run("make").outputs["outputFiles"]
    assert sorted(files) == ["data.csv", "extra.txt", "reports/2024/q1/summary.txt"]
    assert all(uri.startswith("kestra:///") and outcome.execution.id in uri for uri in files.values())
    assert get_storage().read_bytes(files["data.csv"], 100) == b"a,b\n1,2\n"
    assert outcome.run("read").outputs["vars"] == {"copy": "a,b\n1,2\n", "direct": "quarterly"}
    assert outcome.logs_of("cat") == ["from the output dir"]


def test_a_task_cannot_read_another_executions_files(run_flow):
    source = """
id: scope
namespace: tests
tasks:
  - id: peek
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      stolen.txt: "kestra:///other/flow/executions/abc/tasks/t/r/secret.txt"
    commands:
      - cat stolen.txt
"""
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "FAILED"
    assert "outside this task's scope" in outcome.run("peek").attempts[-1]["error"]


def test_a_docker_task_runner_is_refused_at_deploy(namespace):
    from orchestrator.flowlang import FlowValidationError

    source = """
id: docker
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
    commands: [echo hi]
"""
    with pytest.raises(FlowValidationError, match="only the io.kestra.plugin.core.runner.Process task runner"):
        deploy(with_namespace(source, namespace))


def test_namespace_files_are_in_the_working_directory_of_a_script(run_flow, namespace):
    import io

    from orchestrator.storage import get_storage, namespace_file_uri

    storage = get_storage()  # the same storage as the cluster's workers (same HARRIER_HOME)
    storage.put(namespace_file_uri(namespace, "sql/query.sql"), io.BytesIO(b"SELECT 42;\n"))
    storage.put(namespace_file_uri(namespace, "notes.md"), io.BytesIO(b"not wanted\n"))
    source = """
id: with-namespace-files
namespace: tests
tasks:
  - id: list
    type: io.kestra.plugin.scripts.shell.Commands
    namespaceFiles:
      enabled: true
      include:
        - "sql/**"
    commands:
      - cat sql/query.sql
      - test ! -e notes.md && echo "only what was included"
"""
    outcome = run_flow(source, expect_logs=2)
    assert outcome.state == "SUCCESS", outcome.logs_of("list")
    assert outcome.logs_of("list")[:2] == ["SELECT 42;", "only what was included"]

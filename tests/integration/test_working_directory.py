"""The WorkingDirectory through real executor, worker and indexer processes: its tasks run on one
worker in one directory; their task runs show as they run, and the one result settles them."""

from __future__ import annotations

import pytest

from orchestrator.models import Execution, LogEntry, TaskRun
from orchestrator.repository import create_execution, deploy
from orchestrator.states import State
from tests.compat.test_kestra_cases import VALIDS
from tests.harness import wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WD = "io.kestra.plugin.core.flow.WorkingDirectory"


def test_tasks_share_files_and_see_the_outputs_of_the_tasks_before_them(run_flow):
    source = f"""
id: wd-share
namespace: tests
tasks:
  - id: wd
    type: {WD}
    inputFiles:
      seed.txt: "from the flow"
    outputFiles:
      - "*.csv"
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - printf 'a,b\\n1,2\\n' > data.csv
          - echo "$(cat seed.txt)"
          - echo '::{{"outputs":{{"rows":1}}}}::'
      - id: read
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - test "$(pwd)" = "{{{{ workingDir }}}}"
          - echo "rows {{{{ outputs.write.vars.rows }}}} in $(tail -n 1 data.csv)"
      - id: mine
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ parents | length }}}} {{{{ workerTaskrun.id == taskrun.parentId }}}}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.write.vars.rows }}}} {{{{ outputs.read.exitCode }}}}"
"""
    outcome = run_flow(source, expect_logs=2)
    assert outcome.state == "SUCCESS", [(e.task_id, e.message) for e in outcome.logs]
    assert [run.task_id for run in outcome.runs] == ["wd", "write", "read", "mine", "after"]
    wd = outcome.run("wd")
    assert {run.parent_task_run_id for run in outcome.runs if run.task_id in ("write", "read", "mine")} == {wd.id}
    assert "from the flow" in outcome.logs_of("write")
    assert outcome.logs_of("read") == ["rows 1 in 1,2"]
    assert outcome.run("write").attempts[0]["state"]["current"] == "SUCCESS"
    assert outcome.run("mine").outputs == {"value": "0 true"}
    assert outcome.run("after").outputs == {"value": "1 0"}
    assert len(wd.attempts) == 1
    uri = wd.outputs["outputFiles"]["data.csv"]
    assert uri.startswith("kestra:///") and wd.id in uri


def test_a_failing_task_stops_the_rest_and_its_errors_run_in_the_same_directory(run_flow):
    source = f"""
id: wd-fail
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: prepare
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo partial > state.txt
      - id: boom
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - exit 4
      - id: never
        type: io.kestra.plugin.core.log.Log
        message: unreachable
    errors:
      - id: inspect
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo "left $(cat state.txt)"
    finally:
      - id: last
        type: io.kestra.plugin.core.log.Log
        message: "finally {{{{ errorLogs()[0].taskId }}}}"
  - id: not-reached
    type: io.kestra.plugin.core.log.Log
    message: unreachable
"""
    outcome = run_flow(source, expect_logs=3)
    assert outcome.state == "FAILED"
    states = {run.task_id: run.state for run in outcome.runs}
    assert states == {"wd": "FAILED", "prepare": "SUCCESS", "boom": "FAILED", "inspect": "SUCCESS",
                      "last": "SUCCESS"}
    assert "exit code 4" in outcome.run("boom").attempts[0]["error"]
    assert outcome.logs_of("inspect") == ["left partial"]
    assert outcome.logs_of("last") == ["finally boom"]
    assert "Task boom failed" in outcome.run("wd").attempts[0]["error"]


def test_the_corpus_flow_runs_and_its_errors_branch_catches_a_failure(cluster, namespace):
    source = with_namespace((VALIDS / "working-directory.yaml").read_text(), namespace)
    flow, _ = deploy(source)
    good = create_execution(flow.namespace, flow.flow_id, inputs={"failed": "false"})
    bad = create_execution(flow.namespace, flow.flow_id, inputs={"failed": "true"})
    for execution_id in (good.id, bad.id):
        wait_for(lambda: State(Execution.objects.get(id=execution_id).state).is_terminal, 60, "the execution")
    good_runs = {run.task_id: run for run in TaskRun.objects.filter(execution_id=good.id)}
    assert Execution.objects.get(id=good.id).state == "SUCCESS"
    assert "disabled" not in good_runs and "error-t1" not in good_runs
    uri = good_runs["second"].outputs["uris"]["out/stay.txt"]
    assert good_runs["2_end"].outputs == {"value": uri}
    bad_runs = {run.task_id: run for run in TaskRun.objects.filter(execution_id=bad.id)}
    assert Execution.objects.get(id=bad.id).state == "FAILED"
    assert bad_runs["first"].state == "FAILED" and "second" not in bad_runs
    assert bad_runs["error-t1"].outputs == {"value": "Error Trigger ! error-t1"}


@pytest.mark.parametrize("name", ["working-directory-inputs.yml", "working-directory-outputs.yml",
                                  "working-directory-taskrun.yml", "working-directory-taskrun-nested.yml",
                                  "working-directory-each.yaml"])
def test_the_other_corpus_flows_run(cluster, namespace, name):
    flow, _ = deploy(with_namespace((VALIDS / name).read_text(), namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    execution = wait_for(lambda: _ended(execution.id), 60, f"{name} to end")
    runs = list(TaskRun.objects.filter(execution_id=execution.id))
    assert execution.state == "SUCCESS", [(r.task_id, r.state, r.attempts) for r in runs]
    by_task = {run.task_id: run for run in runs}
    if name == "working-directory-inputs.yml":
        assert "input.txt" in by_task["inputFiles"].outputs["uris"]
    if name == "working-directory-outputs.yml":
        assert "output.txt" in by_task["workingDir"].outputs["outputFiles"]
    if name == "working-directory-each.yaml":
        assert by_task["2_end"].outputs["value"].startswith("kestra:///")


def _ended(execution_id: str):
    execution = Execution.objects.get(id=execution_id)
    return execution if State(execution.state).is_terminal else None


def test_killing_stops_the_running_task_and_starts_no_other(cluster, namespace):
    from executor.service import kill_execution

    source = with_namespace(f"""
id: wd-kill
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: long
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo started
          - sleep 60
      - id: next
        type: io.kestra.plugin.core.log.Log
        message: must not run
""", namespace)
    flow, _ = deploy(source)
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: LogEntry.objects.filter(execution_id=execution.id, message="started").exists(), 30,
             "the task to start")
    # Its task run shows while the job runs, before any result.
    wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id, task_id="long", state="RUNNING").exists(),
             30, "the running task's task run")
    kill_execution(execution.id)
    assert Execution.objects.get(id=execution.id).state == "KILLED"
    # The worker stops the script: a following job runs on a free slot soon after.
    wait_for(lambda: LogEntry.objects.filter(execution_id=execution.id, level="WARN",
                                             message__contains="killed").exists(), 20, "the task to stop")
    assert not LogEntry.objects.filter(execution_id=execution.id, message="must not run").exists()
    runs = {run.task_id: run.state for run in TaskRun.objects.filter(execution_id=execution.id)}
    assert runs == {"wd": "KILLED", "long": "KILLED"}  # the kill ends the task run its logs belong to


def test_its_timeout_stops_the_task_and_fails_it(run_flow):
    source = f"""
id: wd-timeout
namespace: tests
tasks:
  - id: wd
    type: {WD}
    timeout: PT1S
    tasks:
      - id: long
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - sleep 30
      - id: next
        type: io.kestra.plugin.core.log.Log
        message: must not run
"""
    outcome = run_flow(source, timeout=30)
    assert outcome.state == "FAILED"
    assert {run.task_id: run.state for run in outcome.runs} == {"wd": "FAILED", "long": "FAILED"}
    assert "Timeout" in outcome.run("wd").attempts[0]["error"]
    assert "Timeout" in outcome.run("long").attempts[0]["error"]


def test_a_duplicate_result_changes_nothing(run_flow):
    import orjson

    from executor.service import handle_message
    from workers.claims import get_claims, result_key

    source = f"""
id: wd-duplicate
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: one
        type: io.kestra.plugin.core.debug.Return
        format: one
"""
    outcome = run_flow(source)
    assert outcome.state == "SUCCESS"
    wd = outcome.run("wd")
    kept = get_claims().kept_result(result_key(wd.id, 1))
    assert kept is not None
    message = orjson.loads(kept)
    execution = outcome.execution
    execution.state = State.RUNNING.value  # even were the execution still running
    execution.save(update_fields=["state"])
    handle_message(message)
    runs = list(TaskRun.objects.filter(execution_id=execution.id).order_by("seq"))
    assert [(run.task_id, run.state, len(run.attempts)) for run in runs] == [("wd", "SUCCESS", 1),
                                                                            ("one", "SUCCESS", 1)]


def test_its_retry_runs_every_task_again_in_a_new_directory(run_flow):
    source = f"""
id: wd-retry
namespace: tests
tasks:
  - id: wd
    type: {WD}
    retry: {{type: constant, interval: PT0.1S, maxAttempt: 2}}
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - test ! -e marker
          - touch marker
      - id: flaky
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - "exit {{{{ workerTaskrun.attemptsCount == 0 ? 1 : 0 }}}}"
"""
    outcome = run_flow(source, timeout=30)
    assert outcome.state == "SUCCESS", [(r.task_id, r.state, r.attempts) for r in outcome.runs]
    wd = outcome.run("wd")
    assert [attempt["state"]["current"] for attempt in wd.attempts] == ["FAILED", "SUCCESS"]
    assert [(run.task_id, run.state) for run in outcome.runs if run.task_id != "wd"] == [
        ("write", "SUCCESS"), ("flaky", "FAILED"), ("write", "SUCCESS"), ("flaky", "SUCCESS")]


def test_a_python_script_leaves_only_its_own_files_in_the_shared_directory(run_flow):
    source = f"""
id: wd-python
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: py
        type: io.kestra.plugin.scripts.python.Script
        script: |
          open("made.txt", "w").write("by python")
      - id: list
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - ls -A
"""
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "SUCCESS", [(e.task_id, e.message) for e in outcome.logs]
    assert outcome.logs_of("list") == ["made.txt"]


def test_kestras_cache_flow_finds_the_files_of_its_previous_run(cluster, namespace):
    """Kestra's working-directory-cache flow: `exists` collects hello.txt, which `inputFiles`
    writes after it. The first run has nothing to collect; the second finds the cached file."""
    flow, _ = deploy(with_namespace((VALIDS / "working-directory-cache.yml").read_text(), namespace))
    found = []
    for _ in range(2):
        execution = create_execution(flow.namespace, flow.flow_id)
        execution = wait_for(lambda: _ended(execution.id), 60, "the cache flow to end")
        assert execution.state == "SUCCESS"
        found.append(sorted(TaskRun.objects.get(execution_id=execution.id, task_id="exists").outputs["uris"]))
        logs = list(LogEntry.objects.filter(execution_id=execution.id, task_id="workingDir")
                    .values_list("message", flat=True))
    assert found == [[], ["hello.txt"]]
    assert any(message.startswith("Restored 1 cached file(s)") for message in logs)


def test_a_task_inside_retries_in_the_same_directory_with_its_own_retry(run_flow):
    source = f"""
id: wd-retry
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: flaky
        type: io.kestra.plugin.scripts.shell.Commands
        retry:
          type: constant
          interval: PT0.2S
          maxAttempt: 3
        commands:
          - echo "attempt {{{{ taskrun.attemptsCount }}}}"
          - if [ -f tried ]; then echo second; else touch tried; echo first; exit 1; fi
      - id: stubborn
        type: io.kestra.plugin.core.execution.Fail
        allowFailure: true
        retry:
          type: constant
          interval: PT0.1S
          maxAttempt: 2
"""
    outcome = run_flow(source, expect_logs=2)
    assert outcome.state == "WARNING", [(e.task_id, e.message) for e in outcome.logs]
    flaky, stubborn = outcome.run("flaky"), outcome.run("stubborn")
    assert flaky.state == "SUCCESS"
    assert [attempt["state"]["current"] for attempt in flaky.attempts] == ["FAILED", "SUCCESS"]
    assert outcome.logs_of("flaky") == ["attempt 0", "first", "Command failed with exit code 1", "attempt 1",
                                        "second"]
    assert stubborn.state == "WARNING" and len(stubborn.attempts) == 2
    assert len(outcome.run("wd").attempts) == 1  # the WorkingDirectory itself ran once


def test_each_task_run_shows_and_changes_state_while_the_job_runs(cluster, namespace):
    from executor.service import kill_execution

    flow, _ = deploy(with_namespace(f"""
id: wd-live
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: quick
        type: io.kestra.plugin.core.debug.Return
        format: done
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT60S
""", namespace))
    execution = create_execution(flow.namespace, flow.flow_id)

    def live():
        runs = {run.task_id: run for run in TaskRun.objects.filter(execution_id=execution.id)}
        return runs if runs.get("slow") is not None and runs.get("quick") is not None else None

    runs = wait_for(live, 30, "the tasks' task runs while the job runs")
    assert runs["wd"].state == "RUNNING" and runs["slow"].state == "RUNNING"
    assert runs["quick"].state == "SUCCESS" and runs["quick"].outputs == {"value": "done"}
    assert [attempt["state"]["current"] for attempt in runs["quick"].attempts] == ["SUCCESS"]
    assert runs["slow"].attempts[0]["state"]["current"] == "RUNNING"
    assert runs["quick"].parent_task_run_id == runs["slow"].parent_task_run_id == runs["wd"].id
    kill_execution(execution.id)
    states = {run.task_id: run.state for run in TaskRun.objects.filter(execution_id=execution.id)}
    assert states == {"wd": "KILLED", "quick": "SUCCESS", "slow": "KILLED"}


def test_a_killed_working_directory_restarts_whole_in_a_new_attempt(cluster, namespace):
    from executor.service import kill_execution, restart_execution
    from orchestrator.storage import get_storage, namespace_file_uri

    mode = namespace_file_uri(namespace, "mode.txt")
    get_storage().put(mode, b"sleep")
    flow, _ = deploy(with_namespace(f"""
id: wd-restart
namespace: tests
tasks:
  - id: wd
    type: {WD}
    tasks:
      - id: first
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ read('mode.txt') }}}}"
      - id: nap
        type: io.kestra.plugin.core.flow.Sleep
        duration: "{{{{ outputs.first.value == 'sleep' ? 'PT60S' : 'PT0S' }}}}"
""", namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id, task_id="nap", state="RUNNING").exists(),
             30, "the nap to run")
    kill_execution(execution.id)
    get_storage().put(mode, b"wake")
    restart_execution(execution.id)
    execution = wait_for(lambda: _ended(execution.id), 60, "the restarted execution to end")
    assert execution.state == "SUCCESS"
    runs = {run.task_id: run for run in TaskRun.objects.filter(execution_id=execution.id)}
    assert sorted(runs) == ["first", "nap", "wd"]  # the killed attempt's task runs were removed
    assert [attempt["state"]["current"] for attempt in runs["wd"].attempts] == ["KILLED", "SUCCESS"]
    assert runs["first"].outputs == {"value": "wake"} and runs["nap"].state == "SUCCESS"

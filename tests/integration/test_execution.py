"""Flows run end to end through real executor, worker and indexer processes."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SEQUENTIAL = """
id: hello
namespace: tests
labels:
  team: data
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ flow.id }} from {{ labels.team }}"
  - id: nested
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: answer
        type: io.kestra.plugin.core.debug.Return
        format: "{{ 40 + 2 }}"
  - id: report
    type: io.kestra.core.tasks.log.Log
    message: "answer={{ outputs.answer.value }} task={{ task.id }} execution={{ execution.id }}"
"""


def test_a_sequential_flow_succeeds_with_outputs_and_logs(run_flow):
    outcome = run_flow(SEQUENTIAL, expect_logs=2)
    assert outcome.state == "SUCCESS"
    assert [run.task_id for run in outcome.runs] == ["greet", "nested", "answer", "report"]
    assert all(run.state == "SUCCESS" for run in outcome.runs)
    assert outcome.run("answer").outputs == {"value": "42"}
    assert outcome.run("answer").parent_task_run_id == outcome.run("nested").id
    assert outcome.logs_of("greet") == ["Hello hello from data"]
    assert outcome.logs_of("report") == [f"answer=42 task=report execution={outcome.execution.id}"]
    histories = [h["state"] for h in outcome.execution.state_history]
    assert histories == ["CREATED", "RUNNING", "SUCCESS"]
    assert [h["state"] for h in outcome.run("answer").state_history] == ["CREATED", "RUNNING", "SUCCESS"]
    assert len(outcome.run("answer").attempts) == 1


FAILING = """
id: failing
namespace: tests
tasks:
  - id: ok
    type: io.kestra.plugin.core.debug.Return
    format: fine
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "the disk is full"
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: unreachable
errors:
  - id: on-error
    type: io.kestra.plugin.core.log.Log
    message: "handling the failure"
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: "cleaning up"
"""


def test_a_failure_runs_errors_then_finally_and_fails_the_execution(run_flow):
    outcome = run_flow(FAILING, expect_logs=3)
    assert outcome.state == "FAILED"
    assert [run.task_id for run in outcome.runs] == ["ok", "boom", "on-error", "cleanup"]
    assert outcome.run("boom").state == "FAILED"
    assert "the disk is full" in outcome.logs_of("boom")[0]
    assert outcome.logs_of("cleanup") == ["cleaning up"]


def test_an_undefined_variable_fails_the_task_with_a_message_naming_it(run_flow):
    source = """
id: undefined
namespace: tests
tasks:
  - id: bad
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.nothing }}"
"""
    outcome = run_flow(source, expect_logs=1)
    assert outcome.state == "FAILED"
    assert "nothing" in outcome.logs_of("bad")[0]


def test_inputs_reach_the_tasks(run_flow):
    source = """
id: with-inputs
namespace: tests
inputs:
  - id: who
    type: STRING
tasks:
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: "hi {{ inputs.who }}"
"""
    outcome = run_flow(source, inputs={"who": "ada"})
    assert outcome.run("say").outputs == {"value": "hi ada"}


def test_error_logs_give_the_errors_branch_what_failed(run_flow):
    source = """
id: error-logs
namespace: tests
tasks:
  - id: failed
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "the upstream API answered 503"
errors:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: |
      {%- for log in errorLogs() -%}
      - task: {{ log.taskId }}, message: {{ log.message }}
      {%- endfor -%}
"""
    outcome = run_flow(source, expect_logs=2)
    assert outcome.state == "FAILED"
    assert outcome.logs_of("report") == ["- task: failed, message: the upstream API answered 503"]


def test_secrets_envs_and_globals_reach_tasks_and_secrets_never_reach_the_logs(run_flow):
    from orchestrator.models import LogEntry, TaskRun
    from tests.conftest import TEST_SECRET

    source = """
id: secrets
namespace: tests
tasks:
  - id: use
    type: io.kestra.plugin.core.log.Log
    message:
      - "token={{ secret('API_TOKEN') }}"
      - "shouting={{ secret('API_TOKEN') | upper }}"
      - "region={{ envs.region }} company={{ globals.company }}"
  - id: leak
    type: io.kestra.plugin.core.debug.Return
    format: "{{ secret('API_TOKEN') }}"
  - id: missing
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('NOPE') }}"
"""
    outcome = run_flow(source, expect_logs=4)
    assert outcome.logs_of("use") == ["token=********", "shouting=********", "region=eu-west company=acme"]
    assert outcome.run("leak").outputs == {"value": "********"}
    assert "Unable to find secret 'NOPE'" in outcome.logs_of("missing")[0]
    stored = " ".join(LogEntry.objects.values_list("message", flat=True))
    stored += " ".join(str(o) for o in TaskRun.objects.values_list("outputs", flat=True))
    assert TEST_SECRET not in stored and TEST_SECRET.upper() not in stored


PLUGIN_DEFAULTS = """
id: defaults
namespace: tests
pluginDefaults:
  - type: io.kestra.plugin.core.log
    values:
      message: "default message of {{ task.id }}"
      level: WARN
  - type: io.kestra.plugin.core.log.Log
    forced: true
    values:
      level: ERROR
tasks:
  - id: silent
    type: io.kestra.plugin.core.log.Log
  - id: spoken
    type: io.kestra.core.tasks.log.Log
    message: "my own message"
    level: INFO
"""


def test_plugin_defaults_fill_and_force_task_properties(run_flow):
    outcome = run_flow(PLUGIN_DEFAULTS, expect_logs=2)
    assert outcome.state == "SUCCESS"
    assert outcome.logs_of("silent") == ["default message of silent"]
    assert outcome.logs_of("spoken") == ["my own message"]
    assert {log.level for log in outcome.logs} == {"ERROR"}


WIDE = """
id: wide
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 60) | json }}"
    concurrencyLimit: 0
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "v{{ taskrun.value }}"
  - id: count
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.item | length }}"
"""


def test_many_tasks_ending_together_are_each_applied_once(run_flow):
    # Results finished meanwhile are applied in the same executor step as the one it handles;
    # their own messages then change nothing.
    outcome = run_flow(WIDE, timeout=120)
    assert outcome.state == "SUCCESS"
    items = [run for run in outcome.runs if run.task_id == "item"]
    assert len(items) == 60  # Pebble's range includes its end
    assert all(len(run.attempts) == 1 and run.state == "SUCCESS" for run in items)
    assert sorted(run.outputs["value"] for run in items) == sorted(f"v{n}" for n in range(1, 61))
    assert outcome.run("count").outputs == {"value": "60"}


EXIT_AND_ASSERT = """
id: exits
namespace: tests
inputs:
  - id: mode
    type: STRING
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Assert
    conditions:
      - "{{ inputs.mode != 'bad' }}"
      - "{{ 1 + 1 == 2 }}"
    errorMessage: "mode must not be bad"
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT30S
      - id: stop
        type: io.kestra.plugin.core.execution.Exit
        state: "{{ inputs.mode }}"
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
"""


def test_exit_ends_the_execution_in_the_state_given(run_flow):
    warned = run_flow(EXIT_AND_ASSERT, inputs={"mode": "WARNING"})
    assert warned.state == "WARNING"
    assert warned.run("stop").state == "SUCCESS" and "never" not in [run.task_id for run in warned.runs]
    killed = run_flow(EXIT_AND_ASSERT, inputs={"mode": "KILLED"})
    assert killed.state == "KILLED" and killed.run("slow").state == "KILLED"


def test_a_false_assertion_fails_the_task_naming_it(run_flow):
    outcome = run_flow(EXIT_AND_ASSERT, inputs={"mode": "bad"}, expect_logs=2)
    assert outcome.state == "FAILED"
    assert "1 of 2 assertion(s) failed: mode must not be bad" in outcome.run("check").attempts[0]["error"]
    assert any("inputs.mode != 'bad'" in line for line in outcome.logs_of("check"))


def test_a_task_run_shows_running_while_a_worker_runs_it(cluster, namespace):
    from orchestrator.models import TaskRun
    from orchestrator.repository import create_execution, deploy
    from tests.harness import finished, wait_for, with_namespace

    source = """
id: visible
namespace: tests
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
"""
    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: TaskRun.objects.filter(execution_id=execution.id, task_id="nap", state="RUNNING").exists(), 10,
             "the task run to show RUNNING")
    done = wait_for(lambda: finished(execution.id), 30, "the execution to end")
    nap = TaskRun.objects.get(execution=done)
    assert [h["state"] for h in nap.state_history] == ["CREATED", "RUNNING", "SUCCESS"]

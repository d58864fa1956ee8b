"""The log Fetch task through real executor, worker and indexer processes: the file it writes
holds the lines the repository has, filtered by task and level."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _lines(uri: str) -> list[dict]:
    from orchestrator.storage import get_storage

    with get_storage().get(uri) as stream:
        return [json.loads(line) for line in stream.read().decode("utf-8").splitlines()]


OWN = """
id: fetch-own
namespace: tests
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: ["first line", "second line"]
  - id: quiet
    type: io.kestra.plugin.core.log.Log
    level: DEBUG
    message: "a debug line"
  - id: fetch
    type: io.kestra.plugin.core.log.Fetch
  - id: only
    type: io.kestra.plugin.core.log.Fetch
    tasksId: [quiet]
    level: DEBUG
  - id: count
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.fetch.size }}"
"""


def test_fetch_writes_its_executions_lines_filtered_by_level_and_task(run_flow):
    outcome = run_flow(OWN, expect_logs=3)
    assert outcome.state == "SUCCESS"
    fetch = outcome.run("fetch").outputs
    assert fetch["size"] == 2 and outcome.run("count").outputs == {"value": "2"}
    assert fetch["uri"].endswith(f"/tasks/fetch/{outcome.run('fetch').id}/logs.ion")
    lines = _lines(fetch["uri"])
    # in time order; lines of the same millisecond (these two) have no order of their own
    assert sorted(line["message"] for line in lines) == ["first line", "second line"]
    assert [line["timestamp"] for line in lines] == sorted(line["timestamp"] for line in lines)
    assert lines[0]["taskId"] == "hello" and lines[0]["level"] == "INFO"
    assert lines[0]["executionId"] == outcome.execution.id and lines[0]["attemptNumber"] == 1
    only = outcome.run("only").outputs
    assert only["size"] == 1
    assert [line["message"] for line in _lines(only["uri"])] == ["a debug line"]


SOURCE = """
id: fetch-source
namespace: tests
tasks:
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: "something to look at"
"""

READER = """
id: fetch-reader
namespace: tests
inputs:
  - id: source
    type: STRING
tasks:
  - id: fetch
    type: io.kestra.plugin.core.log.Fetch
    executionId: "{{ inputs.source }}"
    namespace: "{{ flow.namespace }}"
    flowId: fetch-source
    level: WARN
"""

STRAY = """
id: fetch-stray
namespace: tests
inputs:
  - id: source
    type: STRING
tasks:
  - id: fetch
    type: io.kestra.plugin.core.log.Fetch
    executionId: "{{ inputs.source }}"
"""


def test_fetch_reads_another_flows_execution_only_when_named(run_flow):
    source = run_flow(SOURCE, expect_logs=1)
    outcome = run_flow(READER, inputs={"source": source.execution.id})
    assert outcome.state == "SUCCESS"
    fetched = outcome.run("fetch").outputs
    assert fetched["size"] == 1
    assert _lines(fetched["uri"])[0]["message"] == "something to look at"
    # Without namespace and flowId, it is looked for in the current flow, where it is not.
    stray = run_flow(STRAY, inputs={"source": source.execution.id}, expect_logs=1)
    assert stray.state == "FAILED"
    assert stray.logs_of("fetch") == [
        f"Unable to fetch the logs: execution {source.execution.id} of flow {stray.execution.namespace}.fetch-stray "
        f"does not exist"]

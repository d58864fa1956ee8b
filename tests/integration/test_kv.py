"""The KV store through real executor, worker and indexer processes: the tasks write and read the
internal storage on the worker, and `kv()` reads it while the worker renders."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def error_of(task_run_id: str) -> str:
    """The error a failed task run logged (the indexer may store it after the execution ends)."""
    from orchestrator.models import LogEntry
    from tests.harness import wait_for

    entry = wait_for(lambda: LogEntry.objects.filter(task_run_id=task_run_id, level="ERROR").first(),
                     30, f"the error log of task run {task_run_id}")
    return entry.message

SET_GET_LIST_DELETE = """
id: kv-roundtrip
namespace: tests
tasks:
  - id: set-count
    type: io.kestra.plugin.core.kv.Set
    key: report.count
    value: "{{ 40 + 2 }}"
    kvType: NUMBER
    kvDescription: rows in the last report
  - id: set-config
    type: io.kestra.plugin.core.kv.Set
    key: report.config
    value: '{"region": "eu", "retries": 3}'
    kvType: JSON
  - id: set-other
    type: io.kestra.plugin.core.kv.Set
    key: other
    value: plain text
  - id: get-count
    type: io.kestra.plugin.core.kv.Get
    key: report.count
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('report.count') + 1 }} {{ kv('report.config').region }} {{ kv('other') }}"
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
    prefix: report.
  - id: delete
    type: io.kestra.plugin.core.kv.Delete
    key: other
  - id: delete-again
    type: io.kestra.plugin.core.kv.Delete
    key: other
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('other', errorOnMissing=false) ?? 'gone' }}"
"""


def test_set_get_kv_keys_and_delete_in_later_tasks(run_flow, namespace):
    from orchestrator import kv

    outcome = run_flow(SET_GET_LIST_DELETE)
    assert outcome.state == "SUCCESS", [(run.task_id, run.state) for run in outcome.runs]
    assert outcome.run("get-count").outputs == {"value": 42}
    assert outcome.run("use").outputs == {"value": "43 eu plain text"}
    assert outcome.run("keys").outputs == {"keys": ["report.config", "report.count"]}
    assert outcome.run("delete").outputs == {"deleted": True}
    assert outcome.run("delete-again").outputs == {"deleted": False}
    assert outcome.run("after").outputs == {"value": "gone"}
    # What the worker wrote is what the module reads (the API and admin will use it).
    entry = kv.KVStore(namespace).entry("report.count")
    assert entry.type is kv.KVType.NUMBER and entry.description == "rows in the last report"


TTL = """
id: kv-ttl
namespace: tests
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: session
    value: short-lived
    ttl: PT3S
  - id: fresh
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('session') }}"
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT3.1S
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: session
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
  - id: required
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('session') }}"
"""


def test_an_expired_key_reads_as_absent_and_is_removed(run_flow, namespace):
    from orchestrator import kv
    from orchestrator.storage import get_storage

    outcome = run_flow(TTL)
    assert outcome.run("fresh").outputs == {"value": "short-lived"}
    assert outcome.run("get").outputs == {"value": None}
    assert outcome.run("keys").outputs == {"keys": []}
    assert outcome.state == "FAILED"
    assert outcome.run("required").state == "FAILED"
    assert "The key 'session' does not exist in the namespace" in error_of(outcome.run("required").id)
    assert not get_storage().exists(kv.kv_uri(namespace, "session"))


OVERWRITE = """
id: kv-overwrite
namespace: tests
tasks:
  - id: first
    type: io.kestra.plugin.core.kv.Set
    key: once
    value: first
  - id: second
    type: io.kestra.plugin.core.kv.Set
    key: once
    value: second
    overwrite: false
"""


def test_overwrite_false_refuses_an_existing_key(run_flow, namespace):
    from orchestrator import kv

    outcome = run_flow(OVERWRITE)
    assert outcome.state == "FAILED"
    assert outcome.run("first").state == "SUCCESS" and outcome.run("second").state == "FAILED"
    assert "the key already exists and `overwrite` is false" in error_of(outcome.run("second").id)
    assert kv.KVStore(namespace).get("once").value == "first"


BAD_KEY = """
id: kv-bad-key
namespace: tests
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: "my key/{{ 1 }}"
    value: x
"""


def test_a_bad_key_is_refused_with_the_reason(run_flow):
    outcome = run_flow(BAD_KEY)
    assert outcome.state == "FAILED"
    message = error_of(outcome.run("set").id)
    assert "The KV key 'my key/1' is not valid" in message
    assert "letters, digits, dots (.), underscores (_) and hyphens (-)" in message


def test_a_child_namespace_inherits_and_cannot_write_the_parent(cluster, namespace):
    from orchestrator import kv
    from orchestrator.repository import create_execution, deploy
    from tests.harness import finished, wait_for

    kv.KVStore(namespace).put("shared", "from the parent")

    def run(source: str, flow_namespace: str):
        flow, _ = deploy(source.replace("NAMESPACE", flow_namespace))
        execution = create_execution(flow.namespace, flow.flow_id, inputs={})
        return wait_for(lambda: finished(execution.id), 60, f"execution {execution.id}")

    child = f"{namespace}.child"
    execution = run("""
id: inherit
namespace: NAMESPACE
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('shared') }} / {{ kv('shared', 'PARENT') }}"
  - id: write-parent
    type: io.kestra.plugin.core.kv.Set
    namespace: PARENT
    key: shared
    value: overwritten
""".replace("PARENT", namespace), child)
    runs = {run.task_id: run for run in execution.task_runs.all()}
    assert runs["read"].outputs == {"value": "from the parent / from the parent"}
    assert runs["write-parent"].state == "FAILED"
    assert "may change only its own namespace" in error_of(runs["write-parent"].id)
    assert kv.KVStore(namespace).get("shared").value == "from the parent"

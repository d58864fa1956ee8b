"""The KV tasks and `kv()` as a worker runs them (run_job), on a local storage in a temporary
directory: no broker, no database."""

from __future__ import annotations

import pytest

from orchestrator import kv
from workers.runtime import run_job

NS = "company.team"
KV = "io.kestra.plugin.core.kv."


pytestmark = pytest.mark.usefixtures("local_storage")


def run(task: dict, namespace: str = NS) -> dict:
    job = {"v": 1, "executionId": "e1", "taskRunId": "r1", "attempt": 1, "task": {"id": "t", **task},
           "context": {"flow": {"id": "f", "namespace": namespace, "revision": 1}},
           "namespace": namespace, "flowId": "f"}
    return run_job(job)


def test_set_then_get_gives_the_typed_value():
    assert run({"type": KV + "Set", "key": "count", "value": "41", "kvType": "NUMBER"})["state"] == "SUCCESS"
    result = run({"type": KV + "Get", "key": "count"})
    assert result["state"] == "SUCCESS" and result["outputs"] == {"value": 41}


def test_kv_function_reads_the_flow_namespace_and_its_parents():
    run({"type": KV + "Set", "key": "region", "value": "eu"}, namespace="company")
    result = run({"type": "io.kestra.plugin.core.debug.Return", "format": "{{ kv('region') }}"})
    assert result["outputs"] == {"value": "eu"}
    result = run({"type": "io.kestra.plugin.core.debug.Return",
                  "format": "{{ kv('nothing', errorOnMissing=false) ?? 'none' }}"})
    assert result["outputs"] == {"value": "none"}


def test_kv_function_fails_on_a_missing_key_with_the_reason():
    result = run({"type": "io.kestra.plugin.core.debug.Return", "format": "{{ kv('nothing') }}"})
    assert result["state"] == "FAILED"
    assert "The key 'nothing' does not exist in the namespace 'company.team'." in result["error"]


def test_get_missing_is_null_unless_error_on_missing():
    assert run({"type": KV + "Get", "key": "nothing"})["outputs"] == {"value": None}
    result = run({"type": KV + "Get", "key": "nothing", "errorOnMissing": True})
    assert result["state"] == "FAILED" and "does not exist" in result["error"]


def test_a_bad_key_fails_the_task_with_the_rule():
    result = run({"type": KV + "Set", "key": "bad key!", "value": "x"})
    assert result["state"] == "FAILED"
    assert "'bad key!' is not valid" in result["error"] and "letters, digits" in result["error"]


def test_writing_a_parent_namespace_is_refused():
    result = run({"type": KV + "Set", "key": "k", "value": "x", "namespace": "company"})
    assert result["state"] == "FAILED" and "may change only its own namespace" in result["error"]
    assert run({"type": KV + "Set", "key": "k", "value": "x", "namespace": "company.team.sub"})["state"] == "SUCCESS"


def test_get_keys_and_delete():
    for key in ["report.a", "report.b", "other"]:
        run({"type": KV + "Set", "key": key, "value": 1})
    assert run({"type": KV + "GetKeys", "prefix": "report."})["outputs"] == {"keys": ["report.a", "report.b"]}
    assert run({"type": KV + "Delete", "key": "report.a"})["outputs"] == {"deleted": True}
    assert run({"type": KV + "Delete", "key": "report.a"})["outputs"] == {"deleted": False}
    result = run({"type": KV + "Delete", "key": "report.a", "errorOnMissing": True})
    assert result["state"] == "FAILED"
    assert run({"type": KV + "GetKeys"})["outputs"] == {"keys": ["other", "report.b"]}


def test_overwrite_false_fails_on_an_existing_key():
    run({"type": KV + "Set", "key": "once", "value": "first"})
    result = run({"type": KV + "Set", "key": "once", "value": "second", "overwrite": "{{ false }}"})
    assert result["state"] == "FAILED" and "`overwrite` is false" in result["error"]
    assert kv.KVStore(NS).get("once").value == "first"

"""ForEachItem's worker tasks — `<id>_split` and `<id>_merge` — run in this process against a local
storage in a temporary directory (no database, no broker), and the executor's helper that lets
a batch's subflow execution leave its outputs."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from executor.flowables.for_each_item import MERGE, SPLIT, subflow_outputs_prefix
from orchestrator.storage import get_storage, task_file_uri
from workers.context import RunContext
from workers.runtime import execute
from workers.tasktypes.for_each_item import items_of, parse_size
from workers.context import TaskFailure

NS, FLOW, EXECUTION = "company.team", "etl", "E1"


@pytest.fixture(autouse=True)
def storage(local_storage):
    return local_storage


def run(task: dict, task_run: str = "S1", parent: str = "P1", inputs: dict | None = None) -> dict:
    job = {"v": 1, "executionId": EXECUTION, "taskRunId": task_run, "attempt": 1, "task": task, "namespace": NS,
           "flowId": FLOW, "context": {"inputs": inputs or {}, "outputs": {}, "trigger": {},
                                       "taskrun": {"id": task_run, "parentId": parent}}}
    return execute(task, RunContext(job, lambda batch: None)) or {}


def items_file(storage, content: bytes, name: str = "items.csv") -> str:
    uri = task_file_uri(NS, FLOW, EXECUTION, "extract", "R0", name)
    storage.put(uri, content)
    return uri


def split(storage, content: bytes, **batch) -> tuple[dict, list[bytes]]:
    task = {"id": "each_split", "type": SPLIT, "items": items_file(storage, content)}
    if batch:
        task["batch"] = batch
    outputs = run(task)
    with storage.get(outputs["splits"]) as stream:
        listing = stream.read().decode().split("\n") if outputs["numberOfBatches"] else []
    contents = []
    for uri in listing:
        with storage.get(uri) as stream:
            contents.append(stream.read())
    return outputs, contents


def test_rows_make_batches_of_that_many_items_named_by_their_number(storage):
    outputs, batches = split(storage, b"".join(b"%d\n" % n for n in range(10)), rows=3)
    assert outputs["numberOfBatches"] == 4 and outputs["extension"] == ".csv"
    assert batches == [b"0\n1\n2\n", b"3\n4\n5\n", b"6\n7\n8\n", b"9\n"]
    assert get_storage().exists(task_file_uri(NS, FLOW, EXECUTION, "each_split", "S1", "3.csv"))


def test_rows_may_be_rendered_text_and_default_to_one(storage):
    outputs, batches = split(storage, b"a\nb", rows="{{ inputs.missing | default(2) }}")
    assert batches == [b"a\nb\n"]
    outputs, batches = split(storage, b"a\nb\n")
    assert batches == [b"a\n", b"b\n"]


def test_any_line_end_ends_an_item_and_the_separator_ends_it_in_the_batch(storage):
    _, batches = split(storage, b"a\r\nb\rc\nd", rows=2, separator=";")
    assert batches == [b"a;b;", b"c;d;"]


def test_bytes_end_a_batch_with_the_item_that_reaches_the_size(storage):
    _, batches = split(storage, b"aaaa\nbb\ncccccc\nd\n", bytes="6")
    assert batches == [b"aaaa\nbb\n", b"cccccc\n", b"d\n"]
    assert parse_size("10KB") == 10 * 1024 and parse_size("2MB") == 2 * 1024 ** 2 and parse_size(7) == 7
    with pytest.raises(TaskFailure):
        parse_size("lots")


def test_partitions_deal_the_items_in_turn_leaving_out_empty_ones(storage):
    _, batches = split(storage, b"1\n2\n3\n4\n5\n", partitions=3)
    assert batches == [b"1\n4\n", b"2\n5\n", b"3\n"]
    outputs, batches = split(storage, b"1\n", partitions=3)
    assert outputs["numberOfBatches"] == 1 and batches == [b"1\n"]


def test_an_empty_file_makes_no_batch(storage):
    outputs, batches = split(storage, b"")
    assert outputs["numberOfBatches"] == 0 and batches == []


def test_items_must_be_a_storage_uri_of_this_execution(storage):
    with pytest.raises(TaskFailure, match="not an internal storage URI"):
        run({"id": "each_split", "type": SPLIT, "items": "/etc/passwd"})
    other = task_file_uri(NS, FLOW, "OTHER", "t", "r", "x.txt")
    storage.put(other, b"x\n")
    with pytest.raises(TaskFailure, match="outside this task's scope"):
        run({"id": "each_split", "type": SPLIT, "items": other})
    with pytest.raises(TaskFailure, match="Unable to split the items"):
        run({"id": "each_split", "type": SPLIT, "items": task_file_uri(NS, FLOW, EXECUTION, "t", "r", "none.txt")})


def test_bytes_that_are_not_utf8_go_through_unchanged():
    import io

    assert list(items_of(io.BytesIO(b"\xff\xfe\nok\n"))) == [b"\xff\xfe", b"ok"]


def test_a_large_file_is_split_in_bounded_memory(storage):
    line = b"x" * 99 + b"\n"
    uri = items_file(storage, line * 200_000)  # 20 MB
    tracemalloc.start()
    try:
        outputs = run({"id": "each_split", "type": SPLIT, "items": uri, "batch": {"rows": 50_000}})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outputs["numberOfBatches"] == 4
    assert peak < 8 * 1024 * 1024


def test_merge_joins_the_outputs_in_batch_order(storage):
    prefix = subflow_outputs_prefix(NS, FLOW, EXECUTION, "each", "P1")
    for iteration in (10, 2, 0):
        storage.put(prefix.child(f"{iteration}.ion"), json.dumps({"value": iteration}).encode())  # no final \n
    outputs = run({"id": "each_merge", "type": MERGE, "forEachItem": "each", "wait": True}, task_run="M1")
    with storage.get(outputs["subflowOutputs"]) as stream:
        assert stream.read() == b'{"value": 0}\n{"value": 2}\n{"value": 10}\n'
    assert outputs["subflowOutputs"] == task_file_uri(NS, FLOW, EXECUTION, "each_merge", "M1", "outputs.ion")


def test_merge_has_no_output_without_subflow_outputs_or_without_wait(storage):
    assert run({"id": "each_merge", "type": MERGE, "forEachItem": "each", "wait": True}) == {}
    storage.put(subflow_outputs_prefix(NS, FLOW, EXECUTION, "each", "P1").child("0.ion"), b"{}\n")
    assert run({"id": "each_merge", "type": MERGE, "forEachItem": "each", "wait": False}) == {}

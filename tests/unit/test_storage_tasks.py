"""The storage tasks and the file functions, run in this process against a local storage in a
temporary directory (no database, no broker)."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from orchestrator.storage import input_file_uri, namespace_file_uri, task_file_uri
from orchestrator.templating import TemplateError
from workers import files
from workers.context import RunContext, TaskFailure
from workers.runtime import execute
from workers.tasktypes.storage import lines, parse_size, reversed_lines

NS, FLOW, EXECUTION = "company.team", "etl", "E1"
STORAGE = "io.kestra.plugin.core.storage."


@pytest.fixture(autouse=True)
def storage(local_storage):
    return local_storage


def context(task: dict | None = None, trigger: dict | None = None, execution: str = EXECUTION,
            flow: str = FLOW) -> RunContext:
    task = task or {"id": "t", "type": STORAGE + "Size"}
    job = {"v": 1, "executionId": execution, "taskRunId": "R1", "attempt": 1, "task": task, "namespace": NS,
           "flowId": flow, "context": {"inputs": {}, "outputs": {}, "vars": {"limit": 2},
                                       "trigger": trigger or {}}}
    return RunContext(job, lambda batch: None)


def run(task: dict, **kwargs) -> dict:
    ctx = context(task, **kwargs)
    return execute(task, ctx) or {}


def own_file(storage, name: str, content: bytes, execution: str = EXECUTION, flow: str = FLOW) -> str:
    uri = task_file_uri(NS, flow, execution, "earlier", "R0", name)
    storage.put(uri, content)
    return uri


def text(storage, uri: str) -> str:
    with storage.get(uri) as stream:
        return stream.read().decode()


# --- the functions ------------------------------------------------------------------------------

def test_read_returns_a_files_text_and_the_size_functions_measure_it(storage):
    uri = own_file(storage, "a.txt", "héllo".encode())
    empty = own_file(storage, "empty.txt", b"")
    ctx = context()
    assert ctx.render(f"{{{{ read('{uri}') }}}}") == "héllo"
    assert ctx.render(f"{{{{ fileSize('{uri}') }}}} {{{{ fileExists('{uri}') }}}}") == "6 true"
    assert ctx.render(f"{{{{ isFileEmpty('{empty}') }}}} {{{{ fileEmpty('{uri}') }}}}") == "true false"
    missing = uri.replace("a.txt", "b.txt")
    assert ctx.render(f"{{{{ fileExists('{missing}') }}}}") == "false"
    with pytest.raises(TemplateError, match="b.txt"):
        ctx.render(f"{{{{ read('{missing}') }}}}")


def test_read_of_a_namespace_file_path(storage):
    storage.put(namespace_file_uri(NS, "sql/query.sql"), b"SELECT 1")
    ctx = context()
    assert ctx.render("{{ read('sql/query.sql') }}") == "SELECT 1"
    assert ctx.render("{{ fileSize('sql/query.sql') }}") == "8"
    with pytest.raises(TemplateError, match="'..' segments are not allowed"):
        ctx.render("{{ read('../other/_files/x') }}")


def test_read_of_another_executions_file_is_refused_with_the_reason(storage):
    other = own_file(storage, "secret.txt", b"no", execution="OTHER")
    with pytest.raises(TemplateError) as refused:
        context().render(f"{{{{ read('{other}') }}}}")
    message = str(refused.value)
    assert "secret.txt" in message and "outside this task's scope" in message
    assert "own execution's files" in message


def test_a_subflow_reads_its_parents_files_and_no_other_trigger_names_a_parent(storage):
    parent_file = own_file(storage, "p.txt", b"from parent", execution="PARENT", flow="parent-flow")
    variables = {"executionId": "PARENT", "namespace": NS, "flowId": "parent-flow"}
    subflow = {"id": "call", "type": "io.kestra.plugin.core.flow.Subflow", "variables": variables}
    assert context(trigger=subflow).render(f"{{{{ read('{parent_file}') }}}}") == "from parent"
    alias = {**subflow, "type": "io.kestra.core.tasks.flows.Subflow"}
    assert context(trigger=alias).render(f"{{{{ read('{parent_file}') }}}}") == "from parent"
    webhook = {"id": "hook", "type": "io.kestra.plugin.core.trigger.Webhook", "variables": variables}
    with pytest.raises(TemplateError, match="outside this task's scope"):
        context(trigger=webhook).render(f"{{{{ read('{parent_file}') }}}}")
    elsewhere = own_file(storage, "x.txt", b"x", execution="THIRD", flow="parent-flow")
    with pytest.raises(TemplateError, match="its parent execution PARENT's files"):
        context(trigger=subflow).render(f"{{{{ read('{elsewhere}') }}}}")


def test_read_is_bounded(storage, monkeypatch):
    monkeypatch.setattr(files, "MAX_READ_BYTES", 4)
    uri = own_file(storage, "big.txt", b"12345")
    with pytest.raises(TemplateError, match="larger than"):
        context().render(f"{{{{ read('{uri}') }}}}")
    binary = own_file(storage, "bin", b"\xff\xfe")
    with pytest.raises(TemplateError, match="not UTF-8 text"):
        context().render(f"{{{{ read('{binary}') }}}}")


# --- the tasks ----------------------------------------------------------------------------------

def test_write_stores_content_under_the_task_run(storage):
    outputs = run({"id": "w", "type": STORAGE + "Write", "content": "a {{ vars.limit }}", "extension": "txt"})
    assert outputs["uri"] == task_file_uri(NS, FLOW, EXECUTION, "w", "R1", "w.txt")
    assert text(storage, outputs["uri"]) == "a 2"


def test_concat_joins_files_in_order_with_a_separator(storage):
    first, second = own_file(storage, "1.txt", b"one"), own_file(storage, "2.txt", b"two")
    outputs = run({"id": "c", "type": STORAGE + "Concat", "files": [first, second], "separator": "\n",
                   "extension": ".csv"})
    assert outputs["uri"].endswith("/c.csv")
    assert text(storage, outputs["uri"]) == "one\ntwo"
    as_json = run({"id": "c", "type": STORAGE + "Concat", "files": json.dumps([second, first])})
    assert text(storage, as_json["uri"]) == "twoone" and as_json["uri"].endswith(".tmp")
    other = own_file(storage, "3.txt", b"x", execution="OTHER")
    with pytest.raises(TaskFailure, match=r"files\[1\]: .*outside this task's scope"):
        run({"id": "c", "type": STORAGE + "Concat", "files": [first, other]})


def test_size_and_delete(storage):
    uri = own_file(storage, "f.txt", b"12345")
    assert run({"id": "s", "type": STORAGE + "Size", "uri": uri}) == {"size": 5}
    assert run({"id": "d", "type": STORAGE + "Delete", "uri": uri}) == {"uri": uri, "deleted": True}
    assert not storage.exists(uri)
    assert run({"id": "d", "type": STORAGE + "Delete", "uri": uri}) == {"uri": uri, "deleted": False}
    with pytest.raises(TaskFailure, match="no file"):
        run({"id": "d", "type": STORAGE + "Delete", "uri": uri, "errorOnMissing": True})
    shared = namespace_file_uri(NS, "keep.txt")
    storage.put(shared, b"k")
    with pytest.raises(TaskFailure, match="cannot be changed by this task"):
        run({"id": "d", "type": STORAGE + "Delete", "uri": shared})
    assert storage.exists(shared)


def test_reverse_puts_the_last_line_first(storage):
    uri = own_file(storage, "n.csv", b"1\n2\r\n3\n")
    outputs = run({"id": "r", "type": STORAGE + "Reverse", "from": uri})
    assert outputs["uri"].endswith("/r.csv")
    assert text(storage, outputs["uri"]) == "3\n2\n1\n"


@pytest.mark.parametrize("content", [b"", b"\n", b"a", b"a\n\nb", b"a\nb\n\n", b"\r\n"])
def test_reversed_lines_are_the_lines_backwards(tmp_path, content, monkeypatch):
    monkeypatch.setattr("workers.tasktypes.storage.CHUNK_SIZE", 2)
    path = tmp_path / "f"
    path.write_bytes(content)
    forward = list(lines(path.open("rb"), "f"))
    assert list(reversed_lines(path, "f")) == forward[::-1]


@pytest.mark.parametrize("way, expected", [
    ({"rows": 2}, ["1\n2\n", "3\n4\n", "5\n"]),
    ({"bytes": "4"}, ["1\n2\n", "3\n4\n", "5\n"]),
    ({"partitions": 2}, ["1\n3\n5\n", "2\n4\n"]),
    ({"partitions": 9}, ["1\n", "2\n", "3\n", "4\n", "5\n"]),
    ({"regexPattern": r"^(\d)", "separator": ";"}, ["1;", "2;", "3;", "4;", "5;"]),
])
def test_split(storage, way, expected):
    uri = own_file(storage, "n.txt", b"1\n2\n3\n4\n5\n")
    outputs = run({"id": "split", "type": STORAGE + "Split", "from": uri, **way})
    assert [text(storage, part) for part in outputs["uris"]] == expected
    assert outputs["uris"][0] == task_file_uri(NS, FLOW, EXECUTION, "split", "R1", "split-1.txt")


def test_split_needs_exactly_one_way_and_reads_sizes():
    with pytest.raises(Exception, match="exactly one of bytes, rows, partitions or regexPattern"):
        run({"id": "split", "type": STORAGE + "Split", "from": "kestra:///x", "rows": 1, "bytes": "1KB"})
    assert parse_size("10MB") == 10 * 1024 * 1024 and parse_size("200 kb") == 200 * 1024 and parse_size(7) == 7
    with pytest.raises(TaskFailure, match="not a size"):
        parse_size("ten")


def test_split_streams_a_large_file(storage, tmp_path):
    source = tmp_path / "big.txt"
    with open(source, "wb") as out:
        for index in range(400_000):
            out.write(b"%040d\n" % index)  # 41 bytes a line, about 16 MiB
    uri = task_file_uri(NS, FLOW, EXECUTION, "earlier", "R0", "big.txt")
    storage.put(uri, source)
    tracemalloc.start()
    try:
        outputs = run({"id": "split", "type": STORAGE + "Split", "from": uri, "bytes": "4MB"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(outputs["uris"]) == 4
    assert sum(storage.size(part) for part in outputs["uris"]) == source.stat().st_size
    assert peak < 8 * 1024 * 1024


ITEMS = b'{"id": 1, "email": "a@x"}\n{id:2,email:"b@x",at:2024-01-15T10:00:00Z}\n\n{id:3,email:"a@x"}\n'


def test_filter_items_keeps_or_drops_by_the_condition(storage):
    uri = own_file(storage, "items.ion", ITEMS)
    outputs = run({"id": "f", "type": STORAGE + "FilterItems", "from": uri,
                   "filterCondition": "{{ id >= vars.limit }}"})
    assert text(storage, outputs["uri"]).splitlines() == ['{id:2,email:"b@x",at:2024-01-15T10:00:00Z}',
                                                          '{id:3,email:"a@x"}']
    assert (outputs["processedItemsTotal"], outputs["droppedItemsTotal"]) == (3, 1)
    excluded = run({"id": "f", "type": STORAGE + "FilterItems", "from": uri, "filterType": "EXCLUDE",
                    "filterCondition": "{{ email == 'a@x' }}"})
    assert text(storage, excluded["uri"]).splitlines() == ['{id:2,email:"b@x",at:2024-01-15T10:00:00Z}']


def test_filter_items_on_errors_and_nulls(storage):
    uri = own_file(storage, "items.jsonl", b'{"a": 1}\n{"b": 2}\n{"a": null}\n')
    with pytest.raises(TaskFailure, match=r"filterCondition fails: .* on line 2: \{\"b\": 2\}"):
        run({"id": "f", "type": STORAGE + "FilterItems", "from": uri, "filterCondition": "{{ a }}"})
    kept = run({"id": "f", "type": STORAGE + "FilterItems", "from": uri, "filterCondition": "{{ a }}",
                "errorOrNullBehavior": "INCLUDE"})
    assert text(storage, kept["uri"]) == '{"a": 1}\n{"b": 2}\n{"a": null}\n'
    assert kept["uri"].endswith(".jsonl")
    dropped = run({"id": "f", "type": STORAGE + "FilterItems", "from": uri, "filterCondition": "{{ a }}",
                   "errorOrNullBehavior": "EXCLUDE"})
    assert text(storage, dropped["uri"]) == '{"a": 1}\n'
    broken = own_file(storage, "broken.ion", b'{"a": 1}\n{a:\n')
    with pytest.raises(TaskFailure, match="line 2 is not a JSON or Ion value"):
        run({"id": "f", "type": STORAGE + "FilterItems", "from": broken, "filterCondition": "{{ true }}"})


def test_deduplicate_items_keeps_the_last_item_of_each_key(storage):
    uri = own_file(storage, "items.ion", ITEMS)
    outputs = run({"id": "d", "type": STORAGE + "DeduplicateItems", "from": uri, "expr": "{{ email }}"})
    assert text(storage, outputs["uri"]).splitlines() == ['{id:2,email:"b@x",at:2024-01-15T10:00:00Z}',
                                                          '{id:3,email:"a@x"}']
    assert (outputs["numKeys"], outputs["processedItemsTotal"], outputs["droppedItemsTotal"]) == (2, 3, 1)


def test_purge_deletes_every_file_of_the_execution_only(storage):
    mine = [own_file(storage, "a", b"a"), input_file_uri(NS, FLOW, EXECUTION, "f", "in.csv")]
    storage.put(mine[1], b"in")
    other = own_file(storage, "a", b"a", execution="OTHER")
    outputs = run({"id": "p", "type": STORAGE + "PurgeCurrentExecutionFiles"})
    assert sorted(outputs["uris"]) == sorted(mine)
    assert not any(storage.exists(uri) for uri in mine) and storage.exists(other)


def test_local_files_stores_created_files(storage):
    source = own_file(storage, "in.json", b"{}")
    outputs = run({"id": "lf", "type": STORAGE + "LocalFiles",
                   "inputs": {"hello.txt": "Hello", "sub/dir/copy.json": source, "skip.md": "x"},
                   "outputs": ["*.txt", "sub/**"]})
    assert sorted(outputs["uris"]) == ["hello.txt", "sub/dir/copy.json"]
    assert text(storage, outputs["uris"]["sub/dir/copy.json"]) == "{}"
    assert outputs["uris"]["hello.txt"] == task_file_uri(NS, FLOW, EXECUTION, "lf", "R1", "hello.txt")
    with pytest.raises(TaskFailure, match="relative path"):
        run({"id": "lf", "type": STORAGE + "LocalFiles", "inputs": {"../x": "no"}})

"""Files of the internal storage through real executor, worker and indexer processes: the storage
tasks, the file functions, FILE inputs, and the scope a task reads within."""

from __future__ import annotations

import pytest

from orchestrator import repository
from orchestrator.models import Execution
from orchestrator.repository import InvalidInputs, create_execution, deploy
from orchestrator.storage import get_storage, input_file_uri, namespace_file_uri, task_file_uri
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WRITE_THEN_READ = """
id: write-read
namespace: tests
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "hello {{ flow.id }}"
    extension: .txt
  - id: empty
    type: io.kestra.plugin.core.storage.Write
    content: ""
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ read(outputs.write.uri) }} / {{ fileSize(outputs.write.uri) }} / {{ fileExists(outputs.write.uri) }}
      / {{ isFileEmpty(outputs.empty.uri) }} / {{ read('greeting.txt') }}
"""


def test_write_then_read_and_measure_in_a_later_task(run_flow, namespace):
    get_storage().put(namespace_file_uri(namespace, "greeting.txt"), b"from the namespace")
    outcome = run_flow(WRITE_THEN_READ)
    assert outcome.state == "SUCCESS", [entry.message for entry in outcome.logs]
    uri = outcome.run("write").outputs["uri"]
    run = outcome.run("write")
    assert uri == task_file_uri(namespace, "write-read", outcome.execution.id, "write", run.id, "write.txt")
    assert outcome.run("use").outputs == {"value": "hello write-read / 16 / true / true / from the namespace"}


SPLIT_FOR_EACH = """
id: split-each
namespace: tests
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "a\\nb\\nc\\nd\\ne\\n"
    extension: .csv
  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{ outputs.write.uri }}"
    rows: 2
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ outputs.split.uris }}"
    tasks:
      - id: part
        type: io.kestra.plugin.core.debug.Return
        format: "{{ read(taskrun.value) | trim | replace({'\\n': '+'}) }}"
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: "{{ outputs.split.uris }}"
    separator: "--\\n"
  - id: reverse
    type: io.kestra.plugin.core.storage.Reverse
    from: "{{ outputs.concat.uri }}"
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.reverse.uri }}"
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.reverse.uri) }}"
"""


def test_split_files_feed_a_for_each_and_are_joined_and_reversed(run_flow):
    outcome = run_flow(SPLIT_FOR_EACH)
    assert outcome.state == "SUCCESS", [entry.message for entry in outcome.logs]
    uris = outcome.run("split").outputs["uris"]
    assert len(uris) == 3 and all(uri.endswith(".csv") for uri in uris)
    parts = {run.value: run.outputs["value"] for run in outcome.runs if run.task_id == "part"}
    assert sorted(parts.values()) == ["a+b", "c+d", "e"]
    assert outcome.run("show").outputs["value"] == "e\n--\nd\nc\n--\nb\na\n"
    assert outcome.run("size").outputs == {"size": len("e\n--\nd\nc\n--\nb\na\n")}


ITEMS = """
id: items
namespace: tests
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    extension: .ion
    content: |
      {id:1,email:"a@x",amount:10.5}
      {"id": 2, "email": "b@x", "amount": 3}
      {id:3,email:"a@x",amount:7e0}
  - id: filter
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.write.uri }}"
    filterCondition: "{{ amount > 5 }}"
  - id: dedup
    type: io.kestra.plugin.core.storage.DeduplicateItems
    from: "{{ outputs.write.uri }}"
    expr: "{{ email }}"
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.filter.uri) }}|{{ read(outputs.dedup.uri) }}"
  - id: delete
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.filter.uri }}"
  - id: gone
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fileExists(outputs.filter.uri) }}"
  - id: purge
    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles
"""


def test_items_are_filtered_deduplicated_deleted_and_purged(run_flow, namespace):
    outcome = run_flow(ITEMS)
    assert outcome.state == "SUCCESS", [entry.message for entry in outcome.logs]
    filtered, deduplicated = outcome.run("show").outputs["value"].split("|")
    assert filtered == '{id:1,email:"a@x",amount:10.5}\n{id:3,email:"a@x",amount:7e0}\n'
    assert deduplicated == '{"id": 2, "email": "b@x", "amount": 3}\n{id:3,email:"a@x",amount:7e0}\n'
    assert outcome.run("filter").outputs["droppedItemsTotal"] == 1
    assert outcome.run("dedup").outputs["numKeys"] == 2
    assert outcome.run("delete").outputs["deleted"] is True
    assert outcome.run("gone").outputs == {"value": "false"}
    purged = outcome.run("purge").outputs["uris"]
    assert sorted(purged) == sorted([outcome.run("write").outputs["uri"], outcome.run("dedup").outputs["uri"]])
    assert get_storage().list(f"kestra:///{namespace.replace('.', '/')}/items/executions/{outcome.execution.id}") == []


STEAL = """
id: steal
namespace: tests
inputs:
  - id: target
    type: STRING
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.target) }}"
"""


def test_a_read_of_another_executions_file_is_refused_with_the_reason(run_flow, namespace):
    other = task_file_uri(namespace, "steal", "SOMEONE-ELSE", "t", "r", "secret.txt")
    get_storage().put(other, b"not yours")
    outcome = run_flow(STEAL, inputs={"target": other}, expect_logs=1)
    assert outcome.state == "FAILED"
    message = " ".join(outcome.logs_of("read"))
    assert "secret.txt" in message and "outside this task's scope" in message
    assert f"a task of execution {outcome.execution.id} may read only its own execution's files" in message
    assert "not yours" not in message


CHILD = """
id: child
namespace: tests
inputs:
  - id: data
    type: FILE
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.data) }}"
"""

PARENT = """
id: parent
namespace: tests
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "made by the parent"
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {namespace}
    flowId: child
    inputs:
      data: "{{{{ outputs.write.uri }}}}"
"""


def test_a_subflow_reads_the_file_its_parent_passes(run_flow, namespace):
    deploy(with_namespace(CHILD, namespace))
    outcome = run_flow(PARENT.format(namespace=namespace), timeout=90)
    assert outcome.state == "SUCCESS", [entry.message for entry in outcome.logs]
    child = Execution.objects.get(id=outcome.run("call").outputs["executionId"])
    shown = child.task_runs.get(task_id="show")
    assert shown.outputs == {"value": "made by the parent"}


UPLOAD = """
id: upload
namespace: tests
inputs:
  - id: data
    type: FILE
    allowedFileExtensions: [".csv"]
  - id: count
    type: INT
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.data) }} x{{ inputs.count }}"
"""


def test_an_uploaded_file_input_is_stored_with_the_execution_and_read_by_its_tasks(cluster, namespace, tmp_path):
    flow, _ = deploy(with_namespace(UPLOAD, namespace))
    local = tmp_path / "rows.csv"
    local.write_text("a,b\n")
    execution = create_execution(flow.namespace, "upload", inputs={"count": "2"}, files={"data": local})
    uri = input_file_uri(namespace, "upload", execution.id, "data", "rows.csv")
    assert execution.inputs["data"] == uri
    execution = wait_for(lambda: finished(execution.id), 60, "the upload execution")
    assert execution.state == "SUCCESS"
    assert execution.task_runs.get(task_id="show").outputs == {"value": "a,b\n x2"}


def test_an_upload_is_not_stored_when_the_inputs_are_refused_and_deleted_when_creation_fails(
        cluster, namespace, tmp_path, monkeypatch):
    flow, _ = deploy(with_namespace(UPLOAD, namespace))
    local = tmp_path / "rows.csv"
    local.write_text("a,b\n")
    prefix = f"kestra:///{namespace.replace('.', '/')}/upload"
    with pytest.raises(InvalidInputs, match="count"):
        create_execution(flow.namespace, "upload", inputs={"count": "many"}, files={"data": local})
    assert get_storage().list(prefix) == []

    def broken(*args, **kwargs):
        assert len(get_storage().list(prefix)) == 1  # stored before the row is written
        raise RuntimeError("the database went away")

    monkeypatch.setattr(repository, "_insert_execution", broken)
    with pytest.raises(RuntimeError, match="went away"):
        create_execution(flow.namespace, "upload", inputs={"count": "1"}, files={"data": local})
    assert get_storage().list(prefix) == []


def test_a_given_file_uri_must_exist_and_be_readable_by_the_execution(cluster, namespace):
    flow, _ = deploy(with_namespace(UPLOAD, namespace))
    shared = namespace_file_uri(namespace, "data/rows.csv")
    with pytest.raises(InvalidInputs, match="no such file in the internal storage"):
        create_execution(flow.namespace, "upload", inputs={"data": shared, "count": "1"})
    get_storage().put(shared, b"shared\n")
    execution = create_execution(flow.namespace, "upload", inputs={"data": shared, "count": "1"})
    assert wait_for(lambda: finished(execution.id), 60, "execution").state == "SUCCESS"
    other = task_file_uri(namespace, "other", "E", "t", "r", "x.csv")
    get_storage().put(other, b"x")
    with pytest.raises(InvalidInputs, match="cannot be read by this execution"):
        create_execution(flow.namespace, "upload", inputs={"data": other, "count": "1"})


def test_deleting_an_execution_in_the_admin_deletes_its_files_after_commit(cluster, namespace, tmp_path):
    from django.contrib import admin
    from django.db import transaction

    flow, _ = deploy(with_namespace(UPLOAD, namespace))
    local = tmp_path / "rows.csv"
    local.write_text("a,b\n")
    executions = [create_execution(flow.namespace, "upload", inputs={"count": "1"}, files={"data": local})
                  for _ in range(2)]
    for execution in executions:
        wait_for(lambda: finished(execution.id), 60, "execution")
    prefix = f"kestra:///{namespace.replace('.', '/')}/upload/executions/"
    assert len(get_storage().list(prefix)) == 2
    model_admin = admin.site._registry[Execution]
    with transaction.atomic():
        model_admin.delete_model(None, Execution.objects.get(id=executions[0].id))
        assert len(get_storage().list(prefix)) == 2  # not before the deletion commits
    assert [stored.uri for stored in get_storage().list(prefix)] == [executions[1].inputs["data"]]
    model_admin.delete_queryset(None, Execution.objects.filter(id=executions[1].id))
    assert get_storage().list(prefix) == []

"""ForEachItem through real processes: a file of 10 items split by 3 rows starts 4 subflow
executions, each given its own batch file, and their outputs are merged; failing subflows fail
the task (with `transmitFailed`) or not."""

from __future__ import annotations

import json

import pytest

from orchestrator.models import Execution, TaskRun
from orchestrator.repository import create_execution, deploy
from orchestrator.storage import get_storage, namespace_file_uri
from tests.harness import finished, wait_for, with_namespace
from tests.unit.kestra_corpus import MISSING_REASON, VALIDS

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BATCH = """
id: batch
namespace: tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: take
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) }}"
outputs:
  - id: items
    type: STRING
    value: "{{ inputs.items }}"
  - id: content
    type: STRING
    value: "{{ outputs.take.value }}"
"""

FAILING = """
id: failing
namespace: tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
"""

PARENT = """
id: fan
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{items}"
    batch:
      rows: 3
    namespace: {namespace}
    flowId: {child}
    transmitFailed: {transmit}
    inputs:
      items: "{{{{ taskrun.items }}}}"
    labels:
      batch: "{{{{ taskrun.iteration }}}}"
"""

AFTER = """
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.each_merge.subflowOutputs }}"
"""


def _items(namespace: str) -> str:
    uri = namespace_file_uri(namespace, "items.txt")
    get_storage().put(uri, "".join(f"item {n}\n" for n in range(10)).encode())
    return uri


def _parent(namespace: str, child: str, transmit: bool = True) -> str:
    return PARENT.format(items=_items(namespace), namespace=namespace, child=child,
                         transmit="true" if transmit else "false")


def _read(uri: str) -> str:
    with get_storage().get(uri) as stream:
        return stream.read().decode()


def test_each_batch_runs_in_its_own_subflow_and_their_outputs_are_merged(run_flow, namespace):
    deploy(with_namespace(BATCH, namespace))
    outcome = run_flow(_parent(namespace, "batch") + AFTER, timeout=90)
    assert outcome.state == "SUCCESS"
    assert [run.task_id for run in outcome.runs] == ["each", "each_split", "each_items", "each_merge", "after"]
    assert all(run.state == "SUCCESS" for run in outcome.runs)
    assert outcome.run("each_split").outputs["numberOfBatches"] == 4
    assert outcome.run("each_items").outputs == {
        "numberOfBatches": 4, "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 4}}

    children = sorted(Execution.objects.filter(parent_id=outcome.execution.id),
                      key=lambda child: child.trigger["variables"]["taskRunIteration"])
    assert [child.trigger["variables"]["taskRunIteration"] for child in children] == [0, 1, 2, 3]
    batches = [_read(child.inputs["items"]) for child in children]
    assert batches == ["item 0\nitem 1\nitem 2\n", "item 3\nitem 4\nitem 5\n", "item 6\nitem 7\nitem 8\n",
                       "item 9\n"]
    for iteration, child in enumerate(children):
        labels = {label["key"]: label["value"] for label in child.labels}
        assert labels["batch"] == str(iteration) and labels["system.correlationId"] == outcome.execution.id
        assert child.trigger["type"] == "io.kestra.plugin.core.flow.ForEachItem"
        assert child.trigger["variables"]["taskId"] == "each_items"

    merged = outcome.run("each_merge").outputs["subflowOutputs"]
    assert outcome.run("after").outputs == {"value": merged}
    lines = [json.loads(line) for line in _read(merged).splitlines()]
    assert lines == [{"items": child.inputs["items"], "content": batch} for child, batch in zip(children, batches)]


@pytest.mark.parametrize("transmit", [True, False])
def test_failing_subflows_fail_the_task_only_with_transmit_failed(run_flow, namespace, transmit):
    deploy(with_namespace(FAILING, namespace))
    outcome = run_flow(_parent(namespace, "failing", transmit), timeout=90)
    assert Execution.objects.filter(parent_id=outcome.execution.id, state="FAILED").count() == 4
    assert outcome.run("each_items").outputs["iterations"] == {"CREATED": 0, "RUNNING": 0, "FAILED": 4}
    if transmit:
        assert outcome.state == "FAILED"
        assert [run.task_id for run in outcome.runs] == ["each", "each_split", "each_items"]
        assert outcome.run("each_items").state == "FAILED" and outcome.run("each").state == "FAILED"
    else:
        assert outcome.state == "SUCCESS"
        assert outcome.run("each_merge").outputs is None  # the failed subflows have no outputs


def test_a_subflow_that_does_not_exist_fails_the_task_with_the_reason(run_flow, namespace):
    outcome = run_flow(_parent(namespace, "nowhere"), timeout=60, expect_logs=1)
    assert outcome.state == "FAILED"
    assert outcome.run("each_items").state == "FAILED"
    assert any("nowhere does not exist" in line for line in outcome.logs_of("each_items"))


@pytest.mark.skipif(not VALIDS.is_dir(), reason=MISSING_REASON)
def test_kestras_for_each_item_outputs_flow(cluster, namespace, tmp_path):
    """Kestra's own flows (for-each-item-outputs and its subflow) with its test's file: 102 items
    by 4 make 26 subflows, whose outputs make a merged file of 26 lines."""
    for name in ("for-each-item-outputs-subflow.yaml", "for-each-item-outputs.yaml"):
        source = (VALIDS / name).read_text().replace("namespace: io.kestra.tests", f"namespace: {namespace}")
        deploy(source)
    local = tmp_path / "file.txt"
    local.write_text("".join(f"{n:>20}\n" for n in range(102)))
    execution = create_execution(namespace, "for-each-item-outputs", files={"file": local})
    execution = wait_for(lambda: finished(execution.id), 180, "the for-each-item-outputs execution")
    assert execution.state == "SUCCESS"
    runs = list(execution.task_runs.order_by("seq"))
    assert [run.task_id for run in runs] == ["each", "each_split", "each_items", "each_merge", "return"]
    assert runs[2].outputs == {"numberOfBatches": 26, "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 26}}
    merged = runs[3].outputs["subflowOutputs"]
    assert runs[4].outputs == {"value": merged}
    lines = _read(merged).splitlines()
    assert len(lines) == 26 and json.loads(lines[0]) == {"value": "".join(f"{n:>20}\n" for n in range(4))}
    children = Execution.objects.filter(parent_id=execution.id)
    assert sorted(child.trigger["variables"]["taskRunIteration"] for child in children) == list(range(26))


SLEEPING = """
id: sleeping
namespace: tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""


def test_killing_the_parent_kills_its_running_subflows(cluster, namespace):
    from executor.service import kill_execution

    deploy(with_namespace(SLEEPING, namespace))
    flow, _ = deploy(with_namespace(_parent(namespace, "sleeping"), namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: Execution.objects.filter(parent_id=execution.id, state="RUNNING").count() == 4 or None, 60,
             "the four subflows running")
    kill_execution(execution.id)
    execution = wait_for(lambda: finished(execution.id), 60, "the killed parent")
    assert execution.state == "KILLED"
    wait_for(lambda: all(child.state == "KILLED" for child in Execution.objects.filter(parent_id=execution.id))
             or None, 60, "the subflows killed")


# Fails on the batch holding item 3 while the namespace file `mode.txt` says so.
PICKY = """
id: picky
namespace: tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ read('mode.txt') == 'fail' and (read(inputs.items) contains 'item 3') }}"
  - id: take
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) }}"
outputs:
  - id: content
    type: STRING
    value: "{{ outputs.take.value }}"
"""


def test_restarting_the_parent_restarts_the_failed_batches_and_keeps_the_others(cluster, namespace):
    from executor.service import restart_execution

    get_storage().put(namespace_file_uri(namespace, "mode.txt"), b"fail")
    deploy(with_namespace(PICKY, namespace))
    flow, _ = deploy(with_namespace(_parent(namespace, "picky") + AFTER, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    execution = wait_for(lambda: finished(execution.id), 90, "the parent to fail")
    assert execution.state == "FAILED"
    before = {child.id: child for child in Execution.objects.filter(parent_id=execution.id)}
    failed = [child for child in before.values() if child.state == "FAILED"]
    assert len(before) == 4 and [child.trigger["variables"]["taskRunIteration"] for child in failed] == [1]

    get_storage().put(namespace_file_uri(namespace, "mode.txt"), b"pass")
    restart_execution(execution.id)
    execution = wait_for(lambda: finished(execution.id), 90, "the restarted parent to end")
    assert execution.state == "SUCCESS"
    after = {child.id: child for child in Execution.objects.filter(parent_id=execution.id)}
    assert after.keys() == before.keys()  # no new subflow execution: the failed one ran again
    restarted = after[failed[0].id]
    assert restarted.state == "SUCCESS"
    assert [h["state"] for h in restarted.state_history][-4:] == ["FAILED", "RESTARTED", "RUNNING", "SUCCESS"]
    assert {"key": "system.restarted", "value": "true"} in restarted.labels
    for child_id, child in after.items():  # the batches that had succeeded did not run again
        if child_id != failed[0].id:
            assert child.state_history == before[child_id].state_history

    runs = {run.task_id: run for run in execution.task_runs.all()}
    assert runs["each_items"].outputs == {"numberOfBatches": 4, "iterations": {"CREATED": 0, "RUNNING": 0,
                                                                                 "SUCCESS": 4}}
    merged = runs["each_merge"].outputs["subflowOutputs"]
    assert runs["after"].outputs == {"value": merged}
    assert [json.loads(line)["content"] for line in _read(merged).splitlines()] == [
        "item 0\nitem 1\nitem 2\n", "item 3\nitem 4\nitem 5\n", "item 6\nitem 7\nitem 8\n", "item 9\n"]


# Sleeps for a minute while the namespace file `mode.txt` says so.
DROWSY = """
id: drowsy
namespace: tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: "{{ read('mode.txt') == 'sleep' ? 'PT60S' : 'PT0S' }}"
"""


def test_restarting_a_killed_parent_restarts_its_killed_subflows(cluster, namespace):
    from executor.service import kill_execution, restart_execution

    mode = namespace_file_uri(namespace, "mode.txt")
    get_storage().put(mode, b"sleep")
    deploy(with_namespace(DROWSY, namespace))
    flow, _ = deploy(with_namespace(_parent(namespace, "drowsy"), namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    wait_for(lambda: Execution.objects.filter(parent_id=execution.id, state="RUNNING").count() == 4 or None, 60,
             "the four subflows running")
    naps = TaskRun.objects.filter(execution__parent_id=execution.id, task_id="nap")
    wait_for(lambda: naps.filter(state="RUNNING").exists() or None, 60, "a subflow's nap running on a worker")
    # The test cluster has fewer worker slots than subflows: some naps may not have started yet.
    napping = set(naps.filter(state="RUNNING").values_list("id", flat=True))
    kill_execution(execution.id)
    wait_for(lambda: all(child.state == "KILLED" for child in Execution.objects.filter(parent_id=execution.id))
             or None, 60, "the subflows killed")
    killed = set(Execution.objects.filter(parent_id=execution.id).values_list("id", flat=True))

    get_storage().put(mode, b"wake")
    restart_execution(execution.id)
    execution = wait_for(lambda: finished(execution.id), 60, "the restarted parent to end")
    assert execution.state == "SUCCESS"
    children = Execution.objects.filter(parent_id=execution.id)
    assert set(children.values_list("id", flat=True)) == killed
    assert all(child.state == "SUCCESS" for child in children)
    # An attempt the kill cut short is recorded, and the restart's attempt has the next number.
    attempts = {nap.id: [attempt["state"]["current"] for attempt in nap.attempts] for nap in naps.all()}
    assert all(attempts[nap] == ["KILLED", "SUCCESS"] for nap in napping)
    assert all(states in (["SUCCESS"], ["KILLED", "SUCCESS"]) for states in attempts.values())

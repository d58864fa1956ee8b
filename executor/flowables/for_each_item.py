"""`io.kestra.plugin.core.flow.ForEachItem`: split a file of items into batches and start one
subflow execution per batch.

As in Kestra, the flowable runs three generated tasks one after the other, each a task run of
its own under the ForEachItem's:

- `<id>_split` (a worker job): splits the `items` file into batch files in the internal storage;
- `<id>_items` (decided by the executor): starts one subflow execution per batch, waits for them
  with `wait`, and counts them by state;
- `<id>_merge` (a worker job): joins the flow outputs of the subflow executions into one file.

The generated tasks are made here from the ForEachItem's own definition (`generated_tasks`), so
the executor's task graph holds them like written tasks; their types are internal, left out of
the flow's JSON Schema. docs/flowable-tasks.md describes the whole.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flowables.base import FlowableBase, names
from orchestrator.flowlang.types import Labels, Props
from orchestrator.storage.uris import StorageURI, execution_location
from workers.registry import TaskBase, TaskType, register

NAME, ALIASES = names("ForEachItem")
# The generated tasks' types, named as Kestra names them.
SPLIT = NAME + "$ForEachItemSplit"
ITEMS = NAME + "$ForEachItemExecutable"
MERGE = NAME + "$ForEachItemMergeOutputs"
SPLIT_SUFFIX, ITEMS_SUFFIX, MERGE_SUFFIX = "_split", "_items", "_merge"
# The generated tasks take these from the ForEachItem, whatever they are.
_INHERITED = ("workerGroup", "logLevel", "logToFile")
_SUBFLOW_PROPERTIES = ("namespace", "flowId", "revision", "inputs", "labels", "inheritLabels", "wait",
                       "transmitFailed", "scheduleDate")


class Batch(Props):
    rows: int | str | None = Field(None, description="Items per batch (default 1).")
    bytes: int | str | None = Field(None, description="Largest size of a batch, e.g. `10MB`: a batch ends with "
                                                      "the item that reaches it.")
    partitions: int | str | None = Field(None, description="Number of batches to deal the items into, in turn.")
    separator: str | None = Field(None, description="What ends each item in a batch file (default: a new line).")


class ForEachItemProperties(FlowableBase):
    items: str = Field(min_length=1, description="URI of the file of items in internal storage, one item a line.")
    batch: Batch | None = None
    namespace: str = Field(min_length=1, description="Namespace of the subflow.")
    flowId: str = Field(min_length=1, description="Id of the subflow.")
    revision: int | None = Field(None, ge=1)
    inputs: dict[str, Any] | None = Field(None, description="Inputs of each subflow execution; `taskrun.items` is "
                                                            "the batch file's URI, `taskrun.iteration` its number.")
    labels: Labels | None = None
    inheritLabels: bool = False
    wait: bool = True
    transmitFailed: bool = True
    scheduleDate: str | None = None
    restartBehavior: Literal["RETRY_FAILED", "NEW_EXECUTION"] | None = None


class SplitProperties(TaskBase):
    items: Any = None
    batch: Batch | None = None


class ItemsProperties(TaskBase):
    namespace: str
    flowId: str
    revision: int | None = None
    inputs: dict[str, Any] | None = None
    labels: Any = None
    inheritLabels: bool = False
    wait: bool = True
    transmitFailed: bool = True
    scheduleDate: str | None = None


class MergeProperties(TaskBase):
    forEachItem: str = Field(description="Id of the ForEachItem whose subflows' outputs are merged.")
    wait: bool = True


def generated_tasks(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The ForEachItem's three tasks, from its definition."""
    task_id = definition["id"]
    common = {key: definition[key] for key in _INHERITED if key in definition}
    split = {"id": task_id + SPLIT_SUFFIX, "type": SPLIT, "items": definition.get("items"), **common}
    if definition.get("batch") is not None:
        split["batch"] = definition["batch"]
    items = {"id": task_id + ITEMS_SUFFIX, "type": ITEMS,
             **{key: definition[key] for key in _SUBFLOW_PROPERTIES if key in definition}}
    merge = {"id": task_id + MERGE_SUFFIX, "type": MERGE, "forEachItem": task_id,
             "wait": definition.get("wait", True), **common}
    return [split, items, merge]


def batch_file_name(iteration: int, extension: str) -> str:
    """The name of batch `iteration` (from 0) among the split task run's files: `3.csv`."""
    return f"{iteration}{extension}"


def subflow_outputs_prefix(namespace: str, flow_id: str, execution_id: str, task_id: str,
                           task_run_id: str) -> StorageURI:
    """Where each subflow execution of a ForEachItem task run leaves its flow outputs, one file per
    batch (`<iteration>.ion`), for `<id>_merge` to join: under the ForEachItem's task run, so that
    a restarted `<id>_items` keeps the outputs of the batches that do not run again."""
    return execution_location(namespace, flow_id, execution_id).child("tasks", task_id, task_run_id, "outputs")


register(TaskType(name=NAME, properties=ForEachItemProperties, kind="flowable", aliases=ALIASES,
                  title="Start a subflow for each batch of items", generated_tasks=generated_tasks))
# The executor decides `<id>_items`; `<id>_split` and `<id>_merge` run on workers
# (workers/tasktypes/for_each_item.py registers them with their `run`).
register(TaskType(name=ITEMS, properties=ItemsProperties, kind="flowable", internal=True,
                  title="ForEachItem: start the subflow executions"))

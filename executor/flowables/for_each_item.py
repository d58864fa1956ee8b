"""`io.kestra.plugin.core.flow.ForEachItem`: split a file of items into batches and start one
subflow execution per batch."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flowables.base import FlowableBase, names
from orchestrator.flowlang.types import Labels, Props
from workers.registry import TaskType, register

NAME, ALIASES = names("ForEachItem")


class Batch(Props):
    rows: int | None = Field(None, ge=1, description="Items per batch (Kestra's default: 1).")
    bytes: str | None = Field(None, description="Maximum size of a batch, e.g. 10MB.")
    partitions: int | None = Field(None, ge=1, description="Number of batches to split the items into.")
    separator: str | None = Field(None, description="What separates items (default: a new line).")


class ForEachItemProperties(FlowableBase):
    items: str = Field(min_length=1, description="URI of the file of items in internal storage.")
    batch: Batch | None = None
    namespace: str = Field(min_length=1, description="Namespace of the subflow.")
    flowId: str = Field(min_length=1, description="Id of the subflow.")
    revision: int | None = Field(None, ge=1)
    inputs: dict[str, Any] | None = Field(None, description="Inputs of each subflow execution.")
    labels: Labels | None = None
    inheritLabels: bool = False
    wait: bool = True
    transmitFailed: bool = True
    scheduleDate: str | None = None
    restartBehavior: Literal["RETRY_FAILED", "NEW_EXECUTION"] | None = None


register(TaskType(name=NAME, properties=ForEachItemProperties, kind="flowable", aliases=ALIASES,
                  title="Start a subflow for each batch of items"))

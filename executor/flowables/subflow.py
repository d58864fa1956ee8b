"""`io.kestra.plugin.core.flow.Subflow`: start an execution of another flow; and the older
`io.kestra.core.tasks.flows.Flow`, which does the same with other defaults (it neither waits nor
transmits failure unless told to). A Subflow of its own flow is refused by the flow validator."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flowables.base import names
from orchestrator.flowlang.types import Labels
from workers.registry import TaskBase, TaskType, register

NAME, ALIASES = names("Subflow")
OLD_FLOW = "io.kestra.core.tasks.flows.Flow"


class SubflowProperties(TaskBase):
    namespace: str = Field(min_length=1, description="Namespace of the flow to start.")
    flowId: str = Field(min_length=1, description="Id of the flow to start.")
    revision: int | None = Field(None, ge=1, description="Revision to start; the latest when absent.")
    inputs: dict[str, Any] | None = Field(None, description="Inputs of the new execution.")
    labels: Labels | None = Field(None, description="Labels of the new execution.")
    inheritLabels: bool = Field(False, description="Pass this execution's labels on too.")
    wait: bool = Field(True, description="Wait for the subflow's execution to end.")
    transmitFailed: bool = Field(True, description="Fail this task when the subflow fails (with `wait`).")
    scheduleDate: str | None = Field(None, description="Start the execution at this date instead of now.")
    restartBehavior: Literal["RETRY_FAILED", "NEW_EXECUTION"] | None = Field(
        None, description="On restart: restart the failed subflow execution (default) or make a new one."
    )
    outputs: dict[str, Any] | None = Field(
        None, description="Deprecated: outputs to extract from the subflow; declare flow outputs instead."
    )


class OldFlowProperties(TaskBase):
    namespace: str = Field(min_length=1)
    flowId: str = Field(min_length=1)
    revision: int | None = Field(None, ge=1)
    inputs: dict[str, Any] | None = None
    labels: Labels | None = None
    inheritLabels: bool = False
    wait: bool = False
    transmitFailed: bool = False
    outputs: dict[str, Any] | None = None


register(TaskType(name=NAME, properties=SubflowProperties, kind="flowable", aliases=ALIASES,
                  title="Start an execution of another flow"))
register(TaskType(name=OLD_FLOW, properties=OldFlowProperties, kind="flowable",
                  title="Start an execution of another flow (deprecated: use Subflow)"))

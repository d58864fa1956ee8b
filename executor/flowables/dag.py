"""`io.kestra.plugin.core.flow.Dag`: run tasks as their dependencies allow. The flow validator
checks that every `dependsOn` names a task of the same Dag and that there is no cycle."""

from __future__ import annotations

from pydantic import Field

from executor.flowables.base import FlowableBase, names
from orchestrator.flowlang.types import Props
from workers.registry import Task, TaskType, register

NAME, ALIASES = names("Dag")


class DagTask(Props):
    task: Task = Field(description="The task.")
    dependsOn: list[str] | None = Field(None, description="Ids of tasks of this Dag that must end first.")


class DagProperties(FlowableBase):
    tasks: list[DagTask] = Field(min_length=1, description="The tasks, each with what it depends on.")
    concurrent: int = Field(0, ge=0, description="How many tasks run at once; 0 means no limit.")


register(TaskType(name=NAME, properties=DagProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks in dependency order"))

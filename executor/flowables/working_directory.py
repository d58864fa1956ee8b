"""`io.kestra.plugin.core.flow.WorkingDirectory`: run runnable tasks one after the other in one
shared working directory, on one worker. The flow validator refuses flowable children and
children with their own `workerGroup` (the group is set on the WorkingDirectory).

Unlike the other flowables it has a `run`: its task run is one job, which a worker runs
(workers/working_directory.py); executor/core/flowables/working_directory.py says why."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flowables.base import FlowableBase, RequiredTasks, names
from orchestrator.flowlang.types import Duration, Props
from workers.registry import TaskType, register

NAME, ALIASES = names("WorkingDirectory")


class NamespaceFiles(Props):
    enabled: bool | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    namespaces: list[str] | None = None
    folderPerNamespace: bool | None = None
    ifExists: Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"] | None = None


class Cache(Props):
    patterns: list[str] = Field(min_length=1, description="Glob patterns of the files to cache.")
    ttl: Duration | None = Field(None, description="How long the cache is kept.")


class WorkingDirectoryProperties(FlowableBase):
    tasks: RequiredTasks
    inputFiles: str | dict[str, str] | None = Field(None, description="Files to create first: name -> content.")
    outputFiles: list[str] | None = Field(None, description="Glob patterns of files to keep as outputs.")
    namespaceFiles: NamespaceFiles | None = None
    cache: Cache | None = None


def _run(props: WorkingDirectoryProperties, ctx: Any) -> dict[str, Any]:
    from workers.working_directory import run_working_directory  # the worker's side, loaded there only

    return run_working_directory(props, ctx)


# The tasks render themselves, one by one; the files are rendered once the directory exists.
_RAW = frozenset({"tasks", "errors", "finally", "inputFiles", "outputFiles", "namespaceFiles", "cache"})

register(TaskType(name=NAME, properties=WorkingDirectoryProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks in a shared working directory", run=_run, raw_properties=_RAW))

"""Running a WorkingDirectory's job: its tasks one after the other, in one directory on this
worker (executor/core/flowables/working_directory.py says why it is one job).

Each task runs as any job does (`runtime.run_job`), with a task run id made here, its own logs,
timeout and result, and rendered with the outputs of the tasks before it, added to the context
as the executor would have. When a task of the main branch fails, the rest of it does not start;
`errors` then runs, then `finally`, in the same directory. A kill or the WorkingDirectory's own
timeout stops the task running and starts nothing more.

A task's own `retry` runs it again here, in the same directory, after the policy's wait (a
kill or the WorkingDirectory's timeout ends the wait); its attempts are recorded on its one
task run. The executor's retry would send the attempt to any worker, away from the directory.

The results of the tasks travel in the WorkingDirectory's one result (`TaskResult.children`);
the executor creates their task runs from it. While the job runs, a notice is sent to the
executor as each task starts and ends (`messages.Progress`), so that their task runs show and
change state as they go; the result settles them whatever notices were lost.

`cache` (workers/working_directory_cache.py) restores the kept files before anything else is
written into the directory, and keeps them again after a successful run.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from orchestrator import messages
from orchestrator.states import FAILED_STATES, State
from orchestrator.templating import TemplateError, is_truthy
from workers.context import RunContext, TaskFailure, iso_now
from workers.ids import new_id
from workers.working_directory_cache import CacheSettings, restore, save

# The context keys that describe the task being run, replaced for each child.
_OWN_KEYS = ("task", "taskrun", "parent", "parents")


def run_working_directory(props: Any, ctx: RunContext) -> dict[str, Any]:
    from workers.tasktypes import scripts_common, scripts_files

    task = ctx.job["task"]
    directory = Path(tempfile.mkdtemp(prefix="harrier-wd-", dir=os.environ.get("HARRIER_SCRIPTS_DIR") or None))
    ctx.directory = directory
    ctx.variables["workingDir"] = str(directory)
    try:
        cache = CacheSettings(task["cache"]) if task.get("cache") is not None else None
        cached = cache is not None and restore(ctx, cache, directory, datetime.now(timezone.utc))
        namespace_files = task.get("namespaceFiles")
        if isinstance(namespace_files, Mapping) and namespace_files.get("enabled", True) is not False:
            scripts_files.copy_namespace_files(ctx, dict(namespace_files), directory)
        for name, content in scripts_common.as_map(ctx.render(task.get("inputFiles")), "inputFiles").items():
            if content is not None:
                path = scripts_common.relative_path(str(name), "inputFiles")
                scripts_files.write_input_file(ctx, directory, path, scripts_common.env_value(content))

        failed = _run_children(ctx, _enabled(task.get("tasks")), stop_on_failure=True)
        if failed is not None and ctx.stop_reason is None:
            _run_children(ctx, _enabled(task.get("errors")), stop_on_failure=False)
        if ctx.stop_reason is None:
            _run_children(ctx, _enabled(task.get("finally")), stop_on_failure=False)
        if failed is not None:
            raise TaskFailure(f"Task {failed} failed")
        ctx.warning = ctx.warning or any(child["state"] == State.WARNING.value for child in ctx.children)
        globs = [str(scripts_common.relative_path(glob, "outputFiles"))
                 for glob in scripts_common.as_list(ctx.render(task.get("outputFiles")), "outputFiles")]
        outputs = {"outputFiles": scripts_files.store_output_files(ctx, _matching(directory, globs))}
        if cache is not None and not cached and ctx.stop_reason is None:
            save(ctx, cache, directory, datetime.now(timezone.utc))
        return outputs
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _enabled(tasks: Any) -> list[dict[str, Any]]:
    return [task for task in tasks or () if isinstance(task, dict) and not task.get("disabled")]


def _run_children(ctx: RunContext, tasks: list[dict[str, Any]], *, stop_on_failure: bool) -> str | None:
    """Run tasks one after the other; the id of the first that failed, if one did. Nothing starts
    once the WorkingDirectory is asked to stop, nor after a failure when `stop_on_failure`."""
    failed = None
    for task in tasks:
        if ctx.stop_reason is not None:
            break
        state = _run_child(ctx, task)
        if state in FAILED_STATES and failed is None:
            failed = task["id"]
            if stop_on_failure:
                break
    return failed


def _run_child(ctx: RunContext, task: dict[str, Any]) -> State:
    """Run one task of the WorkingDirectory and record its result; its state after its own
    allowFailure and allowWarning (which decide whether the next task runs)."""
    job = _child_job(ctx, task)
    start = iso_now()
    record: messages.ChildResult
    skipped = False
    if "runIf" in task:
        child = ctx.child(job)
        try:
            skipped = not is_truthy(child.render(task["runIf"]))
        except TemplateError as error:
            record = {"taskRunId": job["taskRunId"], "taskId": task["id"], "state": State.FAILED.value,
                      "outputs": None, "startDate": start, "endDate": iso_now(), "error": f"runIf: {error}"}
            child.log("ERROR", record["error"])
            child.flush_logs()
            return _ended(ctx, task, record)
    if skipped:
        record = {"taskRunId": job["taskRunId"], "taskId": task["id"], "state": State.SKIPPED.value,
                  "outputs": None, "startDate": start, "endDate": start}
        return _ended(ctx, task, record)
    record = _run_attempts(ctx, task, job, start)
    if record.get("outputs"):
        _add_outputs(ctx, task["id"], record["outputs"])
    return _ended(ctx, task, record)


def _run_attempts(ctx: RunContext, task: dict[str, Any], job: messages.WorkerJob, start: str
                  ) -> messages.ChildResult:
    """Run the task until an attempt does not fail or its `retry` allows no more."""
    from executor.core.retry import RetryPolicy  # pure: the executor's own reading of `retry`
    from workers.runtime import run_job

    policy = RetryPolicy.of(task.get("retry"))
    first_start = datetime.now(timezone.utc)
    attempts: list[messages.ChildAttempt] = []
    while True:
        context = {**job["context"], "taskrun": {**job["context"]["taskrun"], "attemptsCount": len(attempts)}}
        job = {**job, "attempt": len(attempts) + 1, "context": context}
        running: messages.ChildAttempt = {"state": State.RUNNING.value, "startDate": iso_now()}
        _notify(ctx, {"taskRunId": job["taskRunId"], "taskId": task["id"], "state": State.RUNNING.value,
                      "outputs": None, "startDate": start, "endDate": running["startDate"],
                      "attempts": [*attempts, running]})
        result = run_job(job, ctx.child(job))
        attempt: messages.ChildAttempt = {"state": result["state"], "startDate": result["startDate"],
                                          "endDate": result["endDate"]}
        if result.get("error"):
            attempt["error"] = result["error"]
        attempts.append(attempt)
        state = State(result["state"])
        if state is not State.FAILED or policy is None or ctx.stop_reason is not None:
            break
        now = datetime.now(timezone.utc)
        at = policy.next_attempt_at(len(attempts), first_start, now, random.random)
        if at is None:
            break
        ctx.log("INFO", f"{task['id']}: attempt {len(attempts)} failed; attempt {len(attempts) + 1} starts at "
                        f"{at.isoformat()}")
        ctx.sleep((at - now).total_seconds())
        if ctx.stop_reason is not None:
            break
    record: messages.ChildResult = {key: value for key, value in result.items()  # type: ignore[assignment]
                                    if key not in ("attempt", "workerId")}
    record.update(taskId=task["id"], startDate=start, attempts=attempts)
    if state is State.SUCCESS and len(attempts) > 1 and policy is not None and policy.warning_on_retry:
        record["state"] = State.WARNING.value
    return record


def _ended(ctx: RunContext, task: dict[str, Any], record: messages.ChildResult) -> State:
    ctx.children.append(record)
    _notify(ctx)
    return _tolerated(task, State(record["state"]))


def _notify(ctx: RunContext, running: messages.ChildResult | None = None) -> None:
    """Tell the executor what the tasks have done so far and which one runs now."""
    from orchestrator import bus
    from workers import liveness

    job = ctx.job
    notice: messages.Progress = {"taskRunId": job["taskRunId"], "attempt": job["attempt"],
                                 "workerId": liveness.worker_id(),
                                 "children": [*ctx.children, *([running] if running else [])]}
    bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, messages.progress(job["executionId"], notice))


def _tolerated(task: Mapping[str, Any], state: State) -> State:
    """The executor's rule (executor.core.decide.tolerate), on the task's definition."""
    if state is State.FAILED and task.get("allowFailure"):
        state = State.WARNING
    if state is State.WARNING and task.get("allowWarning"):
        state = State.SUCCESS
    return state


def _child_job(ctx: RunContext, task: dict[str, Any]) -> messages.WorkerJob:
    """A job for one task of the WorkingDirectory, as the executor would have built it: its own
    `task` and `taskrun`, the WorkingDirectory as its `parent`, and the outputs so far."""
    job = ctx.job
    own = job["context"]
    holder = own.get("taskrun") or {}
    context = {key: value for key, value in own.items() if key not in _OWN_KEYS}
    context["outputs"] = ctx.variables.get("outputs") or {}
    context["task"] = {"id": task["id"], "type": task["type"]}
    context["taskrun"] = {"id": new_id(), "startDate": iso_now(), "attemptsCount": 0, "value": None,
                          "parentId": job["taskRunId"], "iteration": None}
    context["workerTaskrun"] = holder  # Kestra's name for the WorkingDirectory's task run
    parents = list(own.get("parents") or [])
    if holder.get("value") is not None:
        parents.insert(0, {"taskrun": {"value": holder["value"]}})
    context["parents"] = parents
    if parents:
        context["parent"] = parents[0]
    child: messages.WorkerJob = {
        "v": job["v"], "executionId": job["executionId"], "taskRunId": context["taskrun"]["id"], "attempt": 1,
        "task": task, "context": context, "namespace": job["namespace"], "flowId": job["flowId"],
    }
    if "errorLogs" in job:  # the executor's, and those of the tasks that failed here since
        child["errorLogs"] = [*job["errorLogs"], *(
            {"taskId": done["taskId"], "taskRunId": done["taskRunId"], "level": "ERROR", "message": done["error"],
             "timestamp": done["endDate"]} for done in ctx.children if done.get("error"))]
    return child


def _add_outputs(ctx: RunContext, task_id: str, outputs: Mapping[str, Any]) -> None:
    """Make a task's outputs visible to the tasks after it, under the loop values of the task
    runs enclosing the WorkingDirectory as the executor keys them (executor.core.context)."""
    own = ctx.job["context"]
    path = [parent["taskrun"]["value"] for parent in reversed(own.get("parents") or [])
            if isinstance(parent.get("taskrun"), Mapping) and parent["taskrun"].get("value") is not None]
    value = (own.get("taskrun") or {}).get("value")
    if value is not None:
        path.append(value)
    current = ctx.variables["outputs"] = copy.copy(ctx.variables.get("outputs") or {})
    if not path:
        current[task_id] = dict(outputs)
        return
    node = current[task_id] = copy.deepcopy(current.get(task_id) or {})
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = dict(outputs)


def _matching(directory: Path, globs: list[str]) -> dict[str, Path]:
    """The files of the directory that `outputFiles` globs match, by relative path."""
    from workers.tasktypes.scripts_files import glob_pattern

    if not globs:
        return {}
    patterns = [glob_pattern(glob) for glob in globs]
    found = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_file() and not path.is_symlink() and any(pattern.match(relative) for pattern in patterns):
            found[relative] = path
    return found

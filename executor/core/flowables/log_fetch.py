"""`io.kestra.plugin.core.log.Fetch`: write an execution's log lines (this one's by default) to a
file of the internal storage; outputs `uri` and `size` (the number of lines).

Logs are in the repository, which workers never touch, so the executor decides this task and its
shell writes the file (FetchLogs, executor/log_fetch.py), then looks again: the outputs it
recorded end the task run SUCCESS; when it cannot, it fails the task run with the reason.

Log lines reach the repository through the indexer, in batches, a little after the task that
wrote them has ended: fetching its own execution's lines, the task first lets them settle for
SETTLE (a delay of the repository, not a sleep), so that the lines of the tasks before it are
there.
"""

from __future__ import annotations

from datetime import timedelta

from executor.core.actions import FetchLogs
from executor.core.decide import StepContext, flowable
from executor.core.flowables.common import FlowableError, guarded
from executor.core.model import TaskNode, TaskRunView
from orchestrator.states import State
from orchestrator.templating import TemplateError

FETCH = "io.kestra.plugin.core.log.Fetch"
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
SETTLE = timedelta(seconds=1)
SETTLED = "logs-settled"  # the delay kind


@flowable(FETCH)
@guarded
def fetch_logs(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    if "uri" in (ctx.details.outputs(run) or {}):
        return State.SUCCESS  # the shell has written the file
    if (run.id, "fetch") in ctx.view.scheduled:
        return None
    definition = node.definition
    try:
        execution_id = ctx.renderer.render(node, run, definition.get("executionId")) or ctx.view.id
        namespace = ctx.renderer.render(node, run, definition.get("namespace")) or None
        flow_id = ctx.renderer.render(node, run, definition.get("flowId")) or None
    except TemplateError as error:
        raise FlowableError(f"Unable to render which logs to fetch: {error}") from None
    level = str(definition.get("level") or "INFO").upper()
    level = "WARN" if level == "WARNING" else level
    if level not in LEVELS:
        raise FlowableError(f"{level!r} is not a log level: use one of {', '.join(LEVELS)}")
    own = str(execution_id) == ctx.view.id and namespace in (None, ctx.view.namespace) \
        and flow_id in (None, ctx.view.flow_id)
    if own and ctx.view.fired.get(run.id) != SETTLED:
        ctx.schedule(run, SETTLED, SETTLE)
        return None
    task_ids = definition.get("tasksId")
    ctx.actions.append(FetchLogs(
        task_run_id=run.id, execution_id=str(execution_id), namespace=namespace and str(namespace),
        flow_id=flow_id and str(flow_id), task_ids=tuple(str(task) for task in task_ids) if task_ids else None,
        levels=LEVELS[LEVELS.index(level):],
    ))
    return None

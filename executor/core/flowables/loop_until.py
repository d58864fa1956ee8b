"""`io.kestra.plugin.core.flow.LoopUntil` and its older name `WaitFor`: run `tasks` in sequence,
again and again, until `condition` renders true after an iteration.

Each iteration's task runs carry the iteration number; the flowable's output `iterationCount`
is the number of iterations before the current one (0 during the first), so tasks can read
`{{ outputs.<loop>.iterationCount }}`. Between iterations the loop waits `checkFrequency.interval`
(a delay kept in the repository). It stops after `checkFrequency.maxIterations` iterations or
once `checkFrequency.maxDuration` has passed since it started: FAILED with `failOnMaxReached`,
else SUCCESS. A failed iteration ends the loop FAILED, after its `errors` and `finally`.

Defaults as Kestra's: WaitFor checks every second, at most 100 times, for at most an hour;
LoopUntil every minute with no limit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from executor.core.actions import SetTaskRunState
from executor.core.decide import StepContext, enabled, flowable
from executor.core.flowables.common import FlowableError, Group, guarded, run_groups, _advance_group, \
    _ended
from executor.core.model import TaskNode, TaskRunView
from orchestrator.flowlang.types import parse_duration
from orchestrator.states import FAILED_STATES, State
from orchestrator.templating import TemplateError, is_truthy

NEXT = "next-iteration"  # the delay kind: the interval between iterations has passed

WAIT_FOR = "io.kestra.plugin.core.flow.WaitFor"
LOOP_UNTIL = "io.kestra.plugin.core.flow.LoopUntil"
_DEFAULTS = {
    WAIT_FOR: {"maxIterations": 100, "maxDuration": timedelta(hours=1), "interval": timedelta(seconds=1)},
    LOOP_UNTIL: {"maxIterations": None, "maxDuration": None, "interval": timedelta(minutes=1)},
}


@flowable(WAIT_FOR)
@flowable(LOOP_UNTIL)
@guarded
def loop_until(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    tasks = tuple(enabled(node.branch("tasks")))
    if not tasks:
        return State.SUCCESS
    children = ctx.by_parent.get(run.id, ())
    iterations = [child.iteration for child in children if child.iteration is not None]
    if not iterations:
        _start(ctx, run, tasks, 0)
        return None
    current = max(iterations)
    groups = [Group(tasks, None, index) for index in range(current + 1)]
    latest = ctx.latest_runs(run.id)
    group = groups[-1]
    failed = any(child.state in FAILED_STATES for child in latest.values())
    if not failed and _ended(group, latest):
        if not _condition(ctx, node, run):
            limits = _limits(node)
            done = current + 1
            reached = None
            if limits["maxIterations"] is not None and done >= limits["maxIterations"]:
                reached = f"{done} iterations"
            elif limits["maxDuration"] is not None and \
                    ctx.details.now() - ctx.details.started(run) >= limits["maxDuration"]:
                reached = f"its maximum duration ({node.definition['checkFrequency']['maxDuration']})" \
                    if isinstance(node.definition.get("checkFrequency"), Mapping) and \
                    node.definition["checkFrequency"].get("maxDuration") else "its maximum duration"
            if reached is None:
                if ctx.view.fired.get(run.id) == NEXT:
                    _start(ctx, run, tasks, done)
                else:
                    ctx.schedule(run, NEXT, limits["interval"])
                return None
            if node.definition.get("failOnMaxReached") is True:
                raise FlowableError(f"The condition was still false after {reached}")
    elif not failed:
        _advance_group(ctx, run, group, latest)
        return None
    return run_groups(ctx, node, run, groups, limit=1)


def _start(ctx: StepContext, run: TaskRunView, tasks: tuple[TaskNode, ...], iteration: int) -> None:
    ctx.actions.append(SetTaskRunState(run.id, State.RUNNING, outputs={"iterationCount": iteration}))
    ctx.create(tasks[0], run.id, iteration=iteration)


def _condition(ctx: StepContext, node: TaskNode, run: TaskRunView) -> bool:
    try:
        return is_truthy(ctx.renderer.render(node, run, node.definition.get("condition")))
    except TemplateError as error:
        raise FlowableError(f"Unable to render the condition: {error}") from None


def _limits(node: TaskNode) -> dict[str, Any]:
    limits = dict(_DEFAULTS.get(node.type, _DEFAULTS[WAIT_FOR]))
    frequency = node.definition.get("checkFrequency")
    if isinstance(frequency, Mapping):
        if isinstance(frequency.get("maxIterations"), int):
            limits["maxIterations"] = frequency["maxIterations"]
        for key in ("maxDuration", "interval"):
            duration = parse_duration(frequency.get(key))
            if duration is not None:
                limits[key] = duration
    return limits

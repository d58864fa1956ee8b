"""`io.kestra.plugin.core.flow.Pause`: the task run waits PAUSED (and its execution with it)
until the execution is resumed, or until a duration has passed; then its `tasks`, if any, run
in sequence.

- No duration: wait for a resume (API, admin), which may give `onResume` inputs; they become the
  Pause's output `onResume` (`{{ outputs.<pause>.onResume.<input> }}`).
- `pauseDuration` with `behavior`: when it has passed, RESUME (default) goes on, WARN goes on and
  ends the Pause WARNING, CANCEL cancels the execution, FAIL fails the Pause.
- The older `delay`: resume by itself after it; the older `timeout`: fail the Pause after it
  unless resumed first.
"""

from __future__ import annotations

from datetime import timedelta

from executor.core.actions import Log, SetExecutionState, SetTaskRunState
from executor.core.decide import StepContext, enabled, flowable, run_in_sequence
from executor.core.model import BRANCH_ERRORS, BRANCH_FINALLY, TaskNode, TaskRunView
from orchestrator.flowlang.types import parse_duration
from orchestrator.states import State

RESUME = "resume"  # the delay kind: the pause's duration has passed
TIMEOUT = "timeout"


@flowable("io.kestra.plugin.core.flow.Pause")
def pause(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    definition = node.definition
    if run.state is State.PAUSED:
        fired = ctx.view.fired.get(run.id)
        if fired == RESUME:
            return _duration_over(ctx, run, str(definition.get("behavior") or "RESUME").upper())
        if fired == TIMEOUT:
            ctx.fail(node, run, f"The pause was not resumed within {definition.get('timeout')}")
        return None
    started = bool(ctx.by_parent.get(run.id)) or run.outputs is not None or ctx.details.outputs(run) is not None
    if not started:
        ctx.actions.append(SetTaskRunState(run.id, State.PAUSED, outputs={}))
        wait = _duration(definition.get("pauseDuration") if "pauseDuration" in definition else definition.get("delay"))
        timeout = _duration(definition.get("timeout"))
        if wait is not None:
            ctx.schedule(run, RESUME, wait)
        elif timeout is not None:
            ctx.schedule(run, TIMEOUT, timeout)
        return None
    outcome = run_in_sequence(ctx, run.id, enabled(node.branch("tasks")), enabled(node.branch(BRANCH_ERRORS)),
                              enabled(node.branch(BRANCH_FINALLY)))
    if outcome is State.SUCCESS and (ctx.details.outputs(run) or {}).get("warning"):
        return State.WARNING
    return outcome


def _duration_over(ctx: StepContext, run: TaskRunView, behavior: str) -> None:
    if behavior == "CANCEL":
        ctx.actions.append(Log("WARN", "The pause duration has passed: the execution is cancelled", run.id,
                               run.task_id))
        ctx.actions.append(SetTaskRunState(run.id, State.CANCELLED))
        ctx.actions.append(SetExecutionState(State.CANCELLED))
        return None
    if behavior == "FAIL":
        ctx.actions.append(Log("ERROR", "The pause duration has passed", run.id, run.task_id))
        ctx.actions.append(SetTaskRunState(run.id, State.FAILED))
        return None
    ctx.actions.append(SetTaskRunState(run.id, State.RUNNING, outputs={"warning": True} if behavior == "WARN" else {}))
    return None


def _duration(value) -> timedelta | None:
    duration = parse_duration(value)
    return duration if duration is not None and duration > timedelta(0) else None

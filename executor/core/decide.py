"""The executor's decisions: pure functions from (flow, execution view) to actions.

`decide` repeats one `step` until nothing changes, applying each step's actions to an in-memory
copy of the view, so that a cascade (a task ends, its Sequential ends, the next root task
starts) is decided in one transaction. Flowable semantics are plug-ins keyed by task type.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from executor.core.actions import (
    Action, CreateTaskRun, DeleteTaskRun, Dispatch, FetchLogs, Log, ResumeExecution, ScheduleDelay,
    SetExecutionState, SetTaskRunState, StartSubflow,
)
from executor.core.retry import RetryPolicy
from executor.core.context import lineage, with_parents
from executor.core.model import (
    BRANCH_AFTER, BRANCH_ERRORS, BRANCH_FINALLY, ExecutionView, FlowGraph, TaskNode, TaskRunView,
)
from orchestrator.states import ACTIVE, FAILED_STATES, State, worst
from orchestrator.templating import TemplateError, is_truthy, render_value
from workers.ids import new_id

# A cascade deeper than this is a bug, not a flow: stop rather than loop forever.
MAX_ROUNDS = 10_000


default_new_id = new_id


class WholeViewNeeded(Exception):
    """Raised by a handler deciding over a view that leaves task runs out (ExecutionView.unseen)
    when what it must decide needs them all: the shell decides the step again over every task run."""


class Renderer(Protocol):
    """Renders a property of a task (a flowable's condition, values…) with the execution's
    variables plus that task's `task`, `taskrun` and, from its enclosing task runs (`ancestors`,
    nearest first), `parent` and `parents`. `taskrun` adds variables to `taskrun` (ForEachItem's
    `items`). Raises TemplateError."""

    def render(self, node: TaskNode, run: TaskRunView | None, value: Any,
               ancestors: Sequence[TaskRunView] = (), taskrun: Mapping[str, Any] | None = None) -> Any: ...


@dataclass
class ContextRenderer:
    """A Renderer over a fixed context: what the shell builds per step, and what tests use."""

    context: Mapping[str, Any]

    def render(self, node: TaskNode, run: TaskRunView | None, value: Any,
               ancestors: Sequence[TaskRunView] = (), taskrun: Mapping[str, Any] | None = None) -> Any:
        variables = dict(self.context)
        variables["task"] = {"id": node.id, "type": node.definition.get("type", node.type)}
        if run is not None:
            variables["taskrun"] = {"id": run.id, "startDate": run.start_date, "value": run.value,
                                    "parentId": run.parent_id, "iteration": run.iteration,
                                    "attemptsCount": run.attempts, **(taskrun or {})}
            with_parents(variables, list(ancestors))
        return render_value(value, variables)


class RunDetails(Protocol):
    """What a few flowables need beyond the view, loaded by the shell only when asked: a task
    run's outputs (the view holds only scalar columns), when it was created, and the time."""

    def outputs(self, run: TaskRunView) -> Mapping[str, Any] | None: ...

    def started(self, run: TaskRunView) -> datetime: ...

    def now(self) -> datetime: ...

    def execution(self, execution_id: str) -> Mapping[str, Any] | None:
        """Another execution (a subflow's child): its `state`, flow `outputs`, and the `context`
        its expressions saw (for extracting outputs); None when it does not exist."""
        ...

    def subflows(self, run: TaskRunView) -> "SubflowCounts":
        """The subflow executions a task run started (ForEachItem's batches), counted."""
        ...


@dataclass(frozen=True, slots=True)
class SubflowCounts:
    """The subflow executions of one task run: how many were started (one per batch), and how
    many are in each state now. An execution a flow retry replaced (RETRIED) counts as its
    latest attempt, not yet counted while that attempt does not exist."""

    started: int = 0
    states: Mapping[str, int] = field(default_factory=dict)


@dataclass
class ViewDetails:
    """RunDetails from the view alone, with a clock given: for tests and simulations."""

    clock: Callable[[], datetime]
    created: dict[str, datetime] = field(default_factory=dict)
    executions: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    started_subflows: dict[str, SubflowCounts] = field(default_factory=dict)

    def execution(self, execution_id: str) -> Mapping[str, Any] | None:
        return self.executions.get(execution_id)

    def subflows(self, run: TaskRunView) -> SubflowCounts:
        return self.started_subflows.get(run.id, SubflowCounts())

    def outputs(self, run: TaskRunView) -> Mapping[str, Any] | None:
        return run.outputs

    def started(self, run: TaskRunView) -> datetime:
        return self.created.setdefault(run.id, self.clock())

    def now(self) -> datetime:
        return self.clock()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StepContext:
    """What a flowable handler may look at and how it proposes actions."""

    flow: FlowGraph
    view: ExecutionView
    new_id: Callable[[], str]
    renderer: Renderer
    by_parent: dict[str | None, list[TaskRunView]] = field(default_factory=dict)
    next_seq: int = 0
    actions: list[Action] = field(default_factory=list)
    _runs: dict[str, TaskRunView] | None = field(default=None, repr=False)  # by id, built when first needed
    # The last task run of each (iteration, task) under a parent, built when first asked for.
    _latest: dict[str | None, dict[tuple[int | None, str], TaskRunView]] = field(default_factory=dict, repr=False)
    details: RunDetails = field(default_factory=lambda: ViewDetails(_utc_now))

    def schedule(self, run: TaskRunView, kind: str, after: timedelta) -> None:
        """Ask to look at `run` again after `after` (once: a pending delay is not doubled)."""
        if (run.id, kind) not in self.view.scheduled:
            self.actions.append(ScheduleDelay(run.id, kind, after))

    @classmethod
    def of(cls, flow: FlowGraph, view: ExecutionView, new_id: Callable[[], str],
           renderer: Renderer, details: RunDetails | None = None) -> "StepContext":
        by_parent: dict[str | None, list[TaskRunView]] = {}
        for run in view.task_runs:
            by_parent.setdefault(run.parent_id, []).append(run)
        next_seq = max(max((run.seq for run in view.task_runs), default=-1) + 1, view.next_seq)
        return cls(flow=flow, view=view, new_id=new_id, renderer=renderer, by_parent=by_parent,
                   next_seq=next_seq, details=details or ViewDetails(_utc_now))

    def unseen_children(self, run_id: str) -> Mapping[tuple[str, State], int]:
        """The children of a loop's task run that the view leaves out, counted by (task id,
        state); empty when the view holds them all."""
        unseen = self.view.unseen
        return unseen.get(run_id, {}) if unseen is not None else {}

    def whole_view(self) -> None:
        """For a handler that looks at every task run of the execution: raise WholeViewNeeded
        when the view leaves some out."""
        if self.view.unseen is not None:
            raise WholeViewNeeded("this task looks at every task run of the execution")

    def render(self, node: TaskNode, run: TaskRunView, value: Any, taskrun: Mapping[str, Any] | None = None) -> Any:
        """Render a property of `node` for its task run `run`, with `parent` and `parents`
        (and more `taskrun` variables when given)."""
        if self._runs is None:
            self._runs = {other.id: other for other in self.view.task_runs}
        ancestors = lineage(self._runs, run.parent_id)
        if taskrun is None:
            return self.renderer.render(node, run, value, ancestors)
        return self.renderer.render(node, run, value, ancestors, taskrun=taskrun)

    def fail(self, node: TaskNode, run: TaskRunView, message: str) -> None:
        """End a flowable task run FAILED, logging why on it."""
        self.actions.append(Log("ERROR", message, run.id, node.id))
        self.actions.append(SetTaskRunState(run.id, tolerate(node, State.FAILED)))

    def latest_runs(self, parent_id: str | None) -> dict[tuple[int | None, str], TaskRunView]:
        """The last task run of each (iteration, task) under a parent (the highest `seq`), computed
        once per round: a loop's handler and its groups share it."""
        latest = self._latest.get(parent_id)
        if latest is None:
            latest = self._latest[parent_id] = latest_runs(self.by_parent.get(parent_id, ()))
        return latest

    def latest_by_task(self, parent_id: str | None) -> dict[str, TaskRunView]:
        """The last task run of each task under a parent (later runs replace earlier ones)."""
        latest: dict[str, TaskRunView] = {}
        for run in self.by_parent.get(parent_id, ()):
            latest[run.task_id] = run
        return latest

    def create(self, node: TaskNode, parent_id: str | None, *, value: str | None = None,
               iteration: int | None = None) -> None:
        """A task run for `node`: RUNNING for a flowable, CREATED and dispatched for a runnable
        (and a flowable run by a worker), SKIPPED when its `runIf` is false, FAILED when `runIf`
        cannot be rendered."""
        run_id = self.new_id()
        state = State.CREATED if node.dispatched else State.RUNNING
        failure = None
        if "runIf" in node.definition:
            probe = TaskRunView(id=run_id, task_id=node.id, parent_id=parent_id, state=state, seq=self.next_seq,
                                value=value, iteration=iteration)
            try:
                if not is_truthy(self.render(node, probe, node.definition["runIf"])):
                    state = State.SKIPPED
            except TemplateError as error:
                state, failure = State.FAILED, f"runIf: {error}"
        self.actions.append(CreateTaskRun(
            id=run_id, task_id=node.id, parent_id=parent_id, state=state, seq=self.next_seq, value=value,
            iteration=iteration,
        ))
        self.next_seq += 1
        if failure:
            self.actions.append(Log("ERROR", failure, run_id, node.id))
        elif state is State.CREATED:
            self.actions.append(Dispatch(task_run_id=run_id, attempt=1))


def latest_runs(runs: Iterable[TaskRunView]) -> dict[tuple[int | None, str], TaskRunView]:
    """The last task run of each (iteration, task) among a flowable's children."""
    latest: dict[tuple[int | None, str], TaskRunView] = {}
    for run in runs:
        key = (run.iteration, run.task_id)
        current = latest.get(key)
        if current is None or run.seq > current.seq:
            latest[key] = run
    return latest


# (context, flowable node, its task run or None for the flow's root) -> outcome once finished
FlowableHandler = Callable[[StepContext, TaskNode, TaskRunView | None], State | None]
FLOWABLES: dict[str, FlowableHandler] = {}


def flowable(type_name: str) -> Callable[[FlowableHandler], FlowableHandler]:
    def register(handler: FlowableHandler) -> FlowableHandler:
        FLOWABLES[type_name] = handler
        return handler

    return register


def enabled(nodes: Iterable[TaskNode]) -> list[TaskNode]:
    return [node for node in nodes if not node.disabled]


def run_in_sequence(ctx: StepContext, parent_id: str | None, main: list[TaskNode], errors: list[TaskNode],
                    finally_: list[TaskNode]) -> State | None:
    """Kestra's sequential resolution: main tasks one after another; on failure the error
    branch; then the finally branch. Returns the outcome once everything has ended."""
    latest = ctx.latest_by_task(parent_id)
    if any(run.state in ACTIVE for run in latest.values()):
        return None
    main_states = [latest[node.id].state for node in main if node.id in latest]
    failed = any(state in FAILED_STATES for state in main_states)
    pending = errors if failed else main
    for node in [*pending, *finally_]:
        if node.id not in latest:
            ctx.create(node, parent_id)
            return None
    ids = {node.id for node in (*main, *errors, *finally_)}
    outcome = worst(run.state for run in latest.values() if run.task_id in ids)
    if failed and outcome not in FAILED_STATES:
        outcome = State.FAILED
    return outcome


@flowable("io.kestra.plugin.core.flow.Sequential")
def sequential(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    return run_in_sequence(
        ctx, run.id if run else None, enabled(node.branch("tasks")), enabled(node.branch(BRANCH_ERRORS)),
        enabled(node.branch(BRANCH_FINALLY)),
    )


def step(flow: FlowGraph, view: ExecutionView, new_id: Callable[[], str] = default_new_id,
         renderer: Renderer | None = None, details: RunDetails | None = None) -> list[Action]:
    """One round of decisions over every running flowable, deepest first."""
    ctx = StepContext.of(flow, view, new_id, renderer or ContextRenderer({}), details)
    outcome = _visit(ctx, flow.root, None)
    if outcome is not None:
        outcome = _after_execution(ctx, flow, outcome)
    if outcome is not None:
        ctx.actions.append(SetExecutionState(outcome))
    return ctx.actions


def _after_execution(ctx: StepContext, flow: FlowGraph, outcome: State) -> State | None:
    """The flow's `afterExecution` tasks, one after the other, once its outcome is known; they
    run whatever it is and do not change it. The outcome once they have all ended."""
    latest = ctx.latest_by_task(None)
    for node in enabled(flow.root.branch(BRANCH_AFTER)):
        run = latest.get(node.id)
        if run is None:
            ctx.create(node, None)
            return None
        if run.state in ACTIVE:
            return None
    return outcome


def _visit(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    for child in ctx.by_parent.get(run.id if run else None, ()):
        if child.state is State.RUNNING or child.state is State.PAUSED:
            child_node = ctx.flow.nodes.get(child.task_id)
            if child_node is not None and child_node.kind == "flowable":
                child_outcome = _visit(ctx, child_node, child)
                if child_outcome is not None:
                    ctx.actions.append(SetTaskRunState(child.id, tolerate(child_node, child_outcome)))
    handler = FLOWABLES.get(node.type)
    if handler is None:
        if run is not None:
            ctx.actions.append(Log("ERROR", f"task type {node.type} cannot run yet", run.id, node.id))
            ctx.actions.append(SetTaskRunState(run.id, State.FAILED))
        return None
    return handler(ctx, node, run)


def apply_to_view(view: ExecutionView, actions: Iterable[Action]) -> ExecutionView:
    runs = {run.id: run for run in view.task_runs}
    state = view.state
    scheduled = view.scheduled
    for action in actions:
        if isinstance(action, CreateTaskRun):
            runs[action.id] = TaskRunView(
                id=action.id, task_id=action.task_id, parent_id=action.parent_id, state=action.state,
                seq=action.seq, value=action.value, iteration=action.iteration,
            )
        elif isinstance(action, SetTaskRunState):
            runs[action.task_run_id] = replace(
                runs[action.task_run_id], state=action.state,
                outputs=action.outputs if action.outputs is not None else runs[action.task_run_id].outputs,
            )
        elif isinstance(action, SetExecutionState):
            state = action.state
        elif isinstance(action, ScheduleDelay):
            scheduled = scheduled | {(action.task_run_id, action.kind)}
        elif isinstance(action, DeleteTaskRun):
            runs.pop(action.task_run_id, None)
        elif isinstance(action, StartSubflow):  # asked once per step: the shell does the rest
            scheduled = scheduled | {(action.task_run_id, "start")}
        elif isinstance(action, ResumeExecution):
            scheduled = scheduled | {(action.task_run_id, "resume")}
        elif isinstance(action, FetchLogs):
            scheduled = scheduled | {(action.task_run_id, "fetch")}
    return replace(view, state=state, task_runs=tuple(runs.values()), scheduled=scheduled)


def decide(flow: FlowGraph, view: ExecutionView, new_id: Callable[[], str] = default_new_id,
           renderer: Renderer | None = None, details: RunDetails | None = None) -> list[Action]:
    """Every action needed to bring the execution as far as it can go right now.

    An execution is PAUSED while one of its task runs is (a Pause waiting), and RUNNING again
    once none is; the rest of it goes on meanwhile, as in Kestra."""
    actions: list[Action] = []
    if view.state is State.CREATED:
        actions.append(SetExecutionState(State.RUNNING))
        view = replace(view, state=State.RUNNING)
    if view.state is not State.RUNNING and view.state is not State.PAUSED:
        return actions
    for _ in range(MAX_ROUNDS):
        round_actions = step(flow, view, new_id, renderer, details)
        if not round_actions:
            break
        actions.extend(round_actions)
        view = apply_to_view(view, round_actions)
        if view.state.is_terminal:
            return actions
    paused = any(run.state is State.PAUSED for run in view.task_runs)
    if paused and view.state is State.RUNNING:
        actions.append(SetExecutionState(State.PAUSED))
    elif not paused and view.state is State.PAUSED:
        actions.append(SetExecutionState(State.RUNNING))
    return actions


@dataclass(frozen=True, slots=True)
class ResultVerdict:
    state: State
    outputs: Mapping | None
    retry_at: datetime | None = None  # set with state RETRYING: when the next attempt starts


def judge_result(node: TaskNode, run: TaskRunView, attempt: int, reported: State, outputs: Mapping | None, *,
                 retry: RetryPolicy | None = None, first_start: datetime | None = None,
                 now: datetime | None = None, draw: Callable[[], float] = random.random,
                 lost: int = 0) -> ResultVerdict | None:
    """The task run's new state for a worker's result, or None when the result must be ignored:
    it is for an attempt other than the one in flight (a late result of an attempt lost with its
    worker too), or the task run has already ended.

    A failed attempt that the task's `retry` policy allows to repeat leaves the task run RETRYING
    until `retry_at`; retries come before `allowFailure`, which judges the last attempt only.
    With `warningOnRetry`, success after a failed attempt is a WARNING. The `lost` attempts
    before this one (their worker died; the executor sent them again) are not the task's
    failures: neither `maxAttempt` nor `warningOnRetry` counts them."""
    if run.state.is_terminal or attempt != run.attempts + 1:
        return None
    counted = attempt - lost
    if reported is State.FAILED and retry is not None and now is not None:
        at = retry.next_attempt_at(counted, first_start or now, now, draw)
        if at is not None:
            return ResultVerdict(state=State.RETRYING, outputs=outputs, retry_at=at)
    if reported is State.SUCCESS and counted > 1 and retry is not None and retry.warning_on_retry:
        reported = State.WARNING
    return ResultVerdict(state=tolerate(node, reported), outputs=outputs)


def tolerate(node: TaskNode, state: State) -> State:
    """A task's own outcome after `allowFailure` (FAILED counts as WARNING) and `allowWarning`
    (WARNING counts as SUCCESS)."""
    if state is State.FAILED and node.allow_failure:
        state = State.WARNING
    if state is State.WARNING and node.allow_warning:
        state = State.SUCCESS
    return state

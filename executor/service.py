"""The executor's shell: lock the execution, feed the pure core, apply its actions, and publish
the resulting messages once the transaction has committed.

This is the hot path of every task, so it reads only what a step needs: the scalar columns of
the execution's task runs (no JSON), the full row of a task run it changes, and the outputs a
new job's expressions name. In a flow with loops, a step about one task run (its result, the end
of the subflow execution it waits for, its delay) reads only the task runs around it and counts
of the loops' other children (`_focused_step`, docs/architecture.md "A step reads what it is
about"), so that its cost does not grow with the loops' width.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

import orjson
from django.conf import settings
from django.db import transaction

from executor import delays, flow_triggers, for_each_item, log_fetch, store, working_directory
from executor.restart import restart_actions
from executor.core import (
    CreateTaskRun, Dispatch, ExecutionView, FlowGraph, Log, SetExecutionState, SetTaskRunState, TaskRunView,
    decide, judge_result,
)
from executor.core.actions import (
    DeleteTaskRun, FetchLogs, ResumeExecution, ScheduleDelay, StartSubflow, comparable,
)
from executor.core.context import (
    error_logs, execution_context, outputs_of, referenced_in, referenced_outputs, run_context, uses_error_logs,
)
from executor.core.control import change_state, end_now, kill, replay_runs, resume
from executor.core.decide import ContextRenderer, WholeViewNeeded, apply_to_view
from executor.core.model import LOOPS
from executor.core.flowables.subflow import OLD_FLOW, SUBFLOW
from executor.flowables.for_each_item import ITEMS as FOR_EACH_ITEM_BATCHES
from executor.core.flowables.working_directory import ChildResult, accepted_children, outcome
from executor.core.outputs import FlowOutputError, render_flow_outputs
from executor.core.retry import CREATE_NEW_EXECUTION, RetryPolicy, task_policy
from orchestrator.flowlang.types import parse_duration
from orchestrator.templating import TemplateError, is_truthy, render_value
from orchestrator import bus, messages
from orchestrator.models import Delay, Execution, LogEntry, TaskRun, new_id
from orchestrator.repository import FlowNotFound, flow_graph, iso, merge_labels, now
from orchestrator.states import ACTIVE, State
from workers.claims import LOST_OWNER, claim_key, get_claims, result_key
from workers.environment import ambient

logger = logging.getLogger("harrier.executor")

SUBFLOW_TYPES = (SUBFLOW, OLD_FLOW)
NEW_EXECUTION_DELAY = "new-execution"  # a flow retry's next attempt, on the execution it replaces
SLA_DELAY = "sla:"  # the kind of a MAX_DURATION SLA's delay: "sla:<id>"
_SEVERITY_ORDER = [State.SUCCESS, State.WARNING, State.CANCELLED, State.FAILED, State.KILLED]

# The states of an execution that hold one of its flow's concurrency slots.
OCCUPYING = [State.RUNNING.value, State.PAUSED.value, State.KILLING.value]
# The states of a task run whose job is sent and not yet answered.
IN_FLIGHT = (State.CREATED.value, State.RUNNING.value)



def handle_message(message: dict[str, Any]) -> None:
    """Consume one executor message. Safe to call twice with the same message."""
    if message.get("v") != messages.VERSION:
        logger.error("dropping executor message of unknown version: %r", message.get("v"))
        return
    if message.get("kind") == "progress":
        working_directory.apply_progress(message)
        return
    result = message.get("result")
    if result is not None and store.has_ended(message["executionId"], result["taskRunId"]):
        # A duplicate, or a result an earlier step applied from the worker's kept copy: it would
        # change nothing, so it does not wait for the execution's lock behind a long step.
        return
    sending = message.get("kind") == "send"
    about = [result["taskRunId"]] if result is not None else [str(run_id) for run_id in message.get("about") or ()]
    focusing = bool(about) and not message.get("redispatch") and not message.get("lost")
    # Read before the transaction: a step's first lock is the execution's row.
    found = _graph_of(message["executionId"]) if sending or focusing else None
    with transaction.atomic():
        jobs = None
        if found is not None and sending:
            jobs = _send_unsent(message["executionId"], *found)
        elif found is not None and focusing and found[1].loops:
            jobs = _focused_step(message["executionId"], about, result, *found)
        if jobs is None:
            execution, rows, result_run = store.load(message["executionId"], result["taskRunId"] if result else None)
            if execution is None:
                logger.warning("execution %s does not exist", message["executionId"])
                return
            if State(execution.state).is_terminal:
                return
            step = Step(execution)
            jobs = step.advance(rows, result, result_run)
            jobs += step.redispatch(message.get("redispatch") or [])
            jobs += step.reattempt(message.get("lost") or [])
        if jobs:
            transaction.on_commit(lambda: _send(jobs))


_FLOWS: dict[str, tuple[str, str, int]] = {}


def _flow_of(execution_id: str) -> tuple[str, str, int] | None:
    """The flow revision an execution runs, kept per process (it never changes: a restart on
    another revision is a new execution)."""
    flow = _FLOWS.get(execution_id)
    if flow is None:
        flow = Execution.objects.filter(id=execution_id).values_list("namespace", "flow_id", "flow_revision").first()
        if flow is not None:
            if len(_FLOWS) > 4096:
                _FLOWS.clear()
            _FLOWS[execution_id] = flow
    return flow


def _focused_step(execution_id: str, about: list[str], result: messages.TaskResult | None,
                  flow: tuple[str, str, int], graph: FlowGraph) -> list[messages.WorkerJob] | None:
    """The step for a task run's result (or an evaluation `about` task runs: a subflow execution
    has ended), over a view of the task runs it is about (docs/executions.md, "Wide loops"): those
    outside loops, the task runs and those above them, the task runs of their loop values; of each
    loop above them, the other children only counted. Its cost does not grow with the loops'
    width. None when the step must look at every task run: an execution that is not RUNNING, or a
    decision that needs them all (WholeViewNeeded). Nothing is written before it returns a list."""
    kept = _take_finished(execution_id, about)
    execution, rows, run, focus = _read_focused(execution_id, flow, graph, result["taskRunId"] if result else None,
                                                about, kept)
    if focus is None or (result is not None and run is None):
        return None
    try:
        return Step(execution).advance(rows, result, run, focus=focus)
    except WholeViewNeeded:
        return None


def _read_focused(execution_id: str, flow: tuple[str, str, int], graph: FlowGraph, result_id: str | None,
                  about: list[str], kept: Mapping[str, messages.TaskResult]
                  ) -> tuple[Execution | None, list[tuple], TaskRun | None, Focus | None]:
    """Lock the execution and read the part of it a step about `about` (and the result `result_id`,
    and the `kept` results it applies too) looks at (store.load_focused). The Focus is None when
    that part cannot stand for the execution: it is not RUNNING, or `_unseen` refuses the view."""
    outside, value_loops = _derived("loop parts", flow, lambda: _split_loops(graph))
    execution, rows, run, above, last_seq = store.load_focused(
        execution_id, result_id, [*about, *kept], outside, graph.loops, value_loops)
    if execution is None or execution.state != State.RUNNING.value:
        return execution, rows, run, None
    unseen = _unseen(execution_id, graph, rows, above)
    return execution, rows, run, None if unseen is None else Focus(unseen, last_seq + 1, kept)


def _unseen(execution_id: str, graph: FlowGraph, rows: list[tuple], above: set[str]
            ) -> dict[str, dict[tuple[str, State], int]] | None:
    """ExecutionView.unseen for the `rows` a focused step read: the children of each running loop
    among them that they leave out, counted. None when the view cannot stand for the execution (a
    flowable at work whose children it does not hold; counts that disagree with the rows)."""
    loop_runs = []
    for row in rows:
        node = graph.nodes.get(row[1])
        if node is None or State(row[3]) not in ACTIVE:
            continue
        if node.id in graph.loops:
            loop_runs.append(row[0])
        elif node.kind == "flowable" and node.id in graph.in_loops and row[0] not in above:
            return None
    counts = store.child_counts(loop_runs)
    for row in rows:
        if row[2] in counts:
            counts[row[2]][row[1], row[3]] -= 1
    unseen: dict[str, dict[tuple[str, State], int]] = {}
    for parent_id, by_state in counts.items():
        if any(count < 0 for count in by_state.values()):
            logger.error("execution %s: the children of task run %s are counted wrong (%r); the step reads them all",
                         execution_id, parent_id, by_state)
            return None
        unseen[parent_id] = {(task_id, State(state)): count for (task_id, state), count in by_state.items() if count}
    return unseen


def _send_unsent(execution_id: str, flow: tuple[str, str, int], graph: FlowGraph) -> list[messages.WorkerJob] | None:
    """The next batch of the jobs earlier steps left unsent (Step._defer_beyond_batch), read by an
    index on the task runs never sent: as cheap with a hundred thousand of them as with ten. None
    when a step over the whole execution must do it (an execution that is not running)."""
    execution = store.lock_execution(execution_id)
    if execution is None or execution.state not in (State.RUNNING.value, State.PAUSED.value):
        return None
    step = Step(execution)
    own_jobs = _derived("own jobs", flow, lambda: sorted(task_id for task_id in graph.nodes
                                                         if Step._own_job(graph, task_id)))
    unsent = store.unsent(execution_id, own_jobs, settings.HARRIER_DISPATCH_BATCH + 1)
    if len(unsent) > settings.HARRIER_DISPATCH_BATCH:
        step._send_later()
        del unsent[settings.HARRIER_DISPATCH_BATCH:]
    if not unsent:
        return []
    for run in unsent:
        run.dispatched = step.moment
    store.mark_dispatched(execution_id, [run.id for run in unsent], step.moment)
    view = step._view(())
    runs = step._runs(view)
    return [step._job(graph, view, run, run.attempt_count + 1, runs) for run in unsent]


def _kept_results(bodies: Iterable[bytes | None]) -> dict[str, messages.TaskResult]:
    """The results in the result messages workers kept, by task run id (missing ones and those of
    another message version left out)."""
    found = {}
    for body in bodies:
        if body is not None:
            message = orjson.loads(body)
            if message.get("v") == messages.VERSION and message.get("result"):
                found[message["result"]["taskRunId"]] = message["result"]
    return found


def _take_finished(execution_id: str, about: list[str]) -> dict[str, messages.TaskResult]:
    """Results of the execution's other jobs that workers have finished and kept, taken to be
    applied with this one (a batch at most): many results arriving together cost a few steps."""
    found = _kept_results(get_claims().take_finished(execution_id, settings.HARRIER_DISPATCH_BATCH))
    for task_run_id in about:
        found.pop(task_run_id, None)
    return found


@dataclass(frozen=True)
class Focus:
    """What a step over part of an execution knows of the rest (_focused_step)."""

    unseen: Mapping[str, Mapping[tuple[str, State], int]]  # ExecutionView.unseen
    next_seq: int
    kept: Mapping[str, messages.TaskResult]  # the other results it applies, by task run id


def _graph_of(execution_id: str) -> tuple[tuple[str, str, int], FlowGraph] | None:
    """The flow revision an execution runs and its graph, for the steps that read part of an
    execution (PostgreSQL only); None when they cannot."""
    if not store.can_focus():
        return None
    flow = _flow_of(execution_id)
    if flow is None:
        return None
    try:
        return flow, flow_graph(*flow)
    except FlowNotFound:
        return None


_DERIVED: dict[tuple[str, tuple[str, str, int]], Any] = {}


def _derived(name: str, flow: tuple[str, str, int], compute: Callable[[], Any]) -> Any:
    """What `compute` derives from a flow revision's graph, computed once per process."""
    key = (name, flow)
    if key not in _DERIVED:
        if len(_DERIVED) > 2048:
            _DERIVED.clear()
        _DERIVED[key] = compute()
    return _DERIVED[key]


def _split_loops(graph: FlowGraph) -> tuple[list[str], frozenset[str]]:
    """The tasks outside any loop, and the loops whose values each run their tasks in sequence."""
    return (sorted(set(graph.nodes) - graph.in_loops),
            frozenset(task_id for task_id in graph.loops if LOOPS[graph.nodes[task_id].type]))


class NotPaused(ValueError):
    """Only a PAUSED execution can be resumed."""


def resume_execution(execution_id: str, on_resume: dict[str, Any] | None = None) -> None:
    """Resume a paused execution, giving its paused tasks the `onResume` inputs. Raises
    LookupError when it does not exist and NotPaused when it is not paused."""
    with transaction.atomic():
        execution, rows, _ = store.load(execution_id, None)
        if execution is None:
            raise LookupError(f"execution {execution_id} does not exist")
        # The pause's own delays (its duration, its timeout) have nothing left to do.
        paused = [row[0] for row in rows if row[3] == State.PAUSED.value]
        Delay.objects.filter(execution_id=execution_id, task_run_id__in=paused).exclude(kind=Delay.RETRY).delete()
        if execution.state != State.PAUSED.value:
            raise NotPaused(f"execution {execution_id} is {execution.state}, not PAUSED: only a paused execution "
                            f"resumes")
        on_resume = _resume_inputs(execution, rows, on_resume or {})
        step = Step(execution)
        try:
            jobs = step.act(rows, lambda graph, view: resume(view, on_resume))
        except ValueError as error:
            raise NotPaused(str(error)) from None
        if jobs:
            transaction.on_commit(lambda: _send(jobs))


def _resume_inputs(execution: Execution, rows: list[tuple], given: dict[str, Any]) -> dict[str, Any]:
    """The inputs given on resume, typed and checked by the paused Pause's `onResume`
    declarations (raises InvalidInputs); taken as given when it declares none."""
    from orchestrator import encryption
    from orchestrator.inputs import resolve_inputs

    graph = flow_graph(execution.namespace, execution.flow_id, execution.flow_revision)
    declarations = []
    for row in rows:
        node = graph.nodes.get(row[1])
        if row[3] == State.PAUSED.value and node is not None:
            declarations += node.definition.get("onResume") or []
    if not declarations:
        return dict(given)
    return resolve_inputs(declarations, given, seal=encryption.encrypt)


class NotKillable(ValueError):
    """Only an execution that has not ended can be killed."""


def kill_execution(execution_id: str) -> None:
    """Kill an execution and the subflow executions it waits for. Raises LookupError when it
    does not exist and NotKillable when it has already ended."""
    with transaction.atomic():
        execution, rows, _ = store.load(execution_id, None)
        if execution is None:
            raise LookupError(f"execution {execution_id} does not exist")
        step = Step(execution)
        try:
            children = step.kill(rows)
        except ValueError as error:
            raise NotKillable(str(error)) from None
        Delay.objects.filter(execution_id=execution_id).delete()
        transaction.on_commit(lambda: get_claims().mark_killed(execution_id))
        for child_id in children:
            try:
                kill_execution(child_id)
            except (LookupError, NotKillable):
                pass  # ended meanwhile, or gone


class NotApplicable(ValueError):
    """The action does not apply to the execution as it is (restart a running one…)."""


def restart_execution(execution_id: str, revision: int | None = None) -> Execution | None:
    """Restart a FAILED or KILLED execution under its id: its failed task runs run again.
    On another revision of the flow it is a new execution instead — a replay from its first
    failed task run — which is returned. Raises LookupError when it does not exist and
    NotApplicable when it cannot restart."""
    if revision is None:
        _act(execution_id, lambda graph, view: restart_actions(graph, view, restart_execution))
        return None
    execution = Execution.objects.filter(id=execution_id).first()
    if execution is None:
        raise LookupError(f"execution {execution_id} does not exist")
    if revision == execution.flow_revision:
        return restart_execution(execution_id)
    if State(execution.state) not in (State.FAILED, State.KILLED):
        raise NotApplicable(f"execution {execution_id} is {execution.state}: only a FAILED or KILLED execution can "
                            f"be restarted")
    failed = TaskRun.objects.filter(execution_id=execution_id, state__in=[State.FAILED.value, State.KILLED.value]) \
        .order_by("seq").values_list("id", flat=True).first()
    return replay_execution(execution_id, failed, revision)


def change_task_run_state(execution_id: str, task_run_id: str, state: State) -> None:
    """Give an ended task run another state; the execution goes on from there."""
    _act(execution_id, lambda graph, view: change_state(graph, view, task_run_id, state))


def _act(execution_id: str, action: Callable[[FlowGraph, ExecutionView], list]) -> None:
    with transaction.atomic():
        execution, rows, _ = store.load(execution_id, None)
        if execution is None:
            raise LookupError(f"execution {execution_id} does not exist")
        try:
            jobs = Step(execution).act(rows, action)
        except ValueError as error:
            raise NotApplicable(str(error)) from None
        if execution.state == State.RUNNING.value:
            # A killed execution that runs again: workers must not drop its jobs. Before the
            # jobs are sent; harmless if this transaction then fails.
            get_claims().revive(execution_id)
        if jobs:
            transaction.on_commit(lambda: _send(jobs))


def replay_execution(execution_id: str, task_run_id: str | None = None, revision: int | None = None) -> Execution:
    """A new execution of the same flow and inputs that keeps what ran before `task_run_id` (all
    of it again when None), on `revision` or the same one. Its `originalId` names the first
    execution of the chain."""
    with transaction.atomic():
        execution, rows, _ = store.load(execution_id, None)
        if execution is None:
            raise LookupError(f"execution {execution_id} does not exist")
        try:
            graph = flow_graph(execution.namespace, execution.flow_id, revision or execution.flow_revision)
        except FlowNotFound as error:
            raise NotApplicable(str(error)) from None
        view = Step(execution)._view(tuple(_row_view(row) for row in rows))
        try:
            kept = replay_runs(graph, view, task_run_id)
        except ValueError as error:
            raise NotApplicable(str(error)) from None
        unknown = sorted({run.task_id for run in kept if run.task_id not in graph.nodes})
        if unknown:
            raise NotApplicable(f"revision {graph.revision} has no task {', '.join(unknown)}: replay from an earlier "
                                f"task run or on the execution's own revision")
        moment = now()
        stamp = iso(moment)
        replay = Execution.objects.create(
            id=new_id(), namespace=execution.namespace, flow_id=execution.flow_id, flow_revision=graph.revision,
            state=State.CREATED.value, state_history=[{"state": State.CREATED.value, "date": stamp}],
            inputs=execution.inputs, labels=execution.labels, variables=execution.variables,
            trigger=execution.trigger, parent_id=execution.parent_id,
            original_id=execution.original_id or execution.id, start_date=moment, updated=moment,
        )
        states = {run.id: run.state for run in kept}
        ids = {run.id: new_id() for run in kept}
        copies = []
        for run in store.task_runs(execution.id, list(ids)):
            copy = TaskRun(
                id=ids[run.id], execution=replay, task_id=run.task_id,
                parent_task_run_id=ids.get(run.parent_task_run_id) if run.parent_task_run_id else None,
                value=run.value, iteration=run.iteration, state=run.state, state_history=run.state_history,
                attempts=run.attempts, attempt_count=run.attempt_count, outputs=run.outputs, seq=run.seq,
            )
            _set_run_state(copy, states[run.id], stamp)
            copies.append(copy)
        TaskRun.objects.bulk_create(copies)
        replay_id = replay.id
        transaction.on_commit(lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK,
                                                  messages.evaluate(replay_id)))
    return replay


def fire_delay(delay_id: int, execution_id: str) -> int:
    """Fire one due delay under its execution's lock; 1 when fired, 0 when another executor
    fired it first (the row is gone) or there is nothing left to do. A delay of a task run (a
    retry's wait, a Pause's, a WaitFor's) is decided over the part of the execution it is about
    when the flow has loops, as a result is (_focused_step)."""
    about = Delay.objects.filter(id=delay_id).values_list("task_run_id", "kind").first()
    if about is None:
        return 0
    found = _graph_of(execution_id) if about[0] and about[1] != NEW_EXECUTION_DELAY else None
    with transaction.atomic():
        focus = None
        if found is not None and found[1].loops:
            execution, rows, _, focus = _read_focused(execution_id, *found, None, [about[0]], {})
        if focus is None:
            execution, rows, _ = store.load(execution_id, None)
        delay = Delay.objects.filter(id=delay_id).first()
        if delay is None:
            return 0
        Delay.objects.filter(id=delay_id).delete()
        if execution is not None and delay.kind == NEW_EXECUTION_DELAY:
            _start_retry(execution)
            return 1
        if execution is None or State(execution.state).is_terminal:
            return 0
        try:
            jobs = Step(execution).advance(rows, None, None, fired=[delay], focus=focus)
        except WholeViewNeeded:
            execution, rows, _ = store.load(execution_id, None)
            jobs = Step(execution).advance(rows, None, None, fired=[delay])
        if jobs:
            transaction.on_commit(lambda: _send(jobs))
    return 1


def _start_retry(execution: Execution) -> Execution:
    """The next attempt of a flow that retries by creating a new execution: same revision,
    inputs, labels and trigger; `originalId` and the attempt number chain the attempts."""
    metadata = execution.metadata or {}
    moment = now()
    retry = Execution.objects.create(
        id=new_id(), namespace=execution.namespace, flow_id=execution.flow_id, flow_revision=execution.flow_revision,
        state=State.CREATED.value, state_history=[{"state": State.CREATED.value, "date": iso(moment)}],
        inputs=execution.inputs, labels=execution.labels, trigger=execution.trigger, parent_id=execution.parent_id,
        original_id=execution.original_id or execution.id, start_date=moment, updated=moment,
        metadata={"attemptNumber": int(metadata.get("attemptNumber", 1)) + 1,
                  "originalCreatedDate": metadata.get("originalCreatedDate") or iso(execution.start_date)},
    )
    retry_id = retry.id
    transaction.on_commit(lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK,
                                              messages.evaluate(retry_id)))
    return retry


def _send(jobs: list[messages.WorkerJob]) -> None:
    bus.publish_all(
        (messages.worker_queue((job["task"].get("workerGroup") or {}).get("key")), messages.WORKER_TASK, job)
        for job in jobs
    )


def _row_view(row: tuple) -> TaskRunView:
    """A task run's view from the scalar columns store.load reads (store.VIEW_COLUMNS)."""
    return TaskRunView(id=row[0], task_id=row[1], parent_id=row[2], state=State(row[3]), seq=row[4], value=row[5],
                       iteration=row[6], attempts=row[7])


def _run_view(run: TaskRun) -> TaskRunView:
    return TaskRunView(
        id=run.id, task_id=run.task_id, parent_id=run.parent_task_run_id, state=State(run.state), seq=run.seq,
        value=run.value, iteration=run.iteration, attempts=run.attempt_count,
    )


class Step:
    """One executor step over one locked execution."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.moment = now()
        self.stamp = iso(self.moment)
        self.full: dict[str, TaskRun] = {}  # rows loaded whole, because this step changes them
        self.created: list[TaskRun] = []
        self.changed: set[str] = set()
        self.logs: list[LogEntry] = []
        self.delays: list[Delay] = []
        self.deleted: set[str] = set()
        self.settled: list[TaskRun] = []  # a WorkingDirectory's task runs its result brought to their end
        self.asked: set[str] = set()  # the kinds of message this step sends itself once it commits
        # Entries of the state history before this step: the ones after it are changes that Flow
        # triggers may listen for (executor/flow_triggers.py).
        self.history_seen = len(execution.state_history or ())
        self.batching = False

    def advance(self, rows: list[tuple], result: messages.TaskResult | None,
                result_run: TaskRun | None, fired: list[Delay] = (),
                focus: Focus | None = None) -> list[messages.WorkerJob]:
        """Apply a result (or fired delays) and decide what follows, over `rows`: every task run
        of the execution, or, with `focus`, those a focused step read (_focused_step). Raises
        WholeViewNeeded, having written nothing, when a focused step turns out to need them all."""
        execution = self.execution
        try:
            graph = flow_graph(execution.namespace, execution.flow_id, execution.flow_revision)
        except FlowNotFound as error:
            self._end_without_flow(str(error))
            return []
        starting = execution.state in (State.CREATED.value, State.QUEUED.value)
        if self._scheduled_later():
            return []  # its START delay starts it
        if not self._admit(graph):
            return []
        if starting and graph.data.get("sla"):
            self._schedule_sla(graph)
        views = {row[0]: _row_view(row) for row in rows}
        if result is not None:
            run = self._apply_result(graph, result, result_run)
            if run is None:
                return []  # a duplicate or stale result changes nothing
            views[run.id] = _run_view(run)
        if result is not None or rows:
            # Also on a plain evaluation: the reconciler asks for one when results wait unapplied.
            for other in self._apply_kept_results(graph, views, focus.kept if focus is not None else None):
                views[other.id] = _run_view(other)
            # A WorkingDirectory's tasks.
            views.update((child.id, _run_view(child)) for child in (*self.created, *self.settled))
        dispatches: list[Dispatch] = []
        fired_kinds: dict[str, str] = {}
        for delay in fired:
            if delay.kind.startswith(SLA_DELAY) and delay.task_run_id is None:
                return self.act(rows, lambda graph_, view_: self._sla_violated(graph_, view_, delay.kind))
            if delay.kind != Delay.RETRY:
                if delay.task_run_id:
                    fired_kinds[delay.task_run_id] = delay.kind
                continue
            dispatch = self._fire(delay)
            if dispatch is not None:
                dispatches.append(dispatch)
                views[dispatch.task_run_id] = _run_view(self.full[dispatch.task_run_id])
        dispatches += self._deferred_dispatches(graph, rows)
        view = replace(self._view(tuple(views.values())), fired=fired_kinds)
        if focus is not None:
            view = replace(view, unseen=focus.unseen, next_seq=focus.next_seq)
        actions = decide(graph, view, new_id, _LazyRenderer(self, graph, view), _Details(self))
        if focus is not None and settings.HARRIER_CHECK_FOCUSED_STEPS:
            self._check_focused(graph, view, actions)
        return self._apply(graph, view, actions, dispatches)

    def _check_focused(self, graph: FlowGraph, view: ExecutionView, actions: list) -> None:
        """Decide the step again over every task run, and fail it when that decides otherwise than
        the focused view did (HARRIER_CHECK_FOCUSED_STEPS, set by the tests)."""
        runs = {row[0]: _row_view(row) for row in store.load_rows(self.execution.id)}
        runs.update((run.id, _run_view(run)) for run in self.full.values())
        whole = replace(view, task_runs=tuple(sorted(runs.values(), key=lambda run: run.seq)), unseen=None,
                        next_seq=0)
        # The subflow executions the focused view has no task run waiting for may have ended
        # meanwhile; their ends are the business of the messages that will say so.
        expected = decide(graph, whole, new_id, _LazyRenderer(self, graph, whole),
                          _SeenDetails(self, {run.id for run in view.task_runs}))
        if comparable(actions) != comparable(expected):
            logger.error("execution %s: a focused step decided %r where the whole view decides %r",
                         self.execution.id, actions, expected)
            raise AssertionError(f"execution {self.execution.id}: the focused step decided otherwise than the "
                                 f"whole view")

    def act(self, rows: list[tuple], action: Callable[[FlowGraph, ExecutionView], list]) -> list[messages.WorkerJob]:
        """Apply a person's action on the execution — decided by the core, which raises
        ValueError when it does not apply — then the decisions that follow from it."""
        graph = flow_graph(self.execution.namespace, self.execution.flow_id, self.execution.flow_revision)
        view = self._view(tuple(_row_view(row) for row in rows))
        actions = action(graph, view)
        view = apply_to_view(view, actions)
        actions += decide(graph, view, new_id, _LazyRenderer(self, graph, view), _Details(self))
        return self._apply(graph, view, actions, [])

    def kill(self, rows: list[tuple]) -> list[str]:
        """Kill the execution (raises ValueError when it has ended); returns the ids of the
        subflow executions its killed task runs were waiting for."""
        children = []

        def killing(graph: FlowGraph, view: ExecutionView) -> list:
            actions = kill(view)
            for run in view.task_runs:
                node = graph.nodes.get(run.task_id)
                if run.state in ACTIVE and node is not None and node.type in SUBFLOW_TYPES:
                    child_id = (self._load(run.id).outputs or {}).get("executionId")
                    if child_id:
                        children.append(child_id)
                elif run.state in ACTIVE and node is not None and node.type == FOR_EACH_ITEM_BATCHES:
                    children.extend(for_each_item.active_children(self.execution.id, run.id))
            return actions

        self.act(rows, killing)
        return children

    def _apply(self, graph: FlowGraph, view: ExecutionView, actions: list, dispatches: list[Dispatch]
               ) -> list[messages.WorkerJob]:
        execution = self.execution
        logs = self.logs
        final_state: State | None = None
        for action in actions:
            if isinstance(action, CreateTaskRun):
                run = TaskRun(
                    id=action.id, execution=execution, task_id=action.task_id, parent_task_run_id=action.parent_id,
                    value=action.value, iteration=action.iteration, state=action.state.value, seq=action.seq,
                    state_history=_history_to(action.state, self.stamp), attempts=[],
                )
                self.full[run.id] = run
                self.created.append(run)
            elif isinstance(action, SetTaskRunState):
                run = self._load(action.task_run_id)
                _set_run_state(run, action.state, self.stamp)
                if action.outputs is not None:
                    run.outputs = dict(action.outputs)
                self.changed.add(run.id)
            elif isinstance(action, Dispatch):
                run = self._load(action.task_run_id)
                run.dispatched = self.moment
                self.changed.add(run.id)
                dispatches.append(action)
            elif isinstance(action, SetExecutionState):
                if action.state.is_terminal:
                    final_state = action.state  # set after the task runs are written (flow outputs)
                else:
                    _set_execution_state(execution, action.state, self.stamp)
            elif isinstance(action, StartSubflow):
                self._start_subflow(graph, action)
            elif isinstance(action, DeleteTaskRun):
                self.deleted.add(action.task_run_id)
            elif isinstance(action, ResumeExecution):
                self._resume_other(action)
            elif isinstance(action, FetchLogs):
                self._fetch_logs(action)
            elif isinstance(action, ScheduleDelay):
                if not Delay.objects.filter(execution_id=execution.id, task_run_id=action.task_run_id,
                                            kind=action.kind).exists():
                    self.delays.append(Delay(execution_id=execution.id, task_run_id=action.task_run_id,
                                             kind=action.kind, fire_at=self.moment + action.after))
            elif isinstance(action, Log):
                logs.append(LogEntry(
                    execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
                    task_id=action.task_id, task_run_id=action.task_run_id, level=action.level,
                    message=action.message, timestamp=self.moment,
                ))
        self._defer_beyond_batch(dispatches)
        self.batching = True  # flow triggers need answers to their statements: after the pipeline
        with store.batch():
            self._save_runs()
            if final_state in (State.SUCCESS, State.WARNING) and graph.data.get("outputs"):
                final_state = self._render_flow_outputs(graph, view, logs, final_state)
            if final_state is not None and graph.data.get("sla"):
                final_state = self._check_assertions(graph, view, final_state)
            if final_state is State.FAILED and graph.data.get("retry"):
                final_state = self._retry_execution(graph, final_state)
            if final_state is not None:
                _set_execution_state(execution, final_state, self.stamp)
                self._ended(graph)
            self._save_execution(logs)
        self.batching = False
        self._fire_flow_triggers()
        # Jobs are built after the writes, so that outputs this step stored are visible to them.
        runs = self._runs(view)
        return [self._job(graph, view, self.full[d.task_run_id], d.attempt, runs) for d in dispatches]

    def _deferred_dispatches(self, graph: FlowGraph, rows: list[tuple]) -> list[Dispatch]:
        """Dispatches for the jobs an earlier step left to send (`_defer_beyond_batch`): task runs
        CREATED and never sent, at most one batch of them. (A WorkingDirectory's tasks run in
        its job, never in their own.)"""
        deferred = [row[0] for row in rows if row[3] == State.CREATED.value and row[8]
                    and self._own_job(graph, row[1])]
        if len(deferred) > settings.HARRIER_DISPATCH_BATCH:
            self._send_later()  # the next batch: the steps about a result may not see them
        dispatches = []
        for run in store.task_runs(self.execution.id, deferred[:settings.HARRIER_DISPATCH_BATCH]):
            run.dispatched = self.moment
            self.full[run.id] = run
            self.changed.add(run.id)
            dispatches.append(Dispatch(task_run_id=run.id, attempt=run.attempt_count + 1))
        return dispatches

    @staticmethod
    def _own_job(graph: FlowGraph, task_id: str) -> bool:
        node, holder = graph.nodes.get(task_id), graph.nodes.get(graph.parents.get(task_id, ""))
        return node is not None and node.dispatched and not (holder is not None and holder.worker_job)

    def _defer_beyond_batch(self, dispatches: list[Dispatch]) -> None:
        """A step sends at most HARRIER_DISPATCH_BATCH jobs; the others stay CREATED with no
        dispatch date, and the next step sends them. So a wide loop's jobs go out a batch at a
        time, each step stays short, and a job's dispatch date is close to its sending, which
        is what the reconciler judges a lost job by."""
        for action in dispatches[settings.HARRIER_DISPATCH_BATCH:]:
            self._load(action.task_run_id).dispatched = None
        if len(dispatches) > settings.HARRIER_DISPATCH_BATCH:
            del dispatches[settings.HARRIER_DISPATCH_BATCH:]
            self._send_later()

    def _send_later(self) -> None:
        """Send the next batch of unsent jobs once this step has committed."""
        self._ask_once(messages.send(self.execution.id))

    def _evaluate_again(self) -> None:
        """Look at the execution again once this step has committed (new children)."""
        self._ask_once(messages.evaluate(self.execution.id))

    def _ask_once(self, message: messages.ExecutorMessage) -> None:
        """Publish `message` about this execution to the executor once this step has committed;
        once per kind of message and step."""
        if message["kind"] in self.asked:
            return
        self.asked.add(message["kind"])
        transaction.on_commit(lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, message))

    def redispatch(self, task_run_ids: list[str]) -> list[messages.WorkerJob]:
        """Jobs sent again for task runs still waiting for their worker (a lost job). The worker's
        claim on (task run, attempt) makes a copy that was not lost harmless."""
        if not task_run_ids:
            return []
        waiting = [run for run in store.task_runs(self.execution.id, task_run_ids) if run.state == State.CREATED.value]
        if not waiting:
            return []
        graph = flow_graph(self.execution.namespace, self.execution.flow_id, self.execution.flow_revision)
        # A job behind others in its worker queue is waiting, not lost: sending it again would
        # only double a long queue (a wide ForEach's), and the reconciler asks again later.
        queues = {run.id: messages.worker_queue(graph.node(run.task_id).worker_group) for run in waiting}
        busy = {queue for queue in set(queues.values()) if bus.backlog(queue)}
        waiting = [run for run in waiting if queues[run.id] not in busy]
        if not waiting:
            return []
        view = self._view(())
        for run in waiting:
            run.dispatched = self.moment
        store.mark_dispatched(self.execution.id, [run.id for run in waiting], self.moment)
        logger.warning("execution %s: sending %d job(s) again", self.execution.id, len(waiting))
        runs = self._runs(view)
        return [self._job(graph, view, run, run.attempt_count + 1, runs) for run in waiting]

    def reattempt(self, lost: list[messages.LostAttempt]) -> list[messages.WorkerJob]:
        """Attempts whose worker stopped responding while it held their claim (docs/workers.md).
        Each ends FAILED in the task run's `attempts`, marked lost, and the next attempt is sent
        at once, without counting against the task's `retry`; after HARRIER_LOST_ATTEMPTS such
        losses, a loss is judged as a failed attempt instead (retry, allowFailure). A late
        result of a lost attempt is then ignored: it is not the attempt in flight."""
        if not lost:
            return []
        wanted = {entry["taskRunId"]: entry for entry in lost}
        found = [(run, wanted[run.id]) for run in store.task_runs(self.execution.id, list(wanted))
                 if run.state in IN_FLIGHT and run.attempt_count + 1 == wanted[run.id]["attempt"]]
        if not found:
            return []  # ended meanwhile, or already sent again
        claims = get_claims()
        # A worker that finished and kept its result before it died: that result stands.
        kept = claims.kept_results([result_key(run.id, entry["attempt"]) for run, entry in found])
        graph = flow_graph(self.execution.namespace, self.execution.flow_id, self.execution.flow_revision)
        logged, judged, resend = len(self.logs), False, []
        for (run, entry), body in zip(found, kept):
            if body is not None:
                transaction.on_commit(lambda body=body: bus.publish(
                    messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, orjson.loads(body)))
                continue
            attempt, worker = entry["attempt"], entry["workerId"]
            # Any copy of the lost attempt still on its way (a redelivered message) finds its
            # claim taken and is dropped: only the new attempt runs.
            claims.claim(claim_key(run.id, attempt), LOST_OWNER)
            started = run.state_history[-1]["date"] if run.state == State.RUNNING.value else \
                iso(run.dispatched or self.moment)
            reason = f"The worker {worker} stopped responding while it ran attempt {attempt}"
            if graph.node(run.task_id).worker_job:
                working_directory.end_lost_children(run, self.stamp, reason)
            losses = _lost_attempts(run.attempts)
            if losses >= settings.HARRIER_LOST_ATTEMPTS:
                self._apply_result(graph, {
                    "taskRunId": run.id, "attempt": attempt, "state": State.FAILED.value, "outputs": None,
                    "startDate": started, "endDate": self.stamp, "workerId": worker,
                    "error": f"{reason}; {losses} attempts were lost with their worker before: this loss counts "
                             f"as a failed attempt",
                }, run)
                judged = True
                continue
            run.attempts = [*run.attempts, {
                "workerId": worker, "lost": True, "error": reason,
                "state": {"current": State.FAILED.value, "histories": [
                    {"state": State.RUNNING.value, "date": started},
                    {"state": State.FAILED.value, "date": self.stamp},
                ]},
            }]
            run.attempt_count = len(run.attempts)
            run.dispatched = self.moment
            self._log(run, "WARN", f"{reason}: attempt {attempt} is lost; attempt {attempt + 1} is sent again")
            self.full[run.id] = run
            self.changed.add(run.id)
            resend.append(run)
        with store.batch():
            self._save_runs()
            self._save_execution(self.logs[logged:])
        if judged:  # a task run ended or waits for a retry: decide what follows, after commit
            execution_id = self.execution.id
            transaction.on_commit(lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK,
                                                      messages.evaluate(execution_id)))
        if resend:
            logger.warning("execution %s: %d attempt(s) lost with their worker, sent again", self.execution.id,
                           len(resend))
        view = self._view(())
        runs = self._runs(view)
        return [self._job(graph, view, run, run.attempt_count + 1, runs) for run in resend]

    # --- reading and writing ---------------------------------------------------------------

    def _runs(self, view: ExecutionView) -> dict[str, TaskRunView]:
        """The execution's task runs by id, as far as this step knows them: the view's and the
        rows it loaded or created. `_with_ancestors` loads what a lookup finds missing."""
        runs = {run.id: run for run in view.task_runs}
        runs.update((run_id, _run_view(run)) for run_id, run in self.full.items())
        return runs

    def _with_ancestors(self, runs: dict[str, TaskRunView], parent_ids: Iterable[str | None]) -> dict[str, TaskRunView]:
        """`runs` with every enclosing task run of the given parents (loop values name outputs
        and make `parents`). Only a job sent again, built without the view, has some missing."""
        missing = {parent_id for parent_id in parent_ids if parent_id is not None and parent_id not in runs}
        while missing:
            loaded = store.task_runs(self.execution.id, missing)
            runs.update((run.id, _run_view(run)) for run in loaded)
            missing = {run.parent_task_run_id for run in loaded
                       if run.parent_task_run_id is not None and run.parent_task_run_id not in runs}
        return runs

    def _load(self, task_run_id: str) -> TaskRun:
        run = self.full.get(task_run_id)
        if run is None:
            run = self.full[task_run_id] = store.task_runs(self.execution.id, [task_run_id])[0]
        return run

    def _view(self, runs: tuple[TaskRunView, ...]) -> ExecutionView:
        execution = self.execution
        return ExecutionView(
            id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
            flow_revision=execution.flow_revision, state=State(execution.state),
            start_date=iso(execution.start_date), task_runs=runs, inputs=execution.inputs or {},
            labels=tuple(execution.labels or ()), variables=execution.variables, trigger=execution.trigger,
            original_id=execution.original_id,
        )

    def _save_runs(self) -> None:
        if self.deleted:
            TaskRun.objects.filter(execution_id=self.execution.id, id__in=self.deleted).delete()
            self.changed -= self.deleted
            self.deleted = set()
        created_ids = {run.id for run in self.created}
        store.insert_runs(self.created)
        store.update_runs(self.full[run_id] for run_id in sorted(self.changed - created_ids))
        self.created, self.changed = [], set()

    def _save_execution(self, logs: list[LogEntry]) -> None:
        if logs:
            LogEntry.objects.bulk_create(logs)
        if self.delays:
            Delay.objects.bulk_create(self.delays)
            self.delays = []
            transaction.on_commit(delays.notify)
        self.execution.updated = self.moment
        store.update_execution(self.execution)
        if not self.batching:
            self._fire_flow_triggers()

    def _fire_flow_triggers(self) -> None:
        """Start the executions of flows listening for the states this step entered; their log
        lines about the upstream (a trigger that could not start) are written here too."""
        history = self.execution.state_history or []
        if len(history) <= self.history_seen:
            return
        logs: list[LogEntry] = []
        for occurrence in range(self.history_seen, len(history)):
            flow_triggers.on_state_change(self.execution, history[occurrence]["state"], occurrence, self.moment, logs)
        self.history_seen = len(history)
        if logs:
            LogEntry.objects.bulk_create(logs)

    @staticmethod
    def _dispatched_job(graph: FlowGraph, view: TaskRunView) -> bool:
        """Whether a task run in flight has a worker job (runnables, WorkingDirectory), not a
        flowable the executor decides."""
        node = graph.nodes.get(view.task_id)
        return node is not None and (node.kind == "runnable" or node.worker_job)

    def _apply_kept_results(self, graph: FlowGraph, views: dict[str, TaskRunView],
                            found: Mapping[str, messages.TaskResult] | None = None) -> list[TaskRun]:
        """Apply, in this step, the results that workers have already finished for the other
        jobs in flight (each worker keeps a copy before sending its result message). Many tasks
        ending together — a wide ForEach — then cost a few steps instead of one each; their own
        messages arrive later and change nothing. `found`: those results, already taken (a
        focused step's); else they are looked up for every task run in flight."""
        if found is None:
            found = self._kept_for(graph, views)
        if not found:
            return []
        applied = []
        for run in store.task_runs(self.execution.id, list(found)):
            if run.id not in self.full:
                changed = self._apply_result(graph, found[run.id], run)
                if changed is not None:
                    applied.append(changed)
        return applied

    def _kept_for(self, graph: FlowGraph, views: dict[str, TaskRunView]) -> dict[str, messages.TaskResult]:
        waiting = [view for view in views.values()
                   if (view.state is State.CREATED or view.state is State.RUNNING) and view.attempts is not None
                   and self._dispatched_job(graph, view)]
        if not waiting:
            return {}
        return _kept_results(get_claims().kept_results([result_key(view.id, view.attempts + 1) for view in waiting]))

    def _apply_result(self, graph: FlowGraph, result: messages.TaskResult, run: TaskRun | None) -> TaskRun | None:
        if run is None or run.task_id not in graph.nodes:
            logger.warning("result for unknown task run %s", result["taskRunId"])
            return None
        node = graph.node(run.task_id)
        reported, children = State(result["state"]), []
        if node.worker_job:  # a WorkingDirectory: its tasks' results count too
            children = accepted_children(node, result.get("children"))
            reported = outcome(node, reported, children)
        first_start = _parse_date(run.attempts[0]["state"]["histories"][0]["date"]) if run.attempts else \
            _parse_date(result["startDate"])
        verdict = judge_result(
            node, _run_view(run), result["attempt"], reported, result.get("outputs"),
            retry=task_policy(node.definition, graph.data, [holder.definition for holder in graph.ancestors(node.id)]),
            first_start=first_start, now=self.moment, lost=_lost_attempts(run.attempts),
        )
        if verdict is None:
            return None
        attempt_history = [
            {"state": State.RUNNING.value, "date": result["startDate"]},
            {"state": reported.value, "date": result["endDate"]},
        ]
        attempt = {"workerId": result.get("workerId"),
                   "state": {"current": reported.value, "histories": attempt_history}}
        if result.get("error"):
            attempt["error"] = result["error"]
        run.attempts = [*run.attempts, attempt]
        run.attempt_count = len(run.attempts)
        if State(run.state) is State.CREATED:
            run.state_history = [*run.state_history, {"state": State.RUNNING.value, "date": result["startDate"]}]
            run.state = State.RUNNING.value
        _set_run_state(run, verdict.state, result["endDate"])
        run.outputs = dict(verdict.outputs) if verdict.outputs else None
        if verdict.retry_at is not None:
            self.delays.append(Delay(execution_id=self.execution.id, task_run_id=run.id, kind=Delay.RETRY,
                                     fire_at=verdict.retry_at))
            self._log(run, "INFO", f"Attempt {run.attempt_count} failed; attempt {run.attempt_count + 1} starts at "
                                   f"{iso(verdict.retry_at)}")
        if result.get("labels"):
            self.execution.labels = merge_labels(self.execution.labels or [], result["labels"])
        if children:
            self._record_children(run, children, result.get("workerId"))
        self.full[run.id] = run
        self.changed.add(run.id)
        return run

    def _record_children(self, run: TaskRun, children: list[ChildResult], worker_id: str | None) -> None:
        """The task runs of what a WorkingDirectory's tasks did on its worker, each with its
        attempts: created after every task run the execution has, or, when its notices of
        progress made them already, brought to their end (executor/working_directory.py)."""
        seq = max([working_directory.next_seq(self.execution.id), *(created.seq + 1 for created in self.created)])
        new, settled = working_directory.child_task_runs(
            self.execution, run, children, worker_id, seq,
            existing=working_directory.existing_children(run, children))
        for child in new:
            self.full[child.id] = child
            self.created.append(child)
        for child in settled:
            self.full[child.id] = child
            self.changed.add(child.id)
            self.settled.append(child)
        for child in children:
            if child.labels:
                self.execution.labels = merge_labels(self.execution.labels or [], list(child.labels))

    def _scheduled_later(self) -> bool:
        """Created with a `scheduleDate` still to come: it does not start before then, whoever
        asks the executor to look at it."""
        execution = self.execution
        return (execution.state == State.CREATED.value and execution.schedule_date is not None
                and execution.schedule_date > self.moment)

    def _admit(self, graph: FlowGraph) -> bool:
        """The flow's `concurrency` limit, checked when an execution would start: False when it
        must not start now (QUEUED to start later, or ended CANCELLED or FAILED as the flow's
        `behavior` says). The flow's row is locked while counting, so that two executions
        starting at once cannot both take the last slot."""
        execution = self.execution
        state = State(execution.state)
        concurrency = graph.data.get("concurrency")
        if state not in (State.CREATED, State.QUEUED) or not isinstance(concurrency, Mapping):
            return True
        limit = concurrency.get("limit")
        if not isinstance(limit, int) or limit < 1:
            return True
        store.lock_flow(execution.namespace, execution.flow_id)
        same_flow = Execution.objects.filter(namespace=execution.namespace, flow_id=execution.flow_id)
        running = same_flow.filter(state__in=OCCUPYING).exclude(id=execution.id).count()
        behavior = str(concurrency.get("behavior") or "QUEUE").upper()
        # Executions start in the order they were created: a free slot goes to the oldest one
        # waiting (queued, or created and not looked at yet), never to a newer one whose message
        # happened to arrive first.
        in_line = same_flow.filter(state__in=[State.QUEUED.value, State.CREATED.value]).exclude(id=execution.id) \
            .exclude(schedule_date__gt=self.moment)
        waiting = list(in_line.order_by("start_date", "id").values_list("id", "start_date")[:limit]) \
            if behavior == "QUEUE" else []
        first_in_line = not any((started, queued_id) < (execution.start_date, execution.id)
                                for queued_id, started in waiting)
        if running < limit and first_in_line:
            if state is State.QUEUED:
                _set_execution_state(execution, State.RUNNING, self.stamp)
            if running + 1 < limit and waiting:  # another slot is free: the next in line may start
                self._wake([queued_id for queued_id, _ in waiting[:limit - running - 1]])
            return True
        if running < limit:
            self._wake([waiting[0][0]])  # the oldest waiting takes the slot; this one queues behind
        if behavior == "QUEUE":
            if state is State.QUEUED:
                return False  # still waiting for a slot: nothing changes
            _set_execution_state(execution, State.QUEUED, self.stamp)
            self._save_execution([])
            return False
        final = State.CANCELLED if behavior == "CANCEL" else State.FAILED
        self.logs.append(LogEntry(
            execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
            level="WARN" if final is State.CANCELLED else "ERROR", timestamp=self.moment,
            message=f"Flow {execution.namespace}.{execution.flow_id} already has {running} running execution(s), "
                    f"its concurrency limit: this one is {final.value.lower()} (concurrency behavior {behavior})",
        ))
        _set_execution_state(execution, final, self.stamp)
        self._save_execution(self.logs)
        return False

    def _wake(self, execution_ids: list[str]) -> None:
        """Ask the executor to look at these executions once this step commits."""
        if execution_ids:
            transaction.on_commit(lambda: [
                bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, messages.evaluate(execution_id))
                for execution_id in execution_ids
            ])

    def _start_subflow(self, graph: FlowGraph, action: StartSubflow) -> None:
        """Create the child execution of a Subflow task run, in this transaction; its id becomes
        the task run's output. The parent is looked at again once this commits. One of several
        children (a ForEachItem batch, `action.iteration`) leaves the outputs alone, and once one
        could not start, the others of the step are not tried."""
        from orchestrator.repository import CORRELATION_LABEL, create_execution, labels_list

        execution = self.execution
        run = self._load(action.task_run_id)
        if action.iteration is not None and run.state == State.FAILED.value:
            return
        parent_labels = list(execution.labels or [])
        labels = [label for label in parent_labels if action.inherit_labels or label["key"] == CORRELATION_LABEL]
        try:
            labels = merge_labels(labels, labels_list(action.labels))
            child = create_execution(
                action.namespace, action.flow_id, inputs=action.inputs, labels=labels, parent_id=execution.id,
                revision=action.revision, schedule_date=action.schedule_date,
                trigger=for_each_item.trigger(run.task_id, graph.node(run.task_id).type, {
                    "executionId": execution.id, "namespace": execution.namespace, "flowId": execution.flow_id,
                    "flowRevision": execution.flow_revision, "taskRunId": run.id, "taskId": run.task_id,
                }, action.iteration, action.outputs_uri),
            )
        except (LookupError, ValueError, TypeError, KeyError) as error:
            self._log(run, "ERROR", f"Unable to start the subflow {action.namespace}.{action.flow_id}: {error}")
            _set_run_state(run, State.FAILED, self.stamp)
        else:
            if action.iteration is None:
                run.outputs = {"executionId": child.id}
                self._log(run, "INFO", f"Started the subflow execution {child.id} of {action.namespace}."
                                       f"{action.flow_id}")
        self.changed.add(run.id)
        self._evaluate_again()

    def _retry_execution(self, graph: FlowGraph, state: State) -> State:
        """A flow `retry` with behavior CREATE_NEW_EXECUTION: a failed execution the policy lets
        run again ends RETRIED, and a new execution of the same inputs is created when the
        policy's interval has passed (a delay on this one)."""
        retry = graph.data["retry"]
        if not isinstance(retry, Mapping) or retry.get("behavior") != CREATE_NEW_EXECUTION:
            return state
        policy = RetryPolicy.of(retry)
        if policy is None:
            return state
        execution = self.execution
        metadata = execution.metadata or {}
        attempt = int(metadata.get("attemptNumber", 1))
        first = _parse_date(metadata["originalCreatedDate"]) if metadata.get("originalCreatedDate") \
            else execution.start_date
        at = policy.next_attempt_at(attempt, first, self.moment, random.random)
        if at is None:
            return state
        self.delays.append(Delay(execution_id=execution.id, task_run_id=None, kind=NEW_EXECUTION_DELAY, fire_at=at))
        self.logs.append(LogEntry(
            execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id, level="INFO",
            message=f"Attempt {attempt} of the flow failed; attempt {attempt + 1} starts as a new execution at "
                    f"{iso(at)}", timestamp=self.moment,
        ))
        return State.RETRIED

    # --- SLA ---------------------------------------------------------------------------------

    def _schedule_sla(self, graph: FlowGraph) -> None:
        """A MAX_DURATION SLA is a delay from the execution's start — its `scheduleDate` when it
        waited for one: fired while it still runs, the SLA is violated."""
        start = max(self.execution.start_date, self.execution.schedule_date or self.execution.start_date)
        for sla in graph.data.get("sla") or ():
            duration = parse_duration(sla.get("duration")) if sla.get("type") == "MAX_DURATION" else None
            kind = f"{SLA_DELAY}{sla['id']}"
            if duration is not None and not Delay.objects.filter(execution_id=self.execution.id, kind=kind).exists():
                self.delays.append(Delay(execution_id=self.execution.id, task_run_id=None,
                                         kind=kind, fire_at=start + duration))

    def _sla_violated(self, graph: FlowGraph, view: ExecutionView, kind: str) -> list:
        sla = next((item for item in graph.data.get("sla") or () if f"{SLA_DELAY}{item.get('id')}" == kind), None)
        if sla is None or view.state.is_terminal:
            return []
        state = self._violation(sla, f"the execution ran longer than {sla.get('duration')}")
        if state is None:
            return []
        execution_id = self.execution.id  # workers stop the attempts it still runs
        transaction.on_commit(lambda: get_claims().mark_killed(execution_id))
        return end_now(view, state)

    def _check_assertions(self, graph: FlowGraph, view: ExecutionView, state: State) -> State:
        """EXECUTION_ASSERTION SLAs, checked when the execution ends; a false (or unrenderable)
        assertion is a violation."""
        context = None
        for sla in graph.data.get("sla") or ():
            if sla.get("type") != "EXECUTION_ASSERTION":
                continue
            if context is None:
                outputs = outputs_of(store.outputs_rows(self.execution.id, None), self._runs(view))
                context = {**execution_context(graph, view, outputs), **ambient()}
                context["execution"] = {**context["execution"], "state": state.value}
            try:
                holds = is_truthy(render_value(sla.get("assert"), context))
                reason = f"the assertion `{sla.get('assert')}` is false"
            except TemplateError as error:
                holds, reason = False, f"the assertion could not be rendered: {error}"
            if not holds:
                violated = self._violation(sla, reason)
                if violated is not None and _SEVERITY_ORDER.index(violated) > _SEVERITY_ORDER.index(state):
                    state = violated
        return state

    def _violation(self, sla: Mapping[str, Any], reason: str) -> State | None:
        """Record an SLA violation (a log line, its labels); the state its behavior ends the
        execution in, or None (NONE: only the labels)."""
        execution = self.execution
        behavior = str(sla.get("behavior") or "NONE").upper()
        self.logs.append(LogEntry(
            execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id, level="WARN",
            message=f"SLA {sla.get('id')} violated: {reason} (behavior {behavior})", timestamp=self.moment,
        ))
        from orchestrator.repository import labels_list

        if sla.get("labels"):
            execution.labels = merge_labels(execution.labels or [], labels_list(sla["labels"]))
        return {"FAIL": State.FAILED, "CANCEL": State.CANCELLED}.get(behavior)

    def _resume_other(self, action: ResumeExecution) -> None:
        """The Resume task on another execution: resumed in this transaction (its own lock), the
        task run records it; when it cannot be, the task run fails with the reason."""
        from orchestrator.inputs import InvalidInputs

        run = self._load(action.task_run_id)
        try:
            resume_execution(action.execution_id, dict(action.inputs))
        except (LookupError, NotPaused, InvalidInputs) as error:
            self._log(run, "ERROR", f"Unable to resume execution {action.execution_id}: {error}")
            _set_run_state(run, State.FAILED, self.stamp)
        else:
            run.outputs = {"resumed": action.execution_id}
        self.changed.add(run.id)
        execution_id = self.execution.id
        transaction.on_commit(lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK,
                                                  messages.evaluate(execution_id)))

    def _fetch_logs(self, action: FetchLogs) -> None:
        """The log Fetch task: the file is written in this step (the repository is here), its
        outputs recorded, and the execution looked at again to end the task run; when it cannot
        be written, the task run fails with the reason."""
        from orchestrator.storage import StorageError

        run = self._load(action.task_run_id)
        try:
            run.outputs = log_fetch.fetch(action, self.execution, run.task_id)
        except (log_fetch.FetchRefused, StorageError) as error:
            self._log(run, "ERROR", f"Unable to fetch the logs: {error}")
            _set_run_state(run, State.FAILED, self.stamp)
        self.changed.add(run.id)
        execution_id = self.execution.id
        transaction.on_commit(lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK,
                                                  messages.evaluate(execution_id)))

    def _ended(self, graph: FlowGraph) -> None:
        """The execution has just ended: tell the execution waiting on it as a subflow, and start
        the executions its flow queued for a free slot."""
        execution = self.execution
        if graph.data.get("sla"):  # a MAX_DURATION still pending has nothing left to watch
            Delay.objects.filter(execution_id=execution.id).delete()
        if execution.state == State.KILLED.value:  # workers stop what they still run of it
            execution_id = execution.id
            transaction.on_commit(lambda: get_claims().mark_killed(execution_id))
        if graph.loops:  # results its workers kept for focused steps: none will take them now
            ended_id = execution.id
            transaction.on_commit(lambda: get_claims().forget_finished(ended_id))
        if execution.parent_id:
            failure = for_each_item.leave_outputs(execution)
            if failure:
                self.logs.append(LogEntry(execution_id=execution.id, namespace=execution.namespace,
                                          flow_id=execution.flow_id, level="WARN", message=failure,
                                          timestamp=self.moment))
            parent_id = execution.parent_id
            # About the parent's task run that waits for it (the step may read only that part).
            variables = (execution.trigger or {}).get("variables") if isinstance(execution.trigger, Mapping) else None
            waiting = variables.get("taskRunId") if isinstance(variables, Mapping) else None
            about = [waiting] if isinstance(waiting, str) else None
            transaction.on_commit(lambda: bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK,
                                                      messages.evaluate(parent_id, about=about)))
        concurrency = graph.data.get("concurrency")
        if isinstance(concurrency, Mapping) and isinstance(concurrency.get("limit"), int):
            queued = list(Execution.objects.filter(
                namespace=execution.namespace, flow_id=execution.flow_id, state=State.QUEUED.value,
            ).order_by("start_date").values_list("id", flat=True)[:concurrency["limit"]])
            if queued:
                transaction.on_commit(lambda: [
                    bus.publish(messages.EXECUTOR_QUEUE, messages.EXECUTOR_TASK, messages.evaluate(queued_id))
                    for queued_id in queued
                ])

    def _fire(self, delay: Delay) -> Dispatch | None:
        """Apply a due delay; the dispatch it calls for, if any."""
        if delay.kind == Delay.RETRY and delay.task_run_id:
            run = self._load(delay.task_run_id)
            if State(run.state) is not State.RETRYING:
                return None  # killed or changed by hand meanwhile
            _set_run_state(run, State.CREATED, self.stamp)
            run.dispatched = self.moment
            self.changed.add(run.id)
            return Dispatch(task_run_id=run.id, attempt=run.attempt_count + 1)
        return None

    def _log(self, run: TaskRun, level: str, message: str) -> None:
        execution = self.execution
        self.logs.append(LogEntry(
            execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
            task_id=run.task_id, task_run_id=run.id, level=level, message=message, timestamp=self.moment,
        ))

    def _render_flow_outputs(self, graph: FlowGraph, view: ExecutionView, logs: list[LogEntry],
                             state: State) -> State:
        """Flow outputs are rendered once the tasks have ended (their rows written); a failure
        to render one fails the execution with the reason."""
        rows = store.outputs_rows(self.execution.id, None)
        outputs = outputs_of(rows, self._with_ancestors(self._runs(view), (row[3] for row in rows)))
        try:
            context = {**execution_context(graph, view, outputs), **ambient()}
            self.execution.outputs = render_flow_outputs(graph.data["outputs"], context)
        except FlowOutputError as error:
            execution = self.execution
            logs.append(LogEntry(
                execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
                level="ERROR", message=f"Failed to render the flow outputs: {error}", timestamp=self.moment,
            ))
            return State.FAILED
        return state

    def _end_without_flow(self, reason: str) -> None:
        execution = self.execution
        _set_execution_state(execution, State.FAILED, self.stamp)
        LogEntry.objects.create(
            execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id, level="ERROR",
            message=reason, timestamp=self.moment,
        )
        self._save_execution([])

    def _job(self, graph: FlowGraph, view: ExecutionView, run: TaskRun, attempt: int,
             runs: dict[str, TaskRunView]) -> messages.WorkerJob:
        node = graph.node(run.task_id)
        rows = store.outputs_rows(self.execution.id, referenced_outputs(node))
        self._with_ancestors(runs, [run.parent_task_run_id, *(row[3] for row in rows)])
        outputs = outputs_of(rows, runs)
        job: messages.WorkerJob = {
            "v": messages.VERSION,
            "executionId": self.execution.id,
            "taskRunId": run.id,
            "attempt": attempt,
            "task": dict(node.definition),
            "context": run_context(graph, view, node, _run_view(run), run.state_history[0]["date"], outputs,
                                   runs),
            "namespace": self.execution.namespace,
            "flowId": self.execution.flow_id,
        }
        if uses_error_logs(node):
            job["errorLogs"] = error_logs(store.failed_attempts(self.execution.id))
        if node.id in graph.in_loops and store.can_focus():
            job["gather"] = True
        return job


class _Details:
    """RunDetails for the core, read from the repository only when a flowable asks. A task run
    created earlier in the same step is not written yet: it has no outputs and starts now."""

    def __init__(self, step: Step) -> None:
        self._step = step

    def _stored(self, run: TaskRunView) -> TaskRun | None:
        step = self._step
        if run.id in step.full:
            return step.full[run.id]
        found = store.task_runs(step.execution.id, [run.id])
        if found:
            step.full[run.id] = found[0]
            return found[0]
        return None

    def outputs(self, run: TaskRunView):
        if run.outputs is not None:
            return run.outputs
        stored = self._stored(run)
        return stored.outputs if stored is not None else None

    def started(self, run: TaskRunView) -> datetime:
        stored = self._stored(run)
        return _parse_date(stored.state_history[0]["date"]) if stored is not None else self._step.moment

    def now(self) -> datetime:
        return self._step.moment

    def execution(self, execution_id: str):
        child = Execution.objects.filter(id=execution_id).first()
        if child is None:
            return None
        while child.state == State.RETRIED.value:
            # A flow retry replaced it: the latest attempt tells, and none yet means one is coming.
            latest = Execution.objects.filter(original_id=child.original_id or child.id).exclude(id=child.id) \
                .order_by("-start_date").first()
            if latest is None or latest.start_date < child.start_date:
                return {"state": State.RUNNING.value, "outputs": {}, "context": {}}
            child = latest
        context = {
            "flow": {"id": child.flow_id, "namespace": child.namespace, "revision": child.flow_revision},
            "execution": {"id": child.id, "startDate": iso(child.start_date)},
            "inputs": child.inputs or {}, "labels": {label["key"]: label["value"] for label in child.labels or []},
            "outputs": outputs_of(store.outputs_rows(child.id, None)), **ambient(),
        }
        return {"state": child.state, "outputs": child.outputs or {}, "context": context}

    def subflows(self, run: TaskRunView):
        return for_each_item.subflow_counts(self._step.execution.id, run.id)


class _SeenDetails(_Details):
    """RunDetails for checking a focused step (Step._check_focused): a subflow execution counts as
    still running unless the task run waiting for it is among those the focused step saw."""

    def __init__(self, step: Step, seen: set[str]) -> None:
        super().__init__(step)
        self._seen = seen

    def execution(self, execution_id: str):
        trigger = Execution.objects.filter(id=execution_id).values_list("trigger", flat=True).first()
        variables = trigger.get("variables") if isinstance(trigger, Mapping) else None
        if isinstance(variables, Mapping) and variables.get("taskRunId") not in self._seen:
            return {"state": State.RUNNING.value, "outputs": {}, "context": {}}
        return super().execution(execution_id)


class _LazyRenderer:
    """Renders flowables' properties; loads the outputs a task's expressions name (all of them
    when that cannot be told) only when first asked."""

    def __init__(self, step: Step, graph: FlowGraph, view: ExecutionView) -> None:
        self._step, self._graph, self._view = step, graph, view
        self._inner: dict[frozenset[str] | None, ContextRenderer] = {}

    def render(self, node, run, value, ancestors=(), taskrun=None):
        wanted = referenced_in(value)  # a loop's `values` need not load what its tasks read
        inner = self._inner.get(wanted)
        if inner is None:
            step = self._step
            rows = store.outputs_rows(step.execution.id, wanted)
            # This step's own changes are not written yet: listed last, they override the rows.
            pending = [(r.task_id, r.value, r.outputs, r.parent_task_run_id) for r in step.full.values()
                       if r.outputs is not None and (wanted is None or r.task_id in wanted)]
            runs = step._with_ancestors(step._runs(self._view), [row[3] for row in (*rows, *pending)])
            outputs = outputs_of([*rows, *pending], runs)
            inner = self._inner[wanted] = ContextRenderer({**execution_context(self._graph, self._view, outputs),
                                                           **ambient()})
        return inner.render(node, run, value, ancestors, taskrun)


def _lost_attempts(attempts: list[dict[str, Any]]) -> int:
    """How many of a task run's attempts were lost with their worker (Step.reattempt)."""
    return sum(1 for attempt in attempts if attempt.get("lost"))


def _parse_date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _history_to(state: State, stamp: str) -> list[dict[str, str]]:
    if state is State.CREATED:
        return [{"state": state.value, "date": stamp}]
    return [{"state": State.CREATED.value, "date": stamp}, {"state": state.value, "date": stamp}]


def _set_run_state(run: TaskRun, state: State, stamp: str) -> None:
    if run.state == state.value:
        return
    run.state = state.value
    run.state_history = [*run.state_history, {"state": state.value, "date": stamp}]


def _set_execution_state(execution: Execution, state: State, stamp: str) -> None:
    if execution.state == state.value:
        return
    execution.state = state.value
    execution.state_history = [*execution.state_history, {"state": state.value, "date": stamp}]
    # A restarted execution has not ended any more.
    execution.end_date = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if state.is_terminal else None

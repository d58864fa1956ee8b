"""What the flowable handlers share.

Every flowable here is one shape: *groups* of task nodes, each group run one after the other,
several groups at once up to a limit, then the flowable's `errors` and `finally` branches.

- Parallel and Dag: one group per task; Dag adds a readiness rule (its `dependsOn`).
- ForEach and EachSequential: one group per value, holding all the tasks (run in sequence).
- EachParallel: one group per (value, task).

A task run belongs to a group by its `iteration` (None outside loops) and its task id, so the
key of a task run is `(iteration, task_id)`; task ids are unique in a flow, iterations tell a
loop's values apart.

Kestra's rules, which `run_groups` keeps:
- once a task of the main branch has failed, nothing new of the main branch starts (neither a new
  group nor the next task of a running group); the tasks already running end on their own;
- the `errors` branch starts as soon as the failure is seen; a failure inside `errors` or
  `finally` does not stop the rest of that branch;
- `finally` starts when everything else has ended; the flowable ends when `finally` has;
- the outcome is the worst state of the children, and FAILED at least when the main branch failed.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from executor.core.context import is_literal
from executor.core.decide import FlowableHandler, StepContext, WholeViewNeeded, enabled
from executor.core.model import BRANCH_ERRORS, BRANCH_FINALLY, TaskNode, TaskRunView
from orchestrator.states import ACTIVE, FAILED_STATES, State, worst
from orchestrator.templating import TemplateError

RunKey = tuple[int | None, str]  # (iteration, task id)


class FlowableError(Exception):
    """A flowable cannot go on; the message is logged on its task run, which ends FAILED."""


def guarded(handler: FlowableHandler) -> FlowableHandler:
    """A handler whose FlowableError ends its flowable FAILED with the reason logged on it."""

    @functools.wraps(handler)
    def guard(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
        try:
            return handler(ctx, node, run)
        except FlowableError as error:
            if run is None:  # only the flow's root has no task run, and it is a Sequential
                raise
            ctx.fail(node, run, str(error))
            return None

    return guard


class Group:
    """Task nodes run one after the other under a flowable; a loop's group carries its value.

    A plain slotted class rather than a frozen dataclass: a wide loop makes one per value on
    every step, and the dataclass' frozen set-up costs several times more. Treat it as frozen."""

    __slots__ = ("nodes", "value", "iteration", "key")

    def __init__(self, nodes: tuple[TaskNode, ...], value: str | None = None, iteration: int | None = None) -> None:
        self.nodes = nodes  # never empty
        self.value = value
        self.iteration = iteration
        # The key of the group's first task run: it exists once the group has started.
        self.key: RunKey = (iteration, nodes[0].id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Group) and (self.nodes, self.value, self.iteration) == \
            (other.nodes, other.value, other.iteration)

    def __hash__(self) -> int:
        return hash((self.key, self.value))

    def __repr__(self) -> str:
        return f"Group({[node.id for node in self.nodes]}, value={self.value!r}, iteration={self.iteration})"


Ready = Callable[[Group, Mapping[RunKey, TaskRunView]], bool]


def run_groups(ctx: StepContext, node: TaskNode, run: TaskRunView, known: Sequence[Group], *,
               load: Callable[[], Sequence[Group]] | None = None, limit: int = 0, ready: Ready | None = None,
               side_limit: int = 1) -> State | None:
    """Advance a flowable made of groups; its outcome once everything has ended, else None.

    `known` are the groups that can be named without rendering anything: all of them for Parallel,
    at least the running ones for a loop; `load`, when given, returns every group and is called
    only when a new group may start or the end must be checked, because it renders the loop's
    values.
    `limit` bounds the groups running at once (0: no bound). `side_limit` is how many tasks of
    `errors` and `finally` run at once: 1 (one after the other) or the flowable's own limit.
    Raises FlowableError before proposing anything when the flowable cannot go on.
    """
    errors = enabled(node.branch(BRANCH_ERRORS))
    finally_ = enabled(node.branch(BRANCH_FINALLY))
    side_ids = {side.id for side in (*errors, *finally_)}
    latest = ctx.latest_runs(run.id)
    main = [child for child in latest.values() if child.task_id not in side_ids]
    failed = any(child.state in FAILED_STATES for child in main)
    if failed:
        errors_ended = start_branch(ctx, run, errors, latest, side_limit)
        if not errors_ended or any(child.state in ACTIVE for child in main):
            return None
    elif not _advance_main(ctx, run, known, latest, load, limit, ready):
        return None
    if not start_branch(ctx, run, finally_, latest, side_limit):
        return None
    outcome = worst(child.state for child in latest.values())
    return State.FAILED if failed and outcome not in FAILED_STATES else outcome


def _advance_main(ctx: StepContext, parent: TaskRunView, known: Sequence[Group],
                  latest: Mapping[RunKey, TaskRunView], load: Callable[[], Sequence[Group]] | None, limit: int,
                  ready: Ready | None) -> bool:
    """Move the started groups on and start new ones as `limit` and `ready` allow; True once the
    main branch has ended. Raises FlowableError when it never can."""
    running = [group for group in known if group.key in latest and not _ended(group, latest)]
    groups = known
    # Rendering a loop's values costs the execution's outputs: do it only when it can matter,
    # and before proposing anything, so that a failure to render leaves nothing half started.
    if load is not None and (not running or (limit and len(running) < limit)):
        groups = load()
    for group in running:
        _advance_group(ctx, parent, group, latest)
    active = len(running)
    waiting = []
    for group in groups:
        if group.key in latest:
            continue
        if limit and active >= limit:
            return False
        if ready is not None and not ready(group, latest):
            waiting.append(group)
            continue
        _advance_group(ctx, parent, group, latest)
        active += 1
    if active:
        return False
    if waiting:
        names = ", ".join(group.nodes[0].id for group in waiting)
        raise FlowableError(f"tasks {names} can never start: what they depend on did not end successfully")
    return True


def _ended(group: Group, latest: Mapping[RunKey, TaskRunView]) -> bool:
    for node in group.nodes:
        run = latest.get((group.iteration, node.id))
        if run is None or run.state in ACTIVE:
            return False
    return True


def _advance_group(ctx: StepContext, parent: TaskRunView, group: Group, latest: Mapping[RunKey, TaskRunView]) -> None:
    """Start the group's next task once the previous one has ended."""
    for node in group.nodes:
        run = latest.get((group.iteration, node.id))
        if run is None:
            ctx.create(node, parent.id, value=group.value, iteration=group.iteration)
            return
        if run.state in ACTIVE:
            return


def start_branch(ctx: StepContext, parent: TaskRunView, nodes: Sequence[TaskNode],
                 latest: Mapping[RunKey, TaskRunView], limit: int) -> bool:
    """Start the tasks of an `errors` or `finally` branch in order, at most `limit` at once
    (1: one after the other; 0: all together); True once every one of them has ended."""
    active = 0
    for node in nodes:
        run = latest.get((None, node.id))
        if run is None:
            if limit and active >= limit:
                return False
            ctx.create(node, parent.id)
            active += 1
        elif run.state in ACTIVE:
            active += 1
    return active == 0


def chosen_branch(children: Iterable[TaskRunView], branches: Iterable[Sequence[TaskNode]]) -> Sequence[TaskNode]:
    """The branch an If or a Switch took, told by the task runs it made; empty when none of its
    tasks has one (the branch had nothing to run, and only `finally` ran)."""
    ids = {child.task_id for child in children}
    for branch in branches:
        if any(node.id in ids for node in branch):
            return branch
    return ()


def nested_nodes(ctx: StepContext, owner: TaskNode, definitions: Iterable[Any]) -> list[TaskNode]:
    """The graph's nodes of tasks held inside a structure (a Switch case, a Dag's `tasks[].task`)."""
    nodes = []
    for definition in definitions:
        task_id = definition.get("id") if isinstance(definition, Mapping) else None
        found = ctx.flow.nodes.get(task_id) if isinstance(task_id, str) else None
        if found is None:
            raise FlowableError(f"task {task_id!r} of {owner.id} is not in the flow's task graph")
        nodes.append(found)
    return nodes


def as_text(value: Any) -> str:
    """A value as a loop value or a Switch key: a string as it is, anything else as compact JSON
    (Kestra's `1`, `true`, `{"key":"value"}`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def int_property(node: TaskNode, name: str, default: int) -> int:
    value = node.definition.get(name, default)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FlowableError(f"`{name}` must be a whole number, not {value!r}") from None
    if number < 0:
        raise FlowableError(f"`{name}` cannot be negative ({number})")
    return number


# The values of loops written as plain lists, by (namespace, flow, revision, task, property), with
# the property they come from: a loop with a limit reads them each time one of its values ends.
_LITERAL_VALUES: dict[tuple[str, str, int, str, str], tuple[Any, list[str]]] = {}


def loop_values(ctx: StepContext, node: TaskNode, run: TaskRunView, name: str) -> list[str]:
    """The distinct values of a loop, as text, in order: the property is a list (each item
    rendered) or a JSON array as a string (rendered, then parsed). Raises FlowableError. Values
    without any expression are worked out once per flow revision."""
    raw = node.definition.get(name)
    key = (ctx.flow.namespace, ctx.flow.id, ctx.flow.revision, node.id, name)
    cached = _LITERAL_VALUES.get(key)
    if cached is not None and (cached[0] is raw or cached[0] == raw):
        return cached[1]
    values = _loop_values(ctx, node, run, name, raw)
    if is_literal(raw):
        if len(_LITERAL_VALUES) > 256:
            _LITERAL_VALUES.clear()
        _LITERAL_VALUES[key] = (raw, values)
    return values


def _loop_values(ctx: StepContext, node: TaskNode, run: TaskRunView, name: str, raw: Any) -> list[str]:
    try:
        rendered = ctx.render(node, run, raw) if isinstance(raw, (str, list)) else raw
    except TemplateError as error:
        raise FlowableError(f"Unable to render `{name}`: {error}") from None
    values = rendered
    if isinstance(raw, str) and isinstance(rendered, str):
        try:
            values = json.loads(rendered)
        except ValueError as error:
            raise FlowableError(f"`{name}` must be a list or a JSON array, got {_excerpt(rendered)} ({error})") from None
    if not isinstance(values, list):
        raise FlowableError(f"`{name}` must be a list or a JSON array, got {_excerpt(as_text(values))}")
    nulls = sum(value is None for value in values)
    if nulls:
        raise FlowableError(f"Found {nulls} null value{'s' if nulls > 1 else ''} in `{name}`, which cannot be "
                            f"iterated: {_excerpt(as_text(values))}")
    # Kestra runs each distinct value once: a value names its iteration's outputs.
    return list(dict.fromkeys(as_text(value) for value in values))


def _excerpt(text: str, size: int = 200) -> str:
    return text if len(text) <= size else text[:size] + "…"


def loop_groups(ctx: StepContext, node: TaskNode, run: TaskRunView, name: str, nodes: Sequence[TaskNode], *,
                per_task: bool, limit: int, side_limit: int) -> State | None:
    """Run a loop over the values of property `name`: one group per value holding every task
    (`per_task` False: the tasks of a value run in sequence), or one group per (value, task)."""
    every = tuple(nodes)

    def load() -> list[Group]:
        values = loop_values(ctx, node, run, name)
        return [_group_at(every, values, index, per_task) for index in range(_group_count(every, values, per_task))]

    unseen = ctx.unseen_children(run.id)
    if unseen:
        return _loop_in_part(ctx, node, run, every, unseen, lambda: loop_values(ctx, node, run, name),
                             per_task=per_task, limit=limit)
    latest = ctx.latest_runs(run.id)
    running = _running_per_task(latest, every) if per_task else _running_per_value(latest, every)
    return run_groups(ctx, node, run, running, load=load, limit=limit, side_limit=side_limit)


def _loop_in_part(ctx: StepContext, node: TaskNode, run: TaskRunView, nodes: tuple[TaskNode, ...],
                  unseen: Mapping[tuple[str, State], int], values: Callable[[], list[str]], *,
                  per_task: bool, limit: int) -> None:
    """A step of a loop whose view holds only the children the step is about, the others being
    counted in `unseen`: move on the groups of the children it holds, and start new groups while
    `limit` allows (a loop starts its groups in order, so the groups started are the first ones).
    Once a child has failed, the step that saw it fail decided over every child (and started the
    `errors` branch); the steps after it only wait for the running children, as `run_groups`
    does. What needs the other children — a failure seen now, an `errors` or `finally` task that
    ended, the main branch's end — raises WholeViewNeeded."""
    main_ids = {task.id for task in nodes}
    visible = ctx.by_parent.get(run.id, ())
    for child in visible:
        if child.task_id not in main_ids or child.state in FAILED_STATES:
            raise WholeViewNeeded(f"{node.id}: a child failed, or an `errors` or `finally` task changed")
    counts: dict[tuple[str, State], int] = dict(unseen)
    for child in visible:
        counts[child.task_id, child.state] = counts.get((child.task_id, child.state), 0) + 1
    failed = any(count for (task_id, state), count in counts.items() if state in FAILED_STATES and task_id in main_ids)
    if not failed and any(count for (task_id, _), count in counts.items() if task_id not in main_ids):
        raise WholeViewNeeded(f"{node.id}: its `finally` branch runs")
    running = sum(count for (task_id, state), count in counts.items() if state in ACTIVE and task_id in main_ids)
    if failed:
        if not running:
            raise WholeViewNeeded(f"{node.id}: its last running child has ended")
        return  # nothing new starts once a child has failed
    latest = ctx.latest_runs(run.id)
    if not per_task:
        # The tasks of one value run one after the other: the view holds all of its task runs.
        changed = {child.iteration: child.value for child in visible if child.iteration is not None}
        for iteration in sorted(changed):
            group = Group(nodes, changed[iteration], iteration)
            if _ended(group, latest):
                continue
            if not any((iteration, task.id) in latest and latest[iteration, task.id].state in ACTIVE
                       for task in nodes):
                running += 1  # its next task starts now
            _advance_group(ctx, run, group, latest)
    fresh: list[Group] = []
    if limit and running < limit:
        first = nodes[0].id
        started = sum(count for (task_id, _), count in counts.items() if per_task or task_id == first)
        named = values()
        for index in range(started, min(_group_count(nodes, named, per_task), started + limit - running)):
            fresh.append(_group_at(nodes, named, index, per_task))
    if not running and not fresh:
        raise WholeViewNeeded(f"{node.id}: its last running child has ended")
    for group in fresh:
        if group.key in latest:
            raise WholeViewNeeded(f"{node.id}: its groups did not start in order")
        _advance_group(ctx, run, group, latest)


def _group_count(nodes: tuple[TaskNode, ...], values: Sequence[str], per_task: bool) -> int:
    """How many groups a loop has: one per value, or one per (value, task)."""
    return len(values) * len(nodes) if per_task else len(values) if nodes else 0


def _group_at(nodes: tuple[TaskNode, ...], values: Sequence[str], index: int, per_task: bool) -> Group:
    """A loop's group number `index`, in the order the loop starts them: by value, and by task
    within a value when each (value, task) is a group."""
    if per_task:
        return Group((nodes[index % len(nodes)],), values[index // len(nodes)], index // len(nodes))
    return Group(nodes, values[index], index)


def _running_per_task(latest: Mapping[RunKey, TaskRunView], nodes: tuple[TaskNode, ...]) -> list[Group]:
    """The running groups of a loop with one group per (value, task): the active task runs.
    One pass over the loop's latest task runs, so that a step of a wide loop builds a group for
    what is still running only, not for every value."""
    by_id = {task.id: task for task in nodes}
    running = []
    for (iteration, task_id), child in latest.items():
        if iteration is not None and child.state in ACTIVE and task_id in by_id:
            running.append(Group((by_id[task_id],), child.value, iteration))
    running.sort(key=_iteration_of)
    return running


def _running_per_value(latest: Mapping[RunKey, TaskRunView], nodes: tuple[TaskNode, ...]) -> list[Group]:
    """The running groups of a loop with one group per value (its tasks in sequence): the values
    whose first task has a task run and whose tasks have not all ended. One pass, as above."""
    if not nodes:
        return []
    ids = {task.id for task in nodes}
    first_id = nodes[0].id
    values: dict[int, str | None] = {}
    ended: dict[int, int] = {}
    for (iteration, task_id), child in latest.items():
        if iteration is None or task_id not in ids:
            continue
        values.setdefault(iteration, child.value)
        if child.state not in ACTIVE:
            ended[iteration] = ended.get(iteration, 0) + 1
    return [Group(nodes, values[iteration], iteration) for iteration in sorted(values)
            if ended.get(iteration, 0) < len(nodes) and (iteration, first_id) in latest]


def _iteration_of(group: Group) -> int:
    return group.iteration or 0

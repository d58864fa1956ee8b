"""Plain, frozen data the decision core works on: the flow as a tree of task nodes, and a view of
one execution. Built by the shell from repository rows; no Django here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from orchestrator.flowlang.walk import child_tasks
from orchestrator.states import State
from workers import registry

# The task-list properties of flowables that run as the flowable's "main" branch, and the
# lists every flowable may carry.
BRANCH_ERRORS = "errors"
BRANCH_FINALLY = "finally"
BRANCH_AFTER = "afterExecution"  # the flow's: run once the execution's outcome is known


@dataclass(frozen=True, slots=True)
class TaskNode:
    id: str
    type: str
    kind: str  # "runnable" | "flowable"
    definition: Mapping[str, Any]  # the task as written in the flow
    # Named lists of child tasks: "tasks", "errors", "finally", "then", "else", …
    branches: Mapping[str, tuple["TaskNode", ...]] = field(default_factory=dict)
    # A flowable whose children a worker runs, all of them in one job (a WorkingDirectory): its
    # task run is dispatched like a runnable's, and its result brings its children's.
    worker_job: bool = False

    @property
    def disabled(self) -> bool:
        return bool(self.definition.get("disabled", False))

    @property
    def allow_failure(self) -> bool:
        return bool(self.definition.get("allowFailure", False))

    @property
    def allow_warning(self) -> bool:
        return bool(self.definition.get("allowWarning", False))

    @property
    def worker_group(self) -> str | None:
        group = self.definition.get("workerGroup")
        return group.get("key") if isinstance(group, Mapping) else None

    def branch(self, name: str) -> tuple["TaskNode", ...]:
        return self.branches.get(name, ())

    @property
    def dispatched(self) -> bool:
        """Whether its task runs are sent to a worker as jobs (runnables and worker jobs)."""
        return self.kind == "runnable" or self.worker_job


@dataclass(frozen=True, slots=True)
class FlowGraph:
    id: str
    namespace: str
    revision: int
    root: TaskNode  # a pseudo-Sequential holding the flow's tasks, errors and finally
    nodes: Mapping[str, TaskNode]
    data: Mapping[str, Any]
    # The flowable holding each task, by id (tasks at the flow's top level have none).
    parents: Mapping[str, str] = field(default_factory=dict)
    # The loops of the flow (see LOOPS), and the tasks nested in one at any depth: theirs are the
    # task runs that grow with the data, which a step about one task run leaves out of its view.
    loops: frozenset[str] = frozenset()
    in_loops: frozenset[str] = frozenset()

    def node(self, task_id: str) -> TaskNode:
        return self.nodes[task_id]

    def ancestors(self, task_id: str) -> list[TaskNode]:
        """The flowables holding a task, nearest first."""
        found = []
        parent = self.parents.get(task_id)
        while parent is not None and len(found) < len(self.nodes):
            found.append(self.nodes[parent])
            parent = self.parents.get(parent)
        return found


# The flowables with one group of children per value of a list, and whether the tasks of one value
# run one after the other (a single group per value) rather than each on its own.
LOOPS = {
    "io.kestra.plugin.core.flow.ForEach": True,
    "io.kestra.plugin.core.flow.EachSequential": True,
    "io.kestra.plugin.core.flow.EachParallel": False,
}

ROOT_TYPE = "io.kestra.plugin.core.flow.Sequential"
ROOT_ID = ""  # the pseudo task holding the flow's top-level lists; it never has a task run


def _node(definition: Mapping[str, Any], nodes: dict[str, TaskNode], parents: dict[str, str]) -> TaskNode:
    task_type = registry.get(definition["type"])
    if task_type is None:
        raise ValueError(f"unknown task type {definition['type']}")
    branches: dict[str, tuple[TaskNode, ...]] = {}
    if task_type.kind == "flowable":
        # Every nested task becomes a node, wherever its declaration puts it (a Switch's
        # `cases.<value>`, a Dag's `tasks[i].task`); only plain task lists are named branches.
        lists = set(registry.task_list_properties(task_type))
        for path, child in child_tasks(definition):
            child_node = _node(child, nodes, parents)
            parents[child_node.id] = definition["id"]
            if len(path) == 2 and path[0] in lists:
                branches[path[0]] = (*branches.get(path[0], ()), child_node)
        if task_type.generated_tasks is not None:
            generated = tuple(_node(child, nodes, parents) for child in task_type.generated_tasks(dict(definition)))
            parents.update((child.id, definition["id"]) for child in generated)
            branches["tasks"] = generated
    node = TaskNode(
        id=definition["id"], type=task_type.name, kind=task_type.kind, definition=definition, branches=branches,
        worker_job=task_type.kind == "flowable" and task_type.run is not None,
    )
    nodes[node.id] = node
    return node


def build_graph(data: Mapping[str, Any], revision: int) -> FlowGraph:
    """The task tree of a validated flow definition."""
    nodes: dict[str, TaskNode] = {}
    parents: dict[str, str] = {}
    branches = {
        name: tuple(_node(task, nodes, parents) for task in data.get(key) or ())
        for name, key in (("tasks", "tasks"), (BRANCH_ERRORS, "errors"), (BRANCH_FINALLY, "finally"),
                          (BRANCH_AFTER, "afterExecution"))
    }
    root = TaskNode(id=ROOT_ID, type=ROOT_TYPE, kind="flowable", definition={}, branches=branches)
    loops = frozenset(node.id for node in nodes.values() if node.type in LOOPS)
    in_loops = frozenset(task_id for task_id in nodes if _in_loop(task_id, parents, loops))
    return FlowGraph(
        id=data["id"], namespace=data["namespace"], revision=revision, root=root, nodes=nodes, data=data,
        parents=parents, loops=loops, in_loops=in_loops,
    )


def _in_loop(task_id: str, parents: Mapping[str, str], loops: frozenset[str]) -> bool:
    parent = parents.get(task_id)
    while parent is not None:
        if parent in loops:
            return True
        parent = parents.get(parent)
    return False


# Not frozen, though treated as such (change one with `replace`): a frozen dataclass builds three
# times slower, and the executor builds one per task run of the execution on every step.
@dataclass(slots=True)
class TaskRunView:
    id: str
    task_id: str
    parent_id: str | None
    state: State
    seq: int
    value: str | None = None
    iteration: int | None = None
    attempts: int = 0  # attempts finished so far
    outputs: Mapping[str, Any] | None = None
    start_date: str | None = None

    def with_state(self, state: State) -> "TaskRunView":
        return replace(self, state=state)


@dataclass(frozen=True, slots=True)
class ExecutionView:
    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    state: State
    start_date: str
    task_runs: tuple[TaskRunView, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)
    labels: tuple[Mapping[str, str], ...] = ()
    variables: Mapping[str, Any] | None = None
    trigger: Mapping[str, Any] | None = None
    original_id: str | None = None
    # Delays that fired for this step, {task run id: kind}, and those asked for during it.
    fired: Mapping[str, str] = field(default_factory=dict)
    scheduled: frozenset[tuple[str, str]] = frozenset()
    # None: `task_runs` holds every task run of the execution. Otherwise the view is a step's about
    # one task run (a result), and holds the task runs outside loops, those above that task run
    # and those of its iteration; of each loop task run it holds, the children left out are
    # counted here, {loop task run id: {(task id, state): count}}; and `next_seq` is the `seq`
    # the next new task run takes.
    unseen: Mapping[str, Mapping[tuple[str, State], int]] | None = None
    next_seq: int = 0

    def children(self, parent_id: str | None) -> list[TaskRunView]:
        return [run for run in self.task_runs if run.parent_id == parent_id]

    def run(self, task_run_id: str) -> TaskRunView:
        for run in self.task_runs:
            if run.id == task_run_id:
                return run
        raise KeyError(task_run_id)

    def replace_runs(self, runs: Iterable[TaskRunView]) -> "ExecutionView":
        return replace(self, task_runs=tuple(runs))

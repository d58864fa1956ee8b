"""The executor's pure decision core: plain data in, actions out. Imports no Django."""

from executor.core.actions import Action, CreateTaskRun, Dispatch, Log, SetExecutionState, SetTaskRunState
from executor.core.decide import FLOWABLES, decide, judge_result, step, tolerate
from executor.core.model import ExecutionView, FlowGraph, TaskNode, TaskRunView, build_graph

__all__ = [
    "Action", "CreateTaskRun", "Dispatch", "Log", "SetExecutionState", "SetTaskRunState", "FLOWABLES", "decide",
    "judge_result", "step", "tolerate", "ExecutionView", "FlowGraph", "TaskNode", "TaskRunView", "build_graph",
]

# Registers the flowable handlers (Parallel, If, Switch, ForEach…) in FLOWABLES.
import executor.core.flowables  # noqa: E402,F401  isort: skip

"""The log Fetch task's decisions, without a database: its own execution's lines settle first,
the shell is asked once, and its outputs end the task run."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timezone

from executor.core import ExecutionView, build_graph, decide
from executor.core.actions import FetchLogs, ScheduleDelay, SetTaskRunState
from executor.core.decide import ViewDetails, apply_to_view
from executor.core.flowables.log_fetch import SETTLE, SETTLED
from orchestrator.states import State

FETCH = "io.kestra.plugin.core.log.Fetch"


class Verbatim:
    def render(self, node, run, value, ancestors=(), taskrun=None):
        return value


def start(task):
    graph = build_graph({"id": "f", "namespace": "n", "tasks": [task]}, 1)
    ids = itertools.count()
    view = ExecutionView(id="e", namespace="n", flow_id="f", flow_revision=1, state=State.CREATED,
                         start_date="2026-01-01T00:00:00.000Z")
    details = ViewDetails(lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))

    def step(view, fired=None):
        view = replace(view, fired=fired or {})
        actions = decide(graph, view, lambda: f"tr{next(ids)}", Verbatim(), details)
        return replace(apply_to_view(view, actions), fired={}, scheduled=frozenset()), actions

    return view, step


def test_its_own_executions_lines_settle_before_the_shell_is_asked_once():
    view, step = start({"id": "fetch", "type": FETCH, "tasksId": ["a"], "level": "warning"})
    view, actions = step(view)
    run = view.task_runs[0]
    assert [a for a in actions if isinstance(a, ScheduleDelay)] == [ScheduleDelay(run.id, SETTLED, SETTLE)]
    assert not [a for a in actions if isinstance(a, FetchLogs)]
    view, actions = step(view, {run.id: SETTLED})
    assert [a for a in actions if isinstance(a, FetchLogs)] == [
        FetchLogs(run.id, "e", None, None, ("a",), ("WARN", "ERROR"))]
    view = apply_to_view(view, [SetTaskRunState(run.id, State.RUNNING, outputs={"uri": "kestra:///x", "size": 0})])
    view, actions = step(view)
    assert view.run(run.id).state is State.SUCCESS and view.state is State.SUCCESS


def test_another_executions_lines_are_fetched_at_once_and_a_bad_level_fails():
    view, step = start({"id": "fetch", "type": FETCH, "executionId": "other", "flowId": "g"})
    view, actions = step(view)
    assert [a for a in actions if isinstance(a, FetchLogs)] == [
        FetchLogs(view.task_runs[0].id, "other", None, "g", None, ("INFO", "WARN", "ERROR"))]
    view, step = start({"id": "fetch", "type": FETCH, "level": "LOUD"})
    view, actions = step(view)
    assert view.task_runs[0].state is State.FAILED

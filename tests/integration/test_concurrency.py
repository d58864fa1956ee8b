"""A flow's concurrency limit through real executor processes: never more executions running
than the limit, queued ones started in order as slots free."""

from __future__ import annotations

from datetime import datetime

import pytest

from orchestrator.repository import create_execution, deploy
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LIMITED = """
id: limited
namespace: tests
concurrency:
  limit: 2
tasks:
  - id: work
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.5S
"""


def _interval(execution, state):
    """When the execution entered `state` and when it left it."""
    history = execution.state_history
    for index, entry in enumerate(history):
        if entry["state"] == state:
            end = history[index + 1]["date"] if index + 1 < len(history) else None
            return _date(entry["date"]), _date(end) if end else None
    return None


def _date(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_no_more_executions_run_at_once_than_the_limit_and_queued_ones_start_in_order(cluster, namespace):
    flow, _ = deploy(with_namespace(LIMITED, namespace))
    started = [create_execution(flow.namespace, flow.flow_id) for _ in range(6)]
    ended = [wait_for(lambda: finished(execution.id), 60, "every execution to end") for execution in started]
    assert [execution.state for execution in ended] == ["SUCCESS"] * 6
    running = [_interval(execution, "RUNNING") for execution in ended]
    for moment, _ in running:
        at_once = sum(1 for start, end in running if start <= moment < end)
        assert at_once <= 2, f"{at_once} executions ran at once"
    queued = [execution for execution in ended if _interval(execution, "QUEUED")]
    assert len(queued) >= 3  # six started together, two slots
    assert [h["state"] for h in queued[0].state_history] == ["CREATED", "QUEUED", "RUNNING", "SUCCESS"]
    # Queued executions start in the order they were created.
    starts = [_interval(execution, "RUNNING")[0] for execution in queued]
    assert starts == sorted(starts)

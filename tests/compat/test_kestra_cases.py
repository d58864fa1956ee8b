"""Kestra's own acceptance cases (../shared/compat/kestra/cases.yaml), run through real executor
and worker processes on PostgreSQL and Redis.

The harness is written once: every key a case may check is implemented here, and a case joins
the run when the features it needs exist (SUPPORTED below grows with them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import finished, wait_for


def wait_for_quietly(predicate, timeout: float) -> bool:
    try:
        wait_for(predicate, timeout, "the case's checks")
        return True
    except AssertionError:
        return False

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The corpus lives in the shared folder beside the checkout.
CORPUS = Path(
    os.environ.get("HARRIER_COMPAT_DIR", Path(__file__).resolve().parents[3] / "shared" / "compat" / "kestra")
)
CASES = {case["name"]: case for case in yaml.safe_load((CORPUS / "cases.yaml").read_text())["cases"]}

SUPPORTED = [
    "return", "sequential", "sequential-global-errors", "sequential-local-errors", "failed-first", "logs",
    "output-values", "flow-outputs", "flow-array-outputs", "labels-update", "empty-variables",
    "variables-invalid", "sleep",
    # flowable tasks
    "full", "parallel", "dag", "allow-failure-crash", "switch-first", "switch-second", "switch-third",
    "switch-default", "switch-impossible", "fail-on-switch", "fail-on-condition-fail", "fail-on-condition-success",
    "if-true", "if-one", "if-false", "if-minus-zero", "if-without-else-true", "if-without-else-false",
    "if-in-parallel", "foreach-non-concurrent", "foreach-concurrent", "foreach-no-limit", "foreach-parallel",
    "each-empty", "each-null", "each-switch", "each-parallel", "disable-simple", "disable-flowable",
    "disable-error", "errors", "runif", "allow-failure-runnable", "allow-failure-flowable",
    # pauses and loops waiting on a condition
    "pause-resume", "pause-delay", "pause-timeout", "waitfor", "waitfor-no-success", "waitfor-max-iterations",
    "waitfor-max-duration",
    # subflows
    "subflow-ok", "subflow-third",
    # flow concurrency
    "concurrency-cancel", "concurrency-fail", "concurrency-queue",
    # retries
    "retry-success", "retry-failed", "retry-and-fail", "retry-random", "retry-expo",
    # Not "retry-first-attempt": it counts the attempts of a task `failed` that its flow
    # (retry-success-first-attempt.yaml) does not have; Kestra's own test checks the first task run,
    # `not-retry-and-no-warning`, which tests/integration/test_retry.py checks here.
]


VALIDS = CORPUS / "flows" / "valids"
_FLOW_ID = re.compile(r"^\s*flowId:\s*['\"]?([A-Za-z0-9_-]+)", re.MULTILINE)


def deploy_for(file_name: str):
    """Deploy a corpus flow and, first, the corpus flows it calls as subflows."""
    from orchestrator.repository import deploy

    source = (VALIDS / file_name).read_text(encoding="utf-8")
    called = set(_FLOW_ID.findall(source))
    for path in sorted(VALIDS.iterdir()):
        text = path.read_text(encoding="utf-8")
        match = re.search(r"^id:\s*['\"]?([A-Za-z0-9_-]+)", text, re.MULTILINE)
        if path.name != file_name and match and match.group(1) in called:
            deploy(text)
    flow, _ = deploy(source)
    return flow


def lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        else:
            raise AssertionError(f"no {part!r} in {data!r} (path {path})")
    return data


def matches(actual: Any, expected: Any, execution_id: str) -> bool:
    if isinstance(expected, str):
        if expected == "$execution.id":
            return actual == execution_id
        if expected.startswith("~"):
            return re.search(expected[1:], str(actual)) is not None
        if expected.startswith("*"):
            return expected[1:] in str(actual)
    return actual == expected


def check(case: dict[str, Any], execution, runs, logs) -> None:
    first: dict[str, Any] = {}
    for run in runs:
        first.setdefault(run.task_id, run)
    if "state" in case:
        assert execution.state == case["state"], f"execution ended {execution.state}"
    if "taskruns" in case:
        assert len(runs) == case["taskruns"], [(r.task_id, r.state) for r in runs]
    for task_id, state in (case.get("task_states") or {}).items():
        assert task_id in first, f"no task run for {task_id}"
        assert first[task_id].state == state, f"{task_id} is {first[task_id].state}"
    for task_id in case.get("absent") or []:
        assert task_id not in first, f"{task_id} has a task run"
    for task_id, count in (case.get("attempts") or {}).items():
        assert len(first[task_id].attempts) == count
    for path, expected in (case.get("outputs") or {}).items():
        task_id, _, rest = path.partition(".")
        actual = lookup(first[task_id].outputs or {}, rest)
        assert matches(actual, expected, execution.id), f"outputs {path} = {actual!r}"
    for name, expected in (case.get("flow_outputs") or {}).items():
        actual = lookup(execution.outputs or {}, name)
        assert matches(actual, expected, execution.id), f"flow output {name} = {actual!r}"
    labels = {label["key"]: label["value"] for label in execution.labels}
    for key, expected in (case.get("labels") or {}).items():
        assert key in labels, f"no label {key} in {labels}"
        assert matches(labels[key], expected, execution.id), f"label {key} = {labels[key]!r}"
    for expected in case.get("logs") or []:
        found = [
            entry for entry in logs
            if entry.task_id == expected["task"] and expected["message"] in entry.message
            and ("level" not in expected or entry.level == expected["level"])
        ]
        assert found, f"no log {expected} in {[(e.task_id, e.level, e.message) for e in logs]}"
    for task_id in case.get("no_logs_for") or []:
        assert not [entry for entry in logs if entry.task_id == task_id], f"{task_id} logged"


@pytest.mark.parametrize("name", SUPPORTED)
def test_kestra_case(name, cluster):
    from orchestrator.models import LogEntry
    from orchestrator.repository import create_execution

    case = CASES[name]
    flow = deploy_for(case["flow"])
    if case.get("concurrent"):
        concurrent(case, flow)
        return
    execution = create_execution(flow.namespace, flow.flow_id, inputs=case.get("inputs") or {})
    if case.get("state") == "PAUSED":
        execution = wait_for(lambda: paused(execution.id), case.get("within_s", 60), f"case {name} to pause")
    else:
        execution = wait_for(lambda: finished(execution.id), case.get("within_s", 60), f"case {name}")
    runs = list(execution.task_runs.order_by("seq"))

    def checked():
        # Log lines reach the indexer on their own path: give them a moment after the end.
        logs = list(LogEntry.objects.filter(execution_id=execution.id).order_by("timestamp"))
        try:
            check(case, execution, runs, logs)
        except AssertionError as failure:
            checked.failure = failure
            return False
        return True

    checked.failure = None
    if not wait_for_quietly(checked, 10):
        raise checked.failure
    if case.get("then"):
        then(case, execution)


def concurrent(case: dict[str, Any], flow) -> None:
    """Start `concurrent` executions at once and check those named `first`, `second`…"""
    from orchestrator.repository import create_execution

    started = [create_execution(flow.namespace, flow.flow_id, inputs=case.get("inputs") or {})
               for _ in range(case["concurrent"])]
    ended = [wait_for(lambda: finished(execution.id), case.get("within_s", 60), f"case {case['name']}")
             for execution in started]
    # Started at once, either may take the free slot: the first is the one that ran first (or, for
    # one that never ran, ended first).
    ended.sort(key=_ran_or_ended)
    for position, execution in zip(("first", "second", "third"), ended):
        expected = case.get(position)
        if not expected:
            continue
        if "state" in expected:
            assert execution.state == expected["state"], f"the {position} execution ended {execution.state}"
        if "history" in expected:
            history = [entry["state"] for entry in execution.state_history]
            assert history == expected["history"], f"the {position} execution went {history}"


def _ran_or_ended(execution) -> tuple[int, str]:
    """Executions that ran come first, by when they started running; then those that never ran."""
    history = execution.state_history
    running = next((entry["date"] for entry in history if entry["state"] == "RUNNING"), None)
    return (0, running) if running is not None else (1, history[-1]["date"])


def paused(execution_id: str):
    from orchestrator.models import Execution

    execution = Execution.objects.get(id=execution_id)
    return execution if execution.state == "PAUSED" else None


def then(case: dict[str, Any], execution) -> None:
    """The actions after the first wait, then the final state."""
    from executor.service import resume_execution

    for action in case["then"]:
        assert action == "resume", f"unknown action {action!r} in case {case['name']}"
        resume_execution(execution.id)
    done = wait_for(lambda: finished(execution.id), 60, f"case {case['name']} after {case['then']}")
    assert done.state == case["final_state"], f"execution ended {done.state} after {case['then']}"

"""Retries: when the next attempt of a failed task starts, and what the task run becomes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from executor.core import TaskRunView, build_graph, judge_result
from executor.core.retry import RetryPolicy, task_policy
from orchestrator.states import State

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
FAIL = "io.kestra.plugin.core.execution.Fail"


def policy(**definition):
    parsed = RetryPolicy.of(definition)
    assert parsed is not None
    return parsed


def test_constant_waits_the_interval_every_time():
    retry = policy(type="constant", interval="PT0.250S", maxAttempt=4)
    assert [retry.delay(n, lambda: 0.5) for n in (1, 2, 3)] == [timedelta(milliseconds=250)] * 3


def test_exponential_multiplies_by_the_delay_factor_up_to_the_max_interval():
    retry = policy(type="exponential", interval="PT1S", maxInterval="PT5S")
    assert [retry.delay(n, lambda: 0).total_seconds() for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]
    tripled = policy(type="exponential", interval="PT1S", maxInterval="PT1M", delayFactor=3)
    assert tripled.delay(3, lambda: 0) == timedelta(seconds=9)


def test_exponential_does_not_overflow_after_many_failures():
    retry = policy(type="exponential", interval="PT1S", maxInterval="PT10M")
    assert retry.delay(5000, lambda: 0) == timedelta(minutes=10)


def test_random_draws_between_min_and_max():
    retry = policy(type="random", minInterval="PT0.2S", maxInterval="PT0.5S")
    assert retry.delay(1, lambda: 0.0) == timedelta(seconds=0.2)
    assert retry.delay(1, lambda: 1.0) == timedelta(seconds=0.5)


def test_max_attempt_counts_every_attempt_the_first_included():
    retry = policy(type="constant", interval="PT1S", maxAttempt=3)
    assert retry.next_attempt_at(1, T0, T0, lambda: 0) == T0 + timedelta(seconds=1)
    assert retry.next_attempt_at(2, T0, T0, lambda: 0) is not None
    assert retry.next_attempt_at(3, T0, T0, lambda: 0) is None


def test_max_duration_bounds_the_start_of_the_next_attempt():
    retry = policy(type="constant", interval="PT2S", maxDuration="PT5S")
    assert retry.next_attempt_at(1, T0, T0 + timedelta(seconds=3), lambda: 0) == T0 + timedelta(seconds=5)
    assert retry.next_attempt_at(2, T0, T0 + timedelta(seconds=4), lambda: 0) is None


def test_lower_case_durations_are_read_as_kestra_reads_them():
    assert policy(type="exponential", interval="PT0.25s", maxInterval="PT5S").interval == timedelta(seconds=0.25)


@pytest.mark.parametrize("definition", [None, "{{ retry }}", {"type": "constant"}, {"type": "weekly", "interval": "PT1S"},
                                        {"type": "random", "minInterval": "PT1S"}])
def test_unusable_policies_do_not_retry(definition):
    assert RetryPolicy.of(definition) is None


def test_a_task_policy_wins_over_the_flows_and_create_new_execution_is_not_a_task_retry():
    own = {"type": "constant", "interval": "PT1S", "maxAttempt": 2}
    flow_retry = {"type": "constant", "interval": "PT9S", "maxAttempt": 5}
    assert task_policy({"retry": own}, {"retry": flow_retry}).max_attempt == 2
    assert task_policy({}, {"retry": flow_retry}).max_attempt == 5
    assert task_policy({}, {"retry": {**flow_retry, "behavior": "CREATE_NEW_EXECUTION"}}) is None
    assert task_policy({}, {}) is None


def node(**extra):
    graph = build_graph({"id": "f", "namespace": "n", "tasks": [{"id": "t", "type": FAIL, **extra}]}, 1)
    return graph.node("t")


def run(attempts=0, state=State.RUNNING):
    return TaskRunView(id="r", task_id="t", parent_id=None, state=state, seq=0, attempts=attempts)


def test_a_failed_attempt_the_policy_allows_to_repeat_leaves_the_run_retrying():
    retry = policy(type="constant", interval="PT1S", maxAttempt=3)
    verdict = judge_result(node(), run(0), 1, State.FAILED, None, retry=retry, first_start=T0, now=T0)
    assert verdict.state is State.RETRYING and verdict.retry_at == T0 + timedelta(seconds=1)


def test_the_last_allowed_attempt_fails_and_allow_failure_then_applies():
    retry = policy(type="constant", interval="PT1S", maxAttempt=3)
    assert judge_result(node(), run(2), 3, State.FAILED, None, retry=retry, first_start=T0, now=T0).state \
        is State.FAILED
    tolerant = node(allowFailure=True)
    verdict = judge_result(tolerant, run(0), 1, State.FAILED, None, retry=retry, first_start=T0, now=T0)
    assert verdict.state is State.RETRYING  # retries come before allowFailure
    assert judge_result(tolerant, run(2), 3, State.FAILED, None, retry=retry, first_start=T0, now=T0).state \
        is State.WARNING


def test_success_after_a_retry_is_a_warning_only_with_warning_on_retry():
    plain = policy(type="constant", interval="PT1S", maxAttempt=3)
    warn = policy(type="constant", interval="PT1S", maxAttempt=3, warningOnRetry=True)
    assert judge_result(node(), run(1), 2, State.SUCCESS, None, retry=plain, now=T0).state is State.SUCCESS
    assert judge_result(node(), run(1), 2, State.SUCCESS, None, retry=warn, now=T0).state is State.WARNING
    assert judge_result(node(), run(0), 1, State.SUCCESS, None, retry=warn, now=T0).state is State.SUCCESS


def test_a_result_for_a_retrying_run_from_an_old_attempt_is_ignored():
    retry = policy(type="constant", interval="PT1S", maxAttempt=3)
    assert judge_result(node(), run(1, State.RETRYING), 1, State.FAILED, None, retry=retry, now=T0) is None


def test_the_nearest_flowable_holding_a_task_gives_its_retry_before_the_flow():
    graph = build_graph({"id": "f", "namespace": "n", "retry": {"type": "constant", "interval": "PT9S", "maxAttempt": 9},
                         "tasks": [{"id": "outer", "type": "io.kestra.plugin.core.flow.Sequential",
                                    "retry": {"type": "constant", "interval": "PT1S", "maxAttempt": 2},
                                    "tasks": [{"id": "inner", "type": "io.kestra.plugin.core.flow.Sequential",
                                               "tasks": [{"id": "t", "type": FAIL}]}]}]}, 1)
    holders = [holder.definition for holder in graph.ancestors("t")]
    assert [holder["id"] for holder in holders] == ["inner", "outer"]
    assert task_policy(graph.node("t").definition, graph.data, holders).max_attempt == 2
    assert task_policy(graph.node("outer").definition, graph.data, graph.ancestors("outer")).max_attempt == 2
    assert graph.ancestors("outer") == []


def test_attempts_lost_with_their_worker_do_not_count_against_max_attempt():
    retry = policy(type="constant", interval="PT1S", maxAttempt=2)
    # Attempts 1 and 2 were lost (their worker died); attempt 3 is the task's first failure.
    assert judge_result(node(), run(2), 3, State.FAILED, None, retry=retry, first_start=T0, now=T0,
                        lost=2).state is State.RETRYING
    assert judge_result(node(), run(3), 4, State.FAILED, None, retry=retry, first_start=T0, now=T0,
                        lost=2).state is State.FAILED


def test_success_after_a_lost_attempt_is_no_warning_on_retry():
    warn = policy(type="constant", interval="PT1S", maxAttempt=3, warningOnRetry=True)
    assert judge_result(node(), run(1), 2, State.SUCCESS, None, retry=warn, now=T0, lost=1).state is State.SUCCESS


def test_a_late_result_of_a_lost_attempt_is_ignored():
    # Attempt 1 was lost and attempt 2 is in flight: the dead worker's result changes nothing.
    assert judge_result(node(), run(1), 1, State.SUCCESS, {"value": 1}, now=T0, lost=1) is None

"""A result's step reads the task runs it is about, not a wide loop's thousands of others
(docs/executions.md, "Wide loops"): it is decided over a view of the execution that leaves out
the loop's other children and counts them. The steps run here by hand, the results of each batch
of jobs coming back in a shuffled order; every focused step is also decided over the whole
execution (HARRIER_CHECK_FOCUSED_STEPS) and fails when the two decisions differ."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from django.db import connection

from executor import store
from executor.delays import fire_due
from orchestrator.models import Delay, Execution, TaskRun
from orchestrator.repository import create_execution, deploy
from orchestrator.states import ACTIVE, State
from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reads(monkeypatch, settings):
    """How many steps read every task run of the execution, and how many only those they are about."""
    settings.HARRIER_CHECK_FOCUSED_STEPS = True
    counted = {"whole": 0, "focused": 0, "whole by execution": Counter()}
    whole, focused = store.load, store.load_focused

    def load(execution_id, *args, **kwargs):
        counted["whole"] += 1
        counted["whole by execution"][execution_id] += 1
        return whole(execution_id, *args, **kwargs)

    def load_focused(*args, **kwargs):
        counted["focused"] += 1
        return focused(*args, **kwargs)

    monkeypatch.setattr(store, "load", load)
    monkeypatch.setattr(store, "load_focused", load_focused)
    return counted


def _run(source, namespace, queues, seed, watch=None):
    """Execute a flow, running each batch of jobs and handing their results back shuffled."""
    from executor.service import handle_message
    from orchestrator import messages
    from workers.runtime import run_job

    flow, _ = deploy(with_namespace(source, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    rng = random.Random(seed)
    for _ in range(10_000):
        asked = queues.take("executor")
        for message in asked:
            handle_message(message)
        jobs = queues.take("worker.default")
        if not asked and not jobs:
            if not Delay.objects.filter(execution_id=execution.id).exists():
                break
            wait_for(lambda: fire_due() or queues.queues.get("worker.default"), 10, "a delay to fire")
            continue
        results = [messages.result(job["executionId"], run_job(job)) for job in jobs]
        rng.shuffle(results)
        for result in results:
            handle_message(result)
            if watch is not None:
                watch(execution.id)
    done = finished(execution.id)
    assert done is not None, "the execution did not end"
    return done


def _outputs(execution_id, task_id):
    return {run.value: run.outputs["value"] for run in TaskRun.objects.filter(execution_id=execution_id,
                                                                             task_id=task_id)}


def _counted(execution_id):
    """The database's counts of children against the task runs themselves."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.parent_task_run_id, c.task_id, c.state, c.count FROM orchestrator_childcount c "
                       "JOIN orchestrator_taskrun p ON p.id = c.parent_task_run_id "
                       "WHERE p.execution_id = %s AND c.count <> 0 ORDER BY 1, 2, 3", [execution_id])
        counts = cursor.fetchall()
        cursor.execute("SELECT parent_task_run_id, task_id, state, count(*) FROM orchestrator_taskrun "
                       "WHERE execution_id = %s AND parent_task_run_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                       [execution_id])
        return counts, cursor.fetchall()


WIDE = f"""
id: wide
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps([f"v{index}" for index in range(80)])}
    concurrencyLimit: 0
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}!"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.item['v79'].value }}}}"
"""


def test_the_results_of_a_wide_loop_are_decided_without_reading_its_other_children(queues, reads, namespace):
    done = _run(WIDE, namespace, queues, seed=1)
    assert done.state == State.SUCCESS.value
    assert _outputs(done.id, "item") == {f"v{index}": f"v{index}!" for index in range(80)}
    assert _outputs(done.id, "after") == {None: "v79!"}
    # The step that starts the loop reads the execution whole, and so does the one that sees its
    # last child end (the loop's outcome is the worst of all its children); each other result
    # only reads what it is about.
    assert reads["focused"] >= 80
    assert reads["whole"] <= 4
    counts, actual = _counted(done.id)
    assert counts == actual and sum(row[3] for row in counts) == 80


def test_a_limited_loop_starts_its_next_value_as_one_ends_and_runs_each_value_in_order(queues, reads, namespace):
    source = f"""
id: limited
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps(list(range(12)))}
    concurrencyLimit: 3
    tasks:
      - id: first
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
      - id: second
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ outputs.first[taskrun.value].value }}}}-second"
"""
    peak = []

    def watch(execution_id):
        running = TaskRun.objects.filter(execution_id=execution_id, task_id__in=["first", "second"],
                                         state__in=[state.value for state in ACTIVE])
        peak.append(len({run.iteration for run in running}))

    done = _run(source, namespace, queues, seed=2, watch=watch)
    assert done.state == State.SUCCESS.value
    assert _outputs(done.id, "second") == {str(index): f"{index}-second" for index in range(12)}
    assert max(peak) == 3
    firsts = TaskRun.objects.filter(execution_id=done.id, task_id="first").order_by("seq")
    assert [run.iteration for run in firsts] == list(range(12))  # values start in order
    assert reads["focused"] >= 20


def test_each_parallel_with_a_sequential_beside_a_task_runs_everything_once(queues, reads, namespace):
    source = f"""
id: each-parallel
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.EachParallel
    value: {json.dumps([f"v{index}" for index in range(6)])}
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: s1
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ parent.taskrun.value }}}}-1"
          - id: s2
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ outputs.s1[parent.taskrun.value].value }}}}-2"
      - id: alone
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}-alone"
"""
    done = _run(source, namespace, queues, seed=3)
    assert done.state == State.SUCCESS.value
    for task_id in ("seq", "alone"):
        runs = TaskRun.objects.filter(execution_id=done.id, task_id=task_id)
        assert sorted(run.value for run in runs) == [f"v{index}" for index in range(6)]
    assert sorted(run.outputs["value"] for run in TaskRun.objects.filter(execution_id=done.id, task_id="s2")) == \
        [f"v{index}-1-2" for index in range(6)]
    assert reads["focused"] >= 18


def _failing(values, limit):
    """A loop whose value 4 fails, with an `errors` task."""
    return f"""
id: failing
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps(list(range(values)))}
    concurrencyLimit: {limit}
    tasks:
      - id: check
        type: io.kestra.plugin.core.execution.Fail
        condition: "{{{{ taskrun.value == '4' }}}}"
    errors:
      - id: handled
        type: io.kestra.plugin.core.debug.Return
        format: handled
"""


def test_a_failure_in_a_wide_loop_stops_new_values_and_runs_its_errors(queues, reads, namespace):
    done = _run(_failing(10, limit=2), namespace, queues, seed=4)
    assert done.state == State.FAILED.value
    checks = TaskRun.objects.filter(execution_id=done.id, task_id="check")
    assert {run.value: run.state for run in checks}["4"] == State.FAILED.value
    # Nothing starts once the failure is seen: with two values at once, at most the two after it.
    assert max(int(run.value) for run in checks) <= 6
    assert TaskRun.objects.get(execution_id=done.id, task_id="handled").state == State.SUCCESS.value
    counts, actual = _counted(done.id)
    assert counts == actual


def test_nested_wide_loops_nest_their_outputs_by_both_values(queues, reads, namespace):
    source = f"""
id: nested
namespace: tests
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps(["a", "b", "c", "d"])}
    concurrencyLimit: 0
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.ForEach
        values: {json.dumps(list(range(5)))}
        concurrencyLimit: 0
        tasks:
          - id: cell
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ parent.taskrun.value }}}}{{{{ taskrun.value }}}}"
  - id: pick
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.cell['c']['3'].value }}}}"
"""
    done = _run(source, namespace, queues, seed=5)
    assert done.state == State.SUCCESS.value
    cells = TaskRun.objects.filter(execution_id=done.id, task_id="cell")
    assert sorted(run.outputs["value"] for run in cells) == sorted(f"{o}{i}" for o in "abcd" for i in range(5))
    assert _outputs(done.id, "pick") == {None: "c3"}
    assert reads["focused"] >= 20


def test_the_counts_go_with_their_task_runs_when_an_execution_is_deleted(queues, reads, namespace):
    done = _run(WIDE, namespace, queues, seed=6)
    parents = list(TaskRun.objects.filter(execution_id=done.id).values_list("id", flat=True))
    Execution.objects.filter(id=done.id).delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM orchestrator_childcount WHERE parent_task_run_id = ANY(%s)", [parents])
        assert cursor.fetchone()[0] == 0


def test_after_a_failure_the_other_values_end_without_reading_the_whole_loop(queues, reads, namespace):
    done = _run(_failing(40, limit=0), namespace, queues, seed=7)
    assert done.state == State.FAILED.value
    checks = {run.value: run.state for run in TaskRun.objects.filter(execution_id=done.id, task_id="check")}
    assert len(checks) == 40 and checks["4"] == State.FAILED.value
    assert sum(state == State.SUCCESS.value for state in checks.values()) == 39  # already running: they end
    assert TaskRun.objects.get(execution_id=done.id, task_id="handled").state == State.SUCCESS.value
    # Whole reads: the start, the step that saw the failure, the `errors` task's end, the loop's end.
    assert reads["whole"] <= 6


def test_a_one_at_a_time_loop_moves_from_value_to_value_without_reading_the_others(queues, reads, namespace):
    source = f"""
id: one-at-a-time
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps(list(range(30)))}
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"""
    done = _run(source, namespace, queues, seed=8)
    assert done.state == State.SUCCESS.value
    items = TaskRun.objects.filter(execution_id=done.id, task_id="item").order_by("seq")
    assert [run.value for run in items] == [str(index) for index in range(30)]
    assert reads["whole"] <= 4


def test_jobs_beyond_a_batch_are_sent_by_steps_that_read_only_the_unsent(queues, reads, namespace, settings):
    settings.HARRIER_DISPATCH_BATCH = 7
    done = _run(WIDE, namespace, queues, seed=9)
    assert done.state == State.SUCCESS.value
    assert _outputs(done.id, "item") == {f"v{index}": f"v{index}!" for index in range(80)}
    assert reads["whole"] <= 4


def test_the_end_of_a_subflow_execution_is_decided_over_the_task_run_waiting_for_it(queues, reads, namespace):
    child = """
id: child
namespace: tests
inputs:
  - id: value
    type: STRING
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.value }}"
outputs:
  - id: echoed
    type: STRING
    value: "{{ outputs.echo.value }}"
"""
    deploy(with_namespace(child, namespace))
    source = f"""
id: parent
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps([f"v{index}" for index in range(25)])}
    concurrencyLimit: 0
    tasks:
      - id: call
        type: io.kestra.plugin.core.flow.Subflow
        namespace: {namespace}
        flowId: child
        inputs:
          value: "{{{{ taskrun.value }}}}"
"""
    done = _run(source, namespace, queues, seed=10)
    assert done.state == State.SUCCESS.value
    calls = TaskRun.objects.filter(execution_id=done.id, task_id="call")
    assert sorted(run.outputs["outputs"]["echoed"] for run in calls) == sorted(f"v{index}" for index in range(25))
    # Each child's end wakes its parent about the task run waiting for it: the parent reads the
    # whole execution only to start the loop and to end it.
    assert reads["whole by execution"][done.id] <= 4


def test_retries_in_a_wide_loop_are_decided_over_the_task_run_they_are_for(queues, reads, namespace):
    source = f"""
id: retrying
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps(list(range(20)))}
    concurrencyLimit: 0
    tasks:
      - id: flaky
        type: io.kestra.plugin.core.execution.Fail
        condition: "{{{{ taskrun.attemptsCount == 0 }}}}"
        retry:
          type: constant
          interval: PT0.05S
          maxAttempt: 3
"""
    done = _run(source, namespace, queues, seed=11)
    assert done.state == State.SUCCESS.value
    runs = TaskRun.objects.filter(execution_id=done.id, task_id="flaky")
    assert len(runs) == 20 and {run.attempt_count for run in runs} == {2}
    assert reads["whole by execution"][done.id] <= 4


def test_a_kept_result_is_taken_once_and_forgotten_with_its_execution():
    import os

    from workers.claims import RedisClaims

    claims = RedisClaims(os.environ["CELERY_BROKER_URL"])
    claims.keep_result("harrier:result:r1:1", b"one", "e-kept")
    claims.keep_result("harrier:result:r2:1", b"two", "e-kept")
    claims.keep_result("harrier:result:r3:1", b"alone")  # not in a loop: not noted
    assert sorted(claims.take_finished("e-kept", 10)) == [b"one", b"two"]
    assert claims.take_finished("e-kept", 10) == []
    assert claims.kept_result("harrier:result:r1:1") == b"one"  # still there for a lost worker's case
    claims.keep_result("harrier:result:r4:1", b"four", "e-kept")
    claims.forget_finished("e-kept")
    assert claims.take_finished("e-kept", 10) == []

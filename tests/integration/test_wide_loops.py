"""A wide loop's jobs go out a batch per executor step, and a job still queued behind others is
not taken for a lost one (docs/executions.md, "Wide loops"). The executor's steps run here by
hand, on a bus that keeps its messages, so the batches can be counted."""

from __future__ import annotations

import json

import pytest

from orchestrator.models import TaskRun
from orchestrator.repository import create_execution, deploy
from orchestrator.states import State
from tests.harness import finished, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WIDE = f"""
id: wide
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {json.dumps(list(range(5)))}
    concurrencyLimit: 0
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"""


@pytest.fixture
def queues(queues, settings):
    settings.HARRIER_DISPATCH_BATCH = 2
    return queues


def _undispatched(execution_id):
    return set(TaskRun.objects.filter(execution_id=execution_id, task_id="item", state=State.CREATED.value,
                                      dispatched__isnull=True).values_list("id", flat=True))


def test_a_wide_loop_sends_its_jobs_a_batch_per_step_and_each_runs_once(queues, namespace):
    from executor.service import handle_message
    from orchestrator import messages
    from workers.runtime import run_job

    flow, _ = deploy(with_namespace(WIDE, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    queues.take("executor")
    handle_message(messages.evaluate(execution.id))
    first = queues.take("worker.default")
    assert len(first) == 2
    assert TaskRun.objects.filter(execution_id=execution.id, task_id="item").count() == 5
    assert len(_undispatched(execution.id)) == 3
    # The step asked to be followed by another, which sends the next batch.
    [again] = queues.take("executor")
    handle_message(again)
    second = queues.take("worker.default")
    assert len(second) == 2 and len(_undispatched(execution.id)) == 1
    # And again, for what is left; meanwhile a result is applied.
    handle_message(messages.result(execution.id, run_job(first[0])))
    [again] = queues.take("executor")
    handle_message(again)
    jobs = [*first[1:], *second, *queues.take("worker.default")]
    assert len(jobs) == 4 and not _undispatched(execution.id)
    for message in queues.take("executor"):
        handle_message(message)
    for job in jobs:
        handle_message(messages.result(execution.id, run_job(job)))
    done = finished(execution.id)
    assert done.state == State.SUCCESS.value
    runs = TaskRun.objects.filter(execution_id=execution.id, task_id="item")
    assert sorted(run.value for run in runs) == ["0", "1", "2", "3", "4"]
    assert [run.attempt_count for run in runs] == [1] * 5
    assert {job["taskRunId"] for job in [first[0], *jobs]} == {run.id for run in runs}


def _asked(queues, execution_id):
    """The reconciler's message for this execution, taken from the executor's queue."""
    [ask] = [message for message in queues.take("executor")
             if message["executionId"] == execution_id and message.get("redispatch")]
    return ask


def test_a_job_queued_behind_others_is_not_sent_again_until_its_queue_has_drained(queues, namespace):
    from executor.reconciler import reconcile_once
    from executor.service import handle_message
    from orchestrator import messages

    flow, _ = deploy(with_namespace(WIDE, namespace))
    execution = create_execution(flow.namespace, flow.flow_id)
    queues.take("executor")
    handle_message(messages.evaluate(execution.id))
    queues.take("executor")
    sent = {job["taskRunId"] for job in queues.queues["worker.default"]}
    # No worker has claimed the two jobs yet: the reconciler asks for them again, and leaves the
    # task runs whose jobs were never sent to the executor's next step.
    reconcile_once(idle_seconds=0)
    ask = _asked(queues, execution.id)
    assert set(ask["redispatch"]) == sent
    # They are still in their queue: waiting, not lost, so not sent again (the step sends the
    # next batch of the loop's jobs, though).
    handle_message(ask)
    queued = [job["taskRunId"] for job in queues.take("worker.default")]
    assert len(queued) == 4 and len(set(queued)) == 4 and sent <= set(queued)
    # The queue has drained, and still no worker claimed them (it died taking them): lost, sent again.
    reconcile_once(idle_seconds=0)
    handle_message(_asked(queues, execution.id))
    again = [job["taskRunId"] for job in queues.take("worker.default")]
    assert set(queued) <= set(again) and len(again) == 5
    assert TaskRun.objects.get(id=sorted(sent)[0]).attempt_count == 0  # the same attempt, sent again

"""The measuring half of `manage.py benchmark`, run inside the benchmark's own environment.

Also declares the no-op Celery task of the raw-Celery floor; workers import this module, so it
imports nothing from Django at module level.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid

from orchestrator import messages
from orchestrator.celery import app

NOOP_TASK = "harrier.benchmark.noop"


@app.task(name=NOOP_TASK, ignore_result=True)
def noop(key: str, last: bool) -> None:
    if last:
        import redis

        redis.Redis.from_url(app.conf.broker_url).set(key, repr(time.time()), ex=600)


def _poll(predicate, timeout: float, what: str, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def _wait_ready(queues: set[str]) -> None:
    def ready():
        replies = app.control.inspect(timeout=0.5).active_queues() or {}
        return queues <= {q["name"] for listed in replies.values() for q in listed}

    _poll(ready, 60, f"consumers on {sorted(queues)}")


def _sequential(flow_source: str, tasks: int, runs: int) -> list[float]:
    from orchestrator.models import Execution
    from orchestrator.repository import create_execution, deploy
    from orchestrator.states import State

    flow, _ = deploy(flow_source)
    samples = []
    for _ in range(runs):
        execution = create_execution(flow.namespace, flow.flow_id)

        def done(execution_id=execution.id):
            row = Execution.objects.get(id=execution_id)
            return row if State(row.state).is_terminal else None

        # Timed by the executor's own timestamps, so a slow poll costs no accuracy; a fast one
        # would steal CPU from the components being measured.
        row = _poll(done, 300, f"execution {execution.id}", interval=0.05)
        if row.state != "SUCCESS":
            raise RuntimeError(f"benchmark execution ended {row.state}")
        samples.append((row.end_date - row.start_date).total_seconds() * 1000 / tasks)
    return samples


def _foreach(size: int) -> float:
    """Seconds for one execution of a ForEach over `size` values, all at once."""
    from orchestrator.models import Execution
    from orchestrator.repository import create_execution, deploy
    from orchestrator.states import State

    source = (f"id: foreach-{size}\nnamespace: harrier.benchmark\ntasks:\n  - id: each\n"
              f"    type: io.kestra.plugin.core.flow.ForEach\n    values: {json.dumps(list(range(size)))}\n"
              f"    concurrencyLimit: 0\n    tasks:\n      - id: item\n"
              f"        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ taskrun.value }}}}\"\n")
    flow, _ = deploy(source)
    execution = create_execution(flow.namespace, flow.flow_id)

    def done():
        row = Execution.objects.get(id=execution.id)
        return row if State(row.state).is_terminal else None

    row = _poll(done, 3600, f"execution {execution.id}", interval=0.2)
    if row.state != "SUCCESS":
        raise RuntimeError(f"benchmark execution ended {row.state}")
    return (row.end_date - row.start_date).total_seconds()


def _celery_chain(tasks: int, runs: int) -> list[float]:
    import redis
    from celery import chain

    client = redis.Redis.from_url(app.conf.broker_url)
    queue = messages.worker_queue(None)
    samples = []
    for _ in range(runs):
        key = f"harrier:benchmark:{uuid.uuid4().hex}"
        links = [noop.si(key, index == tasks - 1).set(queue=queue) for index in range(tasks)]
        start = time.time()
        chain(*links).apply_async()
        end = float(_poll(lambda: client.get(key), 300, "the celery chain"))
        samples.append((end - start) * 1000 / tasks)
    return samples


def main() -> None:
    args = json.loads(os.environ["HARRIER_BENCHMARK_ARGS"])
    tasks, runs, warmup = args["tasks"], args["executions"], args["warmup"]
    _wait_ready({messages.EXECUTOR_QUEUE, messages.worker_queue(None), messages.INDEXER_QUEUE})
    workloads = {}
    sequential = _sequential(args["flow"], tasks, warmup + runs)[warmup:]
    chained = _celery_chain(tasks, warmup + runs)[warmup:]
    for name, samples in (("sequential", sequential), ("celery-chain", chained)):
        workloads[name] = {"tasks": tasks, "runs": runs, "per_task_ms": statistics.median(samples),
                           "samples_ms": samples}
    floor = workloads["celery-chain"]["per_task_ms"]
    ours = workloads["sequential"]["per_task_ms"]
    script_tasks, script_overhead = args.get("script_tasks") or 0, None
    if script_tasks:
        scripts = _sequential(args["script_flow"], script_tasks, warmup + runs)[warmup:]
        workloads["python-script"] = {"tasks": script_tasks, "runs": runs, "per_task_ms": statistics.median(scripts),
                                      "samples_ms": scripts}
        script_overhead = workloads["python-script"]["per_task_ms"] - ours
    foreach = {str(size): _foreach(size) for size in args.get("foreach") or []}
    print(json.dumps({"workloads": workloads, "ratio": ours / floor, "overhead_ms": ours - floor,
                      "script_overhead_ms": script_overhead, "foreach": foreach}))

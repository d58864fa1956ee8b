"""`manage.py benchmark`: orchestration overhead per task, against raw Celery as the floor.

It needs the configured PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL), and starts
its own components: a database of its own (`<name>_benchmark`, dropped at the end) and a Redis
database of its own, so a running deployment is neither disturbed nor counted.

Workloads:
- `sequential`: a flow of N `debug.Return` tasks; per task = (end − start of the execution) / N,
  from the timestamps the executor records; median over several executions.
- `celery-chain`: a Celery chain of N no-op tasks over the same broker and the same worker
  pool; per task = (end of the last link − send time) / N; median likewise.
- `python-script`: a flow of M `scripts.python.Script` tasks running a trivial script (`--script-tasks`);
  per task as `sequential`: what a Python script task costs end to end — its process start, the
  `kestra` module, its outputs — beside a task that runs in the worker itself.
- `foreach-<N>` (with `--foreach N …`): a ForEach over N values, all at once
  (`concurrencyLimit: 0`), one `debug.Return` each; the wall time of one execution, so that
  sizes can be compared (ten times the values should cost about ten times the time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

ROOT = Path(settings.BASE_DIR)


def _with_db(url: str, name: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{name}"))


def _flow(tasks: int) -> str:
    lines = ["id: sequential", "namespace: harrier.benchmark", "tasks:"]
    for index in range(tasks):
        lines += [f"  - id: t{index}", "    type: io.kestra.plugin.core.debug.Return", f"    format: \"{index}\""]
    return "\n".join(lines) + "\n"


def _script_flow(tasks: int) -> str:
    lines = ["id: python-script", "namespace: harrier.benchmark", "tasks:"]
    for index in range(tasks):
        lines += [f"  - id: s{index}", "    type: io.kestra.plugin.scripts.python.Script",
                  f"    script: \"x = {index}\""]
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = "Measure orchestration overhead per task against a raw Celery chain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tasks", type=int, default=40, help="tasks per flow / links per chain")
        parser.add_argument("--executions", type=int, default=7, help="runs of each workload (median)")
        parser.add_argument("--warmup", type=int, default=2, help="runs before measuring")
        parser.add_argument("--redis-db", type=int, default=13, help="Redis database the benchmark may flush")
        parser.add_argument("--script-tasks", type=int, default=10,
                            help="Python Script tasks in the python-script flow (0: skip it)")
        parser.add_argument("--foreach", type=int, nargs="*", default=[], metavar="N",
                            help="also time a ForEach over N values (e.g. --foreach 1000 10000)")
        parser.add_argument("--synchronous-commit", choices=("on", "off"), default=None,
                            help="PostgreSQL commit durability for the components it starts "
                                 "(default: HARRIER_SYNCHRONOUS_COMMIT, else on)")
        parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url or not database_url.startswith(("postgres://", "postgresql://")):
            raise CommandError("benchmark needs DATABASE_URL pointing at PostgreSQL (e.g. postgres://postgres@127.0.0.1/harrier)")
        bench_db = f"{urlparse(database_url).path.lstrip('/') or 'harrier'}_benchmark"
        bench_url = _with_db(database_url, bench_db)
        broker = _with_db(settings.CELERY_BROKER_URL, str(options["redis_db"]))
        self._recreate_database(database_url, bench_db)
        env = {**os.environ, "DATABASE_URL": bench_url, "CELERY_BROKER_URL": broker, "PYTHONUNBUFFERED": "1"}
        if options["synchronous_commit"]:
            env["HARRIER_SYNCHRONOUS_COMMIT"] = options["synchronous_commit"]
        self._manage(env, "migrate", "--verbosity", "0")
        processes = []
        try:
            import redis

            redis.Redis.from_url(broker).flushdb()
            processes = [
                self._spawn(env, "server", "executor", "--concurrency", "2"),
                self._spawn(env, "server", "worker", "--pool", "threads", "--concurrency", "2"),
                self._spawn(env, "server", "indexer"),
            ]
            figures = self._measure(env, options)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
            self._drop_database(database_url, bench_db)
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
        else:
            self._print(figures)

    def _measure(self, env: dict[str, str], options: dict) -> dict[str, Any]:
        script = [sys.executable, str(ROOT / "manage.py"), "shell", "-c",
                  "from orchestrator.benchmarking import main; main()"]
        args = json.dumps({"tasks": options["tasks"], "executions": options["executions"],
                           "warmup": options["warmup"], "flow": _flow(options["tasks"]),
                           "foreach": options["foreach"], "script_tasks": options["script_tasks"],
                           "script_flow": _script_flow(options["script_tasks"])})
        completed = subprocess.run(script, env={**env, "HARRIER_BENCHMARK_ARGS": args}, capture_output=True,
                                   text=True, cwd=ROOT, timeout=1800)
        if completed.returncode != 0:
            raise CommandError(f"benchmark run failed:\n{completed.stderr[-4000:]}")
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
        figures["synchronous_commit"] = env.get("HARRIER_SYNCHRONOUS_COMMIT", "on")
        return figures

    def _print(self, figures: dict[str, Any]) -> None:
        write = self.stdout.write
        for name, workload in figures["workloads"].items():
            write(f"{name:<14} {workload['per_task_ms']:8.2f} ms/task  (median of {workload['runs']}, "
                  f"{workload['tasks']} tasks; runs: {', '.join(f'{v:.2f}' for v in workload['samples_ms'])})")
        for size, seconds in figures.get("foreach", {}).items():
            write(f"foreach-{size:<8} {seconds:8.2f} s for {size} values ({seconds * 1000 / int(size):.2f} ms/value)")
        write(f"ratio sequential / celery-chain: {figures['ratio']:.2f} "
              f"(PostgreSQL synchronous_commit={figures['synchronous_commit']})")
        write(f"orchestration overhead per task beyond raw Celery: {figures['overhead_ms']:.2f} ms")
        if figures.get("script_overhead_ms") is not None:
            write(f"a Python Script task costs {figures['script_overhead_ms']:.2f} ms more than a Return task")

    def _manage(self, env: dict[str, str], *args: str) -> None:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True, cwd=ROOT)

    def _spawn(self, env: dict[str, str], *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _admin_connection(self, database_url: str):
        import psycopg

        return psycopg.connect(_with_db(database_url, "postgres"), autocommit=True)

    def _recreate_database(self, database_url: str, name: str) -> None:
        with self._admin_connection(database_url) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')

    def _drop_database(self, database_url: str, name: str) -> None:
        with self._admin_connection(database_url) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


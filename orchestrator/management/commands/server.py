"""`manage.py server local|standalone|webserver|executor|worker|scheduler|indexer`.

The process entry points mirror Kestra's CLI. `local` runs everything in this process with
SQLite and no broker; `standalone` runs every component as its own process against the
configured PostgreSQL and Redis; the others run one component each, to scale independently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator import messages

COMPONENTS = ("local", "standalone", "webserver", "executor", "worker", "scheduler", "indexer")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def celery_worker(queues: list[str], *, pool: str, concurrency: int, name: str) -> None:
    """Run a Celery worker in this process (it returns when the worker stops)."""
    from orchestrator.celery import app

    argv = [
        "worker", "--loglevel", os.environ.get("HARRIER_CELERY_LOG_LEVEL", "WARNING"),
        "-Q", ",".join(queues), "--pool", pool, "--concurrency", str(concurrency),
        "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "-O", "fair",
    ]
    app.worker_main(argv)


class Command(BaseCommand):
    help = "Run Harrier's server components."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("component", choices=COMPONENTS)
        parser.add_argument("--port", type=int, default=int(os.environ.get("HARRIER_PORT", "8080")))
        parser.add_argument("--host", default=os.environ.get("HARRIER_HOST", "127.0.0.1"))
        parser.add_argument("--worker-group", default=messages.DEFAULT_WORKER_GROUP,
                            help="worker: the group whose queue this worker consumes")
        parser.add_argument("--concurrency", type=int, default=None,
                            help="worker/executor: how many tasks run at once")
        parser.add_argument("--pool", choices=("prefork", "threads", "solo"), default=None,
                            help="worker: processes (isolation) or threads (lower overhead); docs/workers.md")
        parser.add_argument("--no-indexer", action="store_true", help="webserver: do not run the indexer")
        parser.add_argument("--no-example", action="store_true", help="local: do not run the example flow")

    def handle(self, *args: Any, **options: Any) -> None:
        component = options["component"]
        getattr(self, f"run_{component}")(options)

    # --- one component per process -------------------------------------------------------

    def run_executor(self, options: dict) -> None:
        from executor import delays, reconciler

        reconciler.start_thread()
        delays.start_thread()
        celery_worker([messages.EXECUTOR_QUEUE], pool=options["pool"] or "threads", concurrency=options["concurrency"] or 4,
                      name="executor")

    def run_worker(self, options: dict) -> None:
        group = options["worker_group"]
        celery_worker([messages.worker_queue(group)], pool=options["pool"] or "prefork",
                      concurrency=options["concurrency"] or os.cpu_count() or 2, name=f"worker-{group}")

    def run_indexer(self, options: dict) -> None:
        celery_worker([messages.INDEXER_QUEUE], pool="threads", concurrency=options["concurrency"] or 2,
                      name="indexer")

    def run_scheduler(self, options: dict) -> None:
        """celery beat (a child process) wakes the Schedule triggers; this process consumes the
        `scheduler` queue, where their firing happens (scheduler/service.py) and polling
        triggers' results arrive, and a thread dispatches polling evaluations (scheduler/polling.py)."""
        import scheduler.tasks  # noqa: F401 (registers the consumer's tasks)
        from scheduler import polling, service

        service.ensure_sweep_task()
        service.sync_all()
        polling.start_thread()  # polling triggers: dispatched to workers as they fall due
        beat = subprocess.Popen([
            sys.executable, "-m", "celery", "-A", "orchestrator", "beat", "--loglevel", "WARNING",
            "--scheduler", settings.CELERY_BEAT_SCHEDULER,
            "--max-interval", os.environ.get("HARRIER_BEAT_MAX_INTERVAL", "5"),
        ], cwd=settings.BASE_DIR, preexec_fn=_die_with_parent)
        try:
            celery_worker([messages.SCHEDULER_QUEUE], pool="threads", concurrency=options["concurrency"] or 4,
                          name="scheduler")
        finally:
            _stop([beat])

    def run_webserver(self, options: dict) -> None:
        """gunicorn's threaded workers: each request holds a thread, a followed execution
        (server-sent events) for its whole life, so HARRIER_FOLLOW_MAX_STREAMS (4) keeps half of
        the HARRIER_WEB_THREADS (8) of each worker process for the rest of the API.

        gunicorn is a child process, stopped with this one (SIGTERM, Ctrl-C, or this process
        killed): a webserver stopped by `standalone` or a supervisor leaves no server behind."""
        children = [] if options["no_indexer"] else [_spawn("indexer")]
        children.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "orchestrator.wsgi:application", "--bind",
             f"{options['host']}:{options['port']}", "--workers", os.environ.get("HARRIER_WEB_WORKERS", "2"),
             "--threads", os.environ.get("HARRIER_WEB_THREADS", "8"), "--access-logfile", "-"],
            preexec_fn=_die_with_parent,
        ))
        _supervise(children)

    # --- several components --------------------------------------------------------------

    def run_standalone(self, options: dict) -> None:
        """Every component as a child process against the configured PostgreSQL and Redis."""
        children = [_spawn("executor"), _spawn("worker"), _spawn("indexer"), _spawn("scheduler"),
                    _spawn("webserver", "--no-indexer", "--port", str(options["port"]), "--host", options["host"])]
        self.stdout.write(f"Harrier standalone: http://{options['host']}:{options['port']}/ (Ctrl-C stops)")
        _supervise(children)

    def run_local(self, options: dict) -> None:
        from django.core.management import call_command

        from orchestrator.local import LocalRuntime
        from orchestrator.repository import create_execution, deploy

        call_command("migrate", verbosity=0)
        runtime = LocalRuntime()
        from executor import reconciler
        from scheduler import loop

        reconciler.start_thread()
        loop.start_thread()  # no beat here: Schedule triggers are evaluated by a thread
        credentials = _ensure_admin()
        server = _serve_in_thread(options["host"], options["port"])
        url = f"http://{options['host']}:{options['port']}/"
        write = self.stdout.write
        write(f"Harrier is running locally (database {settings.DATABASES['default']['NAME']}).")
        write(f"  Web UI and admin: {url}admin/")
        if credentials:
            write(f"  Admin user created: {credentials[0]} / {credentials[1]} (shown once; saved nowhere else)")
        for path in sorted(EXAMPLES.glob("*.yaml")):
            flow, _ = deploy(path.read_text(encoding="utf-8"))
            write(f"  Deployed example flow {flow.namespace}.{flow.flow_id} (revision {flow.revision})")
        if not options["no_example"]:
            execution = create_execution("company.team", "hello-world")
            execution = runtime.wait_for(execution.id, timeout=60)
            self._report(execution)
        write("Press Ctrl-C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            pass
        server.close()

    def _report(self, execution) -> None:
        from orchestrator.models import LogEntry

        self.stdout.write(f"  Example execution {execution.id}: {execution.state}")
        for entry in LogEntry.objects.filter(execution_id=execution.id).order_by("timestamp"):
            self.stdout.write(f"    {entry.level:<5} [{entry.task_id}] {entry.message}")


def _ensure_admin() -> tuple[str, str] | None:
    """Create the local admin user once; returns its credentials only when just created."""
    from django.contrib.auth import get_user_model
    from django.utils.crypto import get_random_string

    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    password = get_random_string(20)
    users.objects.create_superuser("admin", "admin@localhost", password)
    return "admin", password


def _serve_in_thread(host: str, port: int):
    from waitress.server import create_server

    from orchestrator.wsgi import application

    # As gunicorn's workers (run_webserver): 8 threads, of which followed streams take at most
    # HARRIER_FOLLOW_MAX_STREAMS.
    server = create_server(application, host=host, port=port, threads=int(os.environ.get("HARRIER_WEB_THREADS", "8")))
    threading.Thread(target=server.run, name="harrier-web", daemon=True).start()
    return server


def _die_with_parent() -> None:
    """In a child process: be killed when the parent dies, however it dies (Linux), so that no beat
    outlives its scheduler. Celery's shutdown may leave without running `finally`, and a beat
    asked to stop may wait on the database; killing it loses nothing, as firing is idempotent."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the scheduler's `finally` stops it
        pass


def _spawn(component: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "server", component, *extra])


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()


def _supervise(children: list[subprocess.Popen]) -> None:
    """Wait until a child dies or we are asked to stop, then stop every child."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            dead = [child for child in children if child.poll() is not None]
            if dead:
                raise CommandError(f"a component exited with status {dead[0].returncode}; stopping the others")
    except KeyboardInterrupt:
        pass
    finally:
        _stop(children)

"""`manage.py flow validate|deploy|run`: flows from files, without the web server.

`flow run FILE` deploys the file and runs it to the end in this process, as `server local`
would, then prints the execution (or, with --json, one JSON object in Kestra's shape).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.flowlang import FlowSyntaxError, FlowValidationError
from orchestrator.input_types import Invalid, parse_datetime
from orchestrator.storage import StorageError


def read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file")
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text")
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror}")


def flow_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file()))
        else:
            files.append(path)
    return files


def ensure_schema() -> None:
    """A local SQLite database is created and migrated on first use; any other database must
    have been migrated by its operator, and is not changed behind their back."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    if connection.vendor == "sqlite":
        call_command("migrate", verbosity=0)
        return
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError("the database has unapplied migrations: run `python manage.py migrate` first")


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--input {pair!r}: expected NAME=VALUE")
        inputs[key] = value
    return inputs


def schedule_date(text: str | None) -> datetime | None:
    """The --schedule-date option: an ISO-8601 date-time with its time zone."""
    if text is None:
        return None
    try:
        return parse_datetime(text)
    except Invalid as error:
        raise CommandError(f"--schedule-date: {error}") from None


def local_files(declared: Any, inputs: dict[str, str]) -> tuple[dict[str, str], dict[str, Path]]:
    """`--input data=@/path/to/file.csv` for a FILE input: the local file, uploaded with the
    execution. Other values (a `kestra:///…` URI among them) stay as given."""
    file_ids = {item.get("id", item.get("name")) for item in declared or () if item.get("type") == "FILE"}
    files: dict[str, Path] = {}
    for name in [name for name, value in inputs.items() if name in file_ids and value.startswith("@")]:
        path = Path(inputs.pop(name)[1:]).expanduser()
        if not path.is_file():
            raise CommandError(f"--input {name}=@{path}: no such file")
        if not os.access(path, os.R_OK):
            raise CommandError(f"--input {name}=@{path}: the file cannot be read")
        files[name] = path
    return inputs, files


class Command(BaseCommand):
    help = "Validate, deploy or run flows from YAML files."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        validate = sub.add_parser("validate", help="Check flow files without storing them.")
        validate.add_argument("files", nargs="+")
        deploy = sub.add_parser("deploy", help="Store flow files (a changed flow becomes a new revision).")
        deploy.add_argument("paths", nargs="+", help="flow files or folders of them")
        run = sub.add_parser("run", help="Deploy a flow file and run it to the end in this process.")
        run.add_argument("file")
        run.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                         help="an input; NAME=@PATH uploads a local file for a FILE input")
        run.add_argument("--json", action="store_true", help="print one JSON object")
        run.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the end")
        run.add_argument("--schedule-date", default=None, metavar="DATE-TIME",
                         help="start at this ISO-8601 date-time (e.g. 2024-01-31T12:00:00Z) rather than now")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action != "validate":
            ensure_schema()
        if action == "validate":
            self.validate(flow_files(options["files"]))
        elif action == "deploy":
            self.deploy(flow_files(options["paths"]))
        else:
            self.run(Path(options["file"]), parse_inputs(options["input"]), options["json"], options["timeout"],
                     schedule_date(options["schedule_date"]))

    def validate(self, files: list[Path]) -> None:
        from orchestrator.repository import validate

        failed = 0
        for path in files:
            try:
                definition = validate(read_source(path))
            except (FlowSyntaxError, FlowValidationError) as error:
                failed += 1
                self.stderr.write(f"{path}: invalid\n{_indent(str(error))}")
            else:
                self.stdout.write(f"{path}: valid ({definition.namespace}.{definition.id})")
        if failed:
            raise CommandError(f"{failed} of {len(files)} flow(s) invalid")

    def deploy(self, files: list[Path]) -> None:
        from orchestrator.repository import deploy

        failed = 0
        for path in files:
            try:
                flow, changed = deploy(read_source(path))
            except (FlowSyntaxError, FlowValidationError) as error:
                failed += 1
                self.stderr.write(f"{path}: refused\n{_indent(str(error))}")
                continue
            verb = "deployed" if changed else "unchanged"
            self.stdout.write(f"{path}: {verb} {flow.namespace}.{flow.flow_id} revision {flow.revision}")
        if failed:
            raise CommandError(f"{failed} of {len(files)} flow(s) refused")

    def run(self, path: Path, inputs: dict[str, str], as_json: bool, timeout: float,
            scheduled: datetime | None) -> None:
        from orchestrator.kestra_json import execution_json, log_json
        from orchestrator.local import LocalRuntime
        from orchestrator.models import LogEntry
        from orchestrator.inputs import unknown_inputs
        from orchestrator.repository import (
            ExecutionBlocked, FlowDisabled, InvalidInputs, create_execution, deploy, flow_graph,
        )

        runtime = LocalRuntime()
        try:
            flow, _ = deploy(read_source(path))
        except (FlowSyntaxError, FlowValidationError) as error:
            raise CommandError(f"{path}: refused\n{_indent(str(error))}")
        declared = flow_graph(flow.namespace, flow.flow_id, flow.revision).data.get("inputs")
        for name in unknown_inputs(declared, inputs):
            self.stderr.write(f"--input {name}: the flow declares no input {name!r}; ignored")
        inputs, files = local_files(declared, inputs)
        try:
            execution = create_execution(flow.namespace, flow.flow_id, inputs=inputs, files=files,
                                         schedule_date=scheduled)
        except InvalidInputs as error:
            raise CommandError(f"{path}: invalid inputs, no execution created\n{_indent(str(error))}")
        except (FlowDisabled, ExecutionBlocked) as error:
            raise CommandError(f"{path}: {error}")
        except StorageError as error:  # the upload of a FILE input
            raise CommandError(f"{path}: no execution created: {error}")
        try:
            execution = runtime.wait_for(execution.id, timeout)
        except TimeoutError as error:
            raise CommandError(str(error))
        runs = list(execution.task_runs.order_by("seq"))
        logs = list(LogEntry.objects.filter(execution_id=execution.id).order_by("timestamp"))
        if as_json:
            document = execution_json(execution, runs)
            document["logs"] = [log_json(entry) for entry in logs]
            self.stdout.write(json.dumps(document, default=str))
        else:
            self._print(execution, runs, logs)
        if execution.state not in {"SUCCESS", "WARNING"}:
            sys.exit(1)

    def _print(self, execution, runs, logs) -> None:
        write = self.stdout.write
        write(f"Execution {execution.id} of {execution.namespace}.{execution.flow_id} "
              f"(revision {execution.flow_revision}): {execution.state}")
        for run in runs:
            outputs = f"  outputs: {json.dumps(run.outputs)}" if run.outputs else ""
            value = f"[{run.value}]" if run.value is not None else ""
            write(f"  {run.task_id}{value}: {run.state}{outputs}")
        if execution.outputs:
            write(f"Outputs: {json.dumps(execution.outputs)}")
        if logs:
            write("Logs:")
            for entry in logs:
                write(f"  {entry.timestamp:%H:%M:%S.%f}"[:-3] + f" {entry.level:<5} [{entry.task_id or '-'}] "
                      f"{entry.message}")


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())

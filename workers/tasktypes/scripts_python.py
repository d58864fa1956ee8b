"""Kestra's Python script tasks: `io.kestra.plugin.scripts.python.Commands` (shell commands that
run Python) and `io.kestra.plugin.scripts.python.Script` (an inline Python script).

`python` is the worker's own interpreter (first on PATH), unless `beforeCommands` activate a
virtualenv: then an inline script runs with the virtualenv's, as in Kestra. The `kestra` module
(workers/sdk/kestra.py) is on PYTHONPATH, so `from kestra import Kestra` works without
installing anything.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from pydantic import Field

from workers.context import RunContext, TaskFailure
from workers.ids import new_id
from workers.registry import TaskType, register
from workers.tasktypes.scripts_common import (
    RAW_PROPERTIES, Prepared, ScriptProperties, Workspace, env_value, run_script,
)

COMMANDS = "io.kestra.plugin.scripts.python.Commands"
SCRIPT = "io.kestra.plugin.scripts.python.Script"
SDK_DIR = str(Path(__file__).resolve().parent.parent / "sdk")
# Expressions render booleans and null as JSON does; these names let `x = {{ flag }}` run (Kestra
# puts the same line before inline scripts).
PRELUDE = "true, false, null = True, False, None\n"


class PythonProperties(ScriptProperties):
    dependencies: list[str] | None = Field(
        None, description="Not installed by the Process task runner: install them in `beforeCommands`.")
    pythonVersion: str | None = Field(None, description="Ignored: the worker's Python runs the script.")
    dependencyCacheEnabled: bool | None = Field(None, description="Ignored.")
    packageManager: str | None = Field(None, description="Ignored.")


class PythonCommandsProperties(PythonProperties):
    commands: list[str] | str = Field(description="Shell commands, such as `python main.py`, run one after the other.")


class PythonScriptProperties(PythonProperties):
    script: str = Field(description="The Python script's text.")


def python_env() -> dict[str, str]:
    return {"PYTHONPATH": SDK_DIR, "PYTHONUNBUFFERED": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _refuse_dependencies(props: PythonProperties) -> None:
    if props.dependencies:
        raise TaskFailure("dependencies: the Process task runner does not install packages; install them in "
                          "beforeCommands (for example `python -m venv .venv && . .venv/bin/activate && "
                          "pip install …`)")


def run_commands(props: PythonCommandsProperties, ctx: RunContext) -> dict:
    _refuse_dependencies(props)

    def prepare(space: Workspace) -> Prepared:
        commands = space.commands(ctx, props.commands, "commands")
        return Prepared(commands, python_env(),
                        path_prefix=os.path.dirname(sys.executable))

    return run_script(props, ctx, prepare)


def run_python_script(props: PythonScriptProperties, ctx: RunContext) -> dict:
    _refuse_dependencies(props)

    def prepare(space: Workspace) -> Prepared:
        # In the working directory, so that the script imports the modules given as inputFiles.
        name = f"script_{new_id()[:12]}.py"
        script = space.localize(ctx, env_value(ctx.render(props.script)))
        (space.work / name).write_text(PRELUDE + script, encoding="utf-8")
        path = shlex.quote(str(space.work / name))
        command = (f'if [ -n "$VIRTUAL_ENV" ]; then "$VIRTUAL_ENV/bin/python" {path}; '
                   f"else {shlex.quote(sys.executable)} {path}; fi")
        return Prepared([command], python_env(), path_prefix=os.path.dirname(sys.executable),
                        hidden=frozenset({name}))

    return run_script(props, ctx, prepare)


register(TaskType(name=COMMANDS, properties=PythonCommandsProperties, kind="runnable", run=run_commands,
                  raw_properties=RAW_PROPERTIES, title="Run Python through shell commands"))
register(TaskType(name=SCRIPT, properties=PythonScriptProperties, kind="runnable", run=run_python_script,
                  raw_properties=RAW_PROPERTIES, title="Run an inline Python script"))

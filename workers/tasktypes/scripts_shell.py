"""Kestra's shell script tasks: `io.kestra.plugin.scripts.shell.Commands` (a list of commands)
and `io.kestra.plugin.scripts.shell.Script` (one inline script), run by the interpreter
(`/bin/sh -c` unless told otherwise) on the Process task runner."""

from __future__ import annotations

from pydantic import Field

from workers.context import RunContext
from workers.registry import TaskType, register
from workers.tasktypes.scripts_common import (
    RAW_PROPERTIES, Prepared, ScriptProperties, Workspace, env_value, run_script,
)

COMMANDS = "io.kestra.plugin.scripts.shell.Commands"
SCRIPT = "io.kestra.plugin.scripts.shell.Script"


class ShellCommandsProperties(ScriptProperties):
    commands: list[str] | str = Field(description="The commands to run, one after the other, in one shell.")


class ShellScriptProperties(ScriptProperties):
    script: str = Field(description="The script's text, given to the interpreter as it is.")


def run_commands(props: ShellCommandsProperties, ctx: RunContext) -> dict:
    return run_script(props, ctx, lambda space: Prepared(space.commands(ctx, props.commands, "commands"), {}))


def run_shell_script(props: ShellScriptProperties, ctx: RunContext) -> dict:
    def prepare(space: Workspace) -> Prepared:
        return Prepared([space.localize(ctx, env_value(ctx.render(props.script)))], {})

    return run_script(props, ctx, prepare)


register(TaskType(name=COMMANDS, properties=ShellCommandsProperties, kind="runnable", run=run_commands,
                  raw_properties=RAW_PROPERTIES, title="Run shell commands"))
register(TaskType(name=SCRIPT, properties=ShellScriptProperties, kind="runnable", run=run_shell_script,
                  raw_properties=RAW_PROPERTIES, title="Run an inline shell script"))

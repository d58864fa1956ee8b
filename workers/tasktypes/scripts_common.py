"""What Kestra's script tasks share (`io.kestra.plugin.scripts.*`): their common properties and
one run on the `Process` task runner.

A run gets a directory of its own, removed afterwards:

    harrier-task-XXXX/
        work/    the working directory: `{{ workingDir }}`, $WORKING_DIR, the process's cwd,
                 where `inputFiles` are written and `outputFiles` globs are matched
        output/  `{{ outputDir }}`, $OUTPUT_DIR: every file left there is an output file
        home/    $HOME        tmp/  $TMPDIR, $TMP, $TEMP
        downloads/  local copies of the `kestra:///…` files the commands name

HOME and the temporary directory sit beside the working directory rather than in it, so that a
glob such as `*` or `**/*.csv` never collects a tool's cache or temporary files. Inside a
WorkingDirectory, `work/` is the directory its tasks share (kept when the task ends); the rest is
the task's own.

The process sees a clean environment (`build_env`), not the worker's: a worker holds secrets
(SECRET_*, the database and broker URLs) that a script must only get when a flow passes them on
through `env`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workers.context import RunContext, TaskFailure
from workers.process import ProcessStartError, run_process
from workers.registry import TaskBase
from workers.tasktypes.scripts_protocol import parse_line

PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A plain output line is logged up to this many characters (outputs lines may be longer).
MAX_LOG_CHARS = 64 * 1024
# Ship the pending log lines as soon as they hold this many characters, whatever the interval.
FLUSH_CHARS = 512 * 1024
# The properties rendered by the task itself, once `workingDir` and `outputDir` exist.
RAW_PROPERTIES = frozenset({"beforeCommands", "commands", "script", "env", "inputFiles", "outputFiles"})


class TaskRunnerProperties(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description=f"The task runner; only `{PROCESS_RUNNER}` is available.")

    @field_validator("type")
    @classmethod
    def _only_process(cls, value: str) -> str:
        if value != PROCESS_RUNNER:
            raise ValueError(f"only the {PROCESS_RUNNER} task runner is available: Harrier runs scripts as "
                             "processes on the worker (no container runtime)")
        return value


class ScriptProperties(TaskBase):
    """Properties of every script task. Lists and maps may also be given as one expression."""

    beforeCommands: list[str] | str | None = Field(
        None, description="Commands run before the main ones, in the same shell (e.g. to set up a virtualenv).")
    env: dict[str, Any] | str | None = Field(
        None, description="Environment variables of the process, added to the clean base environment.")
    inputFiles: dict[str, Any] | str | None = Field(
        None, description="Files to create in the working directory: relative path → content, or a "
                          "`kestra://` URI read from internal storage.")
    outputFiles: list[str] | str | None = Field(
        None, description="Globs, relative to the working directory, of files to keep as `outputFiles`.")
    namespaceFiles: dict[str, Any] | None = Field(
        None, description="Namespace files to copy into the working directory (needs namespace file storage).")
    interpreter: list[str] = Field(
        default_factory=lambda: ["/bin/sh", "-c"], min_length=1,
        description="The interpreter, given the commands joined by new lines as its last argument.")
    failFast: bool = Field(
        True, description="Stop at the first command that fails (`set -e` before the commands). Turn it off "
                          "for an interpreter that is not a POSIX shell.")
    warningOnStdErr: bool | None = Field(
        None, description="Deprecated and without effect, as in Kestra since 0.23: the exit code alone "
                          "decides between SUCCESS and FAILED.")
    taskRunner: TaskRunnerProperties | None = Field(None, description=f"Only `{PROCESS_RUNNER}` (the default).")
    runner: Literal["PROCESS"] | None = Field(None, description="Deprecated: use `taskRunner`.")
    containerImage: str | None = Field(None, description="Accepted and ignored by the Process task runner.")
    docker: dict[str, Any] | None = Field(None, description="Deprecated Docker options; ignored.")
    outputDirectory: bool | None = Field(
        None, description="Deprecated: `{{ outputDir }}` always exists.")
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] = Field("AUTO", description="Only LINUX (or AUTO) runs.")


@dataclass(frozen=True)
class Workspace:
    root: Path
    work: Path
    output: Path
    home: Path
    tmp: Path

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @classmethod
    def create(cls, shared: Path | None = None) -> Workspace:
        """A task's directories; `shared` is a WorkingDirectory's, used as the working directory."""
        root = Path(tempfile.mkdtemp(prefix="harrier-task-", dir=os.environ.get("HARRIER_SCRIPTS_DIR") or None))
        space = cls(root=root, work=shared or root / "work", output=root / "output", home=root / "home",
                    tmp=root / "tmp")
        for path in (space.output, space.home, space.tmp, space.downloads):
            path.mkdir()
        if shared is None:
            space.work.mkdir()
        return space

    def localize(self, ctx: RunContext, text: str) -> str:
        """A rendered command or script, with the storage files it names copied here."""
        from workers.tasktypes.scripts_files import localize_uris

        return localize_uris(ctx, text, self.downloads)

    def commands(self, ctx: RunContext, value: Any, name: str) -> list[str]:
        """A list-of-commands property, rendered and localized."""
        return [self.localize(ctx, command) for command in as_list(ctx.render(value), name)]

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def env_value(value: Any) -> str:
    """A property value as the text of an environment variable (booleans as Kestra writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def build_env(user_env: Mapping[str, Any], space: Workspace, *, extra: Mapping[str, str] | None = None,
              base: Mapping[str, str] | None = None, path_prefix: str | None = None) -> dict[str, str]:
    """The process's whole environment: the worker's PATH and LANG only, HOME and the temporary
    directory in the task's directory, Kestra's WORKING_DIR and OUTPUT_DIR, `extra` (what a task
    type needs), then the flow's `env`, which wins — except that the SDK stays on PYTHONPATH."""
    base = os.environ if base is None else base
    path = base.get("PATH") or DEFAULT_PATH
    env = {
        "PATH": f"{path_prefix}:{path}" if path_prefix else path,
        "LANG": base.get("LANG") or "C.UTF-8",
        "HOME": str(space.home),
        "TMPDIR": str(space.tmp), "TMP": str(space.tmp), "TEMP": str(space.tmp),
        "WORKING_DIR": str(space.work),
        "OUTPUT_DIR": str(space.output),
        **(extra or {}),
    }
    for name, value in user_env.items():
        name = str(name)
        if not name or "=" in name or "\0" in name:
            raise TaskFailure(f"env: {name!r} is not a valid environment variable name")
        text = env_value(value)
        if "\0" in text:
            raise TaskFailure(f"env: the value of {name} contains a NUL character")
        if name == "PYTHONPATH" and env.get("PYTHONPATH"):
            text = f"{text}:{env['PYTHONPATH']}" if text else env["PYTHONPATH"]
        env[name] = text
    return env


def as_list(value: Any, name: str) -> list[str]:
    """A rendered list property: a list, a JSON array in one string, or one string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return [value]
        else:
            return [value]
    if not isinstance(value, list):
        raise TaskFailure(f"{name}: expected a list of strings")
    return [env_value(item) for item in value]


def as_map(value: Any, name: str) -> dict[str, Any]:
    """A rendered map property: a map, or a JSON object in one string."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TaskFailure(f"{name}: expected a map, or a JSON object") from None
    if not isinstance(value, dict):
        raise TaskFailure(f"{name}: expected a map")
    return value


def relative_path(name: str, what: str) -> PurePosixPath:
    """A path that stays inside the working directory, or a failure naming `what`."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise TaskFailure(f"{what}: {name!r} must be a relative path inside the working directory")
    return path


@dataclass
class Prepared:
    """What a task type hands to `run_script`: the command and what its process needs."""

    commands: list[str]  # joined by new lines, after `beforeCommands`
    extra_env: dict[str, str]
    path_prefix: str | None = None
    hidden: frozenset[str] = frozenset()  # files in the working directory that are not outputs


def run_script(props: ScriptProperties, ctx: RunContext, prepare: Callable[[Workspace], Prepared]) -> dict:
    """One run of a script task: its directory, files, process, outputs."""
    from workers.tasktypes import scripts_files

    if props.targetOS == "WINDOWS":
        raise TaskFailure("targetOS WINDOWS: this worker runs scripts on Linux")
    space = Workspace.create(ctx.directory)
    prepared: Prepared | None = None
    try:
        # Kestra's variables of script tasks, for the properties rendered from here on.
        ctx.variables["workingDir"] = str(space.work)
        ctx.variables["outputDir"] = str(space.output)
        if props.namespaceFiles and props.namespaceFiles.get("enabled", True) is not False:
            scripts_files.copy_namespace_files(ctx, props.namespaceFiles, space.work)
        for name, content in as_map(ctx.render(props.inputFiles), "inputFiles").items():
            if content is not None:
                scripts_files.write_input_file(ctx, space.work, relative_path(str(name), "inputFiles"),
                                               env_value(content))
        prepared = prepare(space)
        before = space.commands(ctx, props.beforeCommands, "beforeCommands")
        lines = (["set -e"] if props.failFast else []) + before + prepared.commands
        argv = [*props.interpreter, "\n".join(lines)]
        env = build_env(as_map(ctx.render(props.env), "env"), space, extra=prepared.extra_env,
                        path_prefix=prepared.path_prefix)
        output = _Collector(ctx)
        try:
            result = run_process(argv, cwd=str(space.work), env=env, on_line=output.line,
                                 stop=ctx.stop_requested, tick=ctx.flush_logs)
        except ProcessStartError as error:
            raise TaskFailure(f"Command could not start: {error}") from None
        if result.pipes_left_open:
            ctx.log("WARN", "A process left the task's process group and kept its output open; "
                            "what it wrote afterwards was not read")
        if result.exit_code != 0:
            ended = f" (ended by signal {result.signal})" if result.signal else ""
            raise TaskFailure(f"Command failed with exit code {result.exit_code}{ended}")
        globs = [str(relative_path(glob, "outputFiles")) for glob in
                 as_list(ctx.render(props.outputFiles), "outputFiles")]
        files = scripts_files.collect_output_files(space, globs, prepared.hidden)
        outputs: dict[str, Any] = {
            "vars": output.vars,
            "exitCode": result.exit_code,
            "outputFiles": scripts_files.store_output_files(ctx, files),
        }
        if output.metrics:
            # Kept with the outputs until the repository stores metrics of their own.
            outputs["metrics"] = output.metrics
        return outputs
    finally:
        if ctx.directory is not None and prepared is not None:
            for name in prepared.hidden:  # the task's own files leave the shared directory with it
                (space.work / name).unlink(missing_ok=True)
        space.remove()


class _Collector:
    """Takes every line of the process (from two reader threads): logs it, or gathers what an
    outputs line carries."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._pending = 0
        self.vars: dict[str, Any] = {}
        self.metrics: list[dict[str, Any]] = []

    def line(self, line: str, is_stderr: bool) -> None:
        message = parse_line(line)
        if message is None:
            if len(line) > MAX_LOG_CHARS:
                line = line[:MAX_LOG_CHARS] + f" [… cut at {MAX_LOG_CHARS} characters]"
            # Kestra logs standard error at ERROR (since 0.20); it does not change the task's state.
            self._log("ERROR" if is_stderr else "INFO", line)
            return
        with self._lock:
            self.vars.update(message.outputs)
            self.metrics.extend(message.metrics)
        for level, text in message.logs:
            self._log(level, text)
        for problem in message.problems:
            self._log("WARN", problem)

    def _log(self, level: str, text: str) -> None:
        self._ctx.log(level, text)
        with self._lock:
            self._pending += len(text)
            full = self._pending >= FLUSH_CHARS
            if full:
                self._pending = 0
        if full:
            self._ctx.flush_logs()

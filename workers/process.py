"""Running one operating-system process for a task: Kestra's `Process` task runner.

The process runs in a session (and so a process group) of its own, so that stopping it stops
everything it started. Its standard output and error are read concurrently, line by line, while
it runs — a process that fills one pipe while we wait on the other would otherwise hang — and
every line is handed to a callback as soon as it is complete. Lines are bounded: the rest of an
over-long line is read and dropped, never held in memory.

The caller owns the working directory, the environment and what a line means; this module knows
only processes. Pure standard library: no Django.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Callable

logger = logging.getLogger("harrier.worker")

# A line longer than this is cut: outputs lines (`::{...}::`) must fit in it.
MAX_LINE_BYTES = 1024 * 1024
# How often the caller's `tick` runs while the process does (to ship log batches).
TICK_INTERVAL = 0.5
POLL_INTERVAL = 0.05
# Between SIGTERM and SIGKILL when a process is asked to stop.
KILL_GRACE_SECONDS = 5.0
# How long to wait for the pipes to close once the process group is gone: only a process that
# left the group (setsid, a daemon) can still hold them open.
PIPE_DRAIN_SECONDS = 5.0

LineHandler = Callable[[str, bool], None]  # (line without its end, from stderr?)


class ProcessStartError(Exception):
    """The command could not be started at all (no such interpreter, arguments too long…)."""


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int  # the exit status, or 128 + N when signal N ended the process (as shells say)
    signal: int | None  # the signal that ended it, if one did
    stopped: bool  # ended because `stop` was set
    pipes_left_open: bool  # a process outside the group still held stdout/stderr at the end


def run_process(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    on_line: LineHandler,
    stop: threading.Event,
    tick: Callable[[], None] | None = None,
    kill_grace: float = KILL_GRACE_SECONDS,
) -> ProcessResult:
    """Run `argv` to its end, or until `stop` is set (then SIGTERM the group, SIGKILL after
    `kill_grace` seconds). Whatever the group still holds when the leader ends is killed too:
    nothing a task started outlives it."""
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True,
        )
    except OSError as error:
        if error.errno == errno.E2BIG:
            raise ProcessStartError("the command is too long to pass as an argument (E2BIG)") from None
        raise ProcessStartError(f"cannot start {argv[0]!r}: {error.strerror or error}") from None

    readers = [
        threading.Thread(target=_pump, args=(process.stdout, False, on_line), name=f"harrier-stdout-{process.pid}",
                         daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, True, on_line), name=f"harrier-stderr-{process.pid}",
                         daemon=True),
    ]
    for reader in readers:
        reader.start()

    stopped = False
    next_tick = time.monotonic() + TICK_INTERVAL
    try:
        while not _has_exited(process.pid):
            if stop.wait(POLL_INTERVAL):
                stopped = True
                _terminate(process.pid, kill_grace)
                break
            if tick is not None and time.monotonic() >= next_tick:
                try:
                    tick()
                except Exception:  # shipping logs failed (the broker restarts?): the process goes on
                    logger.exception("process %s: the periodic tick failed", process.pid)
                next_tick = time.monotonic() + TICK_INTERVAL
    finally:
        # The leader is a zombie (or gone) here and not yet reaped, so its group id cannot have
        # been reused: killing the group reaches only what this task started.
        _signal_group(process.pid, signal.SIGKILL)
        returncode = process.wait()

    deadline = time.monotonic() + PIPE_DRAIN_SECONDS
    for reader in readers:
        reader.join(max(0.0, deadline - time.monotonic()))
    left_open = any(reader.is_alive() for reader in readers)
    if left_open:
        logger.warning("process %s: a process outside its group keeps its output open", process.pid)

    if returncode < 0:
        return ProcessResult(128 - returncode, -returncode, stopped, left_open)
    return ProcessResult(returncode, None, stopped, left_open)


def _has_exited(pid: int) -> bool:
    """Whether the child has ended, without reaping it (WNOWAIT keeps its pid and group id)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped by someone else: it has ended all the same
        return True


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate(pid: int, grace: float) -> None:
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not _has_exited(pid):
        time.sleep(POLL_INTERVAL)
    _signal_group(pid, signal.SIGKILL)


def _pump(stream: IO[bytes], is_stderr: bool, on_line: LineHandler) -> None:
    with stream:
        for line in read_lines(stream):
            try:
                on_line(line, is_stderr)
            except Exception:  # keep draining the pipe whatever a handler does, or the child blocks
                logger.exception("handling a line of process output failed")


def read_lines(stream: IO[bytes], limit: int = MAX_LINE_BYTES):
    """Decoded lines of `stream`, each at most `limit` bytes; the rest of a longer line is read
    and dropped, and the line says how much was."""
    while True:
        raw = stream.readline(limit)
        if not raw:
            return
        if raw.endswith(b"\n"):
            yield _decode(raw)
            continue
        if len(raw) < limit:  # the last line, without an end
            yield _decode(raw)
            return
        dropped = 0
        while True:
            rest = stream.readline(limit)
            dropped += len(rest.rstrip(b"\r\n"))
            if not rest or rest.endswith(b"\n"):
                break
        yield _decode(raw) + (f" [… {dropped} more bytes cut]" if dropped else "")


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="replace")

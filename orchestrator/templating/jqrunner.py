"""Running jq programs where they cannot hurt the process that renders.

jq is a full language: ``[range(1e10)]``, ``repeat(1)`` or ``"x" * 1e9`` run inside the C
library, where no Python-level bound applies and nothing can interrupt them. The executor
renders expressions inside its decision loop, so jq runs in a helper process instead: started
on first use, kept for later calls, given no environment variables (jq's ``$ENV`` must not
reveal secrets), an address-space limit, and a deadline per program — past it the helper is
killed and the rendering fails. ``import``/``include`` (which read files) are refused.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .errors import EvaluationError
from .limits import JQ_MEMORY_BYTES, JQ_TIMEOUT_SECONDS, MAX_STRING_CHARS

_CHILD = Path(__file__).with_name("_jq_child.py")
_FILE_ACCESS = re.compile(r"\b(import|include|input_filename|get_search_list|modulemeta)\b")


class _JqHelper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._pid_owner = os.getpid()

    def forget_after_fork(self) -> None:
        """In a forked child (Celery's prefork pool): the helper and the lock belong to the parent."""
        self._lock = threading.Lock()
        self._process, self._pid_owner = None, os.getpid()

    def _start(self) -> subprocess.Popen:
        try:
            return subprocess.Popen(
                [sys.executable, "-I", "-B", str(_CHILD), str(JQ_MEMORY_BYTES)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env={}, cwd="/", close_fds=True,
            )
        except OSError as exc:
            raise EvaluationError(f"The jq filter is unavailable: {exc}") from None

    def _process_for_call(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        return self._process

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and self._pid_owner == os.getpid():
            process.kill()
            process.wait()

    def run(self, program: str, input_json: str) -> list[Any]:
        request = (json.dumps({"program": program, "input": input_json}) + "\n").encode("utf-8")
        with self._lock:
            process = self._process_for_call()
            try:
                process.stdin.write(request)
                process.stdin.flush()
                line = self._read_line(process, time.monotonic() + JQ_TIMEOUT_SECONDS)
            except (BrokenPipeError, OSError):
                self.stop()
                raise EvaluationError("The jq helper stopped unexpectedly") from None
            except EvaluationError:
                self.stop()
                raise
        reply = json.loads(line)
        if "error" in reply:
            raise EvaluationError(f"Failed to resolve JQ expression '{program}': {reply['error']}")
        return reply["ok"]

    @staticmethod
    def _read_line(process: subprocess.Popen, deadline: float) -> bytes:
        descriptor = process.stdout.fileno()
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EvaluationError(f"The jq program takes longer than {JQ_TIMEOUT_SECONDS:g} seconds")
            ready, _, _ = select.select([descriptor], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(descriptor, 1 << 16)
            if not chunk:
                raise EvaluationError("The jq program failed: it ran out of memory or stopped the helper")
            chunks.append(chunk)
            size += len(chunk)
            if size > 2 * MAX_STRING_CHARS:
                raise EvaluationError(f"The jq result exceeds {MAX_STRING_CHARS} characters")
            if chunk.endswith(b"\n"):
                return b"".join(chunks)


_HELPER = _JqHelper()
atexit.register(_HELPER.stop)
os.register_at_fork(after_in_child=_HELPER.forget_after_fork)


def run_jq(program: str, input_json: str) -> list[Any]:
    """The outputs of ``program`` applied to the JSON text ``input_json``."""
    if _FILE_ACCESS.search(program):
        raise EvaluationError("jq programs may not import modules or read files")
    return _HELPER.run(program, input_json)

"""Send outputs, metrics and logs from a Python script task to Harrier.

Script tasks put this directory on PYTHONPATH, so a script writes, as it would on Kestra:

    from kestra import Kestra

    Kestra.outputs({"rows": 42})                  # -> {{ outputs.<task>.vars.rows }}
    Kestra.counter("rows", 42, {"table": "orders"})
    Kestra.timer("load", 1.5)                      # seconds, or a callable to time
    Kestra.logger().info("loaded")                 # logged at INFO on the task run

Each call prints one line `::{json}::` on standard output, which the worker reads instead of
logging it. Standard library only: this file runs in the script's interpreter, not the worker.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from datetime import date, datetime, time as time_of_day
from typing import Any, Callable, Mapping

__all__ = ["Kestra"]

_LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN", logging.ERROR: "ERROR",
           logging.CRITICAL: "ERROR"}


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time_of_day)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON: pass text, numbers, lists or maps")


class _LineHandler(logging.Handler):
    """Writes each record as a `logs` line, at the record's level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = _LEVELS.get(record.levelno) or ("TRACE" if record.levelno < logging.DEBUG else "INFO")
            Kestra._send({"logs": [{"level": level, "message": self.format(record)}]})
        except Exception:
            self.handleError(record)


class Kestra:
    _logger: logging.Logger | None = None

    @staticmethod
    def format(message: Mapping[str, Any]) -> str:
        # ensure_ascii keeps the line on one line whatever the text holds (U+2028, NEL…).
        return "::" + json.dumps(message, default=_default, ensure_ascii=True, separators=(",", ":")) + "::"

    @staticmethod
    def _send(message: Mapping[str, Any]) -> None:
        sys.stdout.write(Kestra.format(message) + "\n")
        sys.stdout.flush()

    @staticmethod
    def outputs(values: Mapping[str, Any]) -> None:
        """Merge `values` into the task's `vars` output."""
        if not isinstance(values, Mapping):
            raise TypeError("Kestra.outputs() takes a dict of name -> value")
        if values:
            Kestra._send({"outputs": dict(values)})

    @staticmethod
    def _metric(name: str, kind: str, value: float, tags: Mapping[str, Any] | None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a metric needs a non-empty name")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"metric {name!r}: the value must be a finite number")
        Kestra._send({"metrics": [{"name": name, "type": kind, "value": value,
                                   "tags": {str(k): str(v) for k, v in (tags or {}).items()}}]})

    @staticmethod
    def counter(name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        Kestra._metric(name, "counter", value, tags)

    @staticmethod
    def gauge(name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        Kestra._metric(name, "gauge", value, tags)

    @staticmethod
    def timer(name: str, duration: float | Callable[[], Any], tags: Mapping[str, Any] | None = None) -> Any:
        """Record `duration` seconds; given a callable, call it, record how long it took and
        return what it returned."""
        if callable(duration):
            start = time.perf_counter()
            try:
                return duration()
            finally:
                Kestra._metric(name, "timer", time.perf_counter() - start, tags)
        Kestra._metric(name, "timer", duration, tags)
        return None

    @staticmethod
    def logger() -> logging.Logger:
        """A logger whose records are logged on the task run at their own level."""
        if Kestra._logger is None:
            logger = logging.getLogger("kestra")
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            handler = _LineHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
            Kestra._logger = logger
        return Kestra._logger

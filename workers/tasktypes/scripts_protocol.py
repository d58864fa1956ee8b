"""What a script says to Harrier through its output: Kestra's `::{...}::` lines.

A line of standard output (or error) that is exactly `::` + a JSON object + `::` is not logged
as text: its `outputs` are merged into the task's `vars` output, its `metrics` are recorded and
its `logs` are logged at their own level. Any other line is plain output. The `kestra` package
scripts import (workers/sdk/kestra.py) writes these lines. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

LINE = re.compile(r"^::(\{.*\})::$", re.DOTALL)
METRIC_TYPES = ("counter", "timer", "gauge")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
_QUOTE_CHARS = 200


@dataclass
class ScriptMessage:
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (level, message)
    problems: list[str] = field(default_factory=list)  # what was wrong with the line, to log as WARN


def parse_line(line: str) -> ScriptMessage | None:
    """The message a line carries, or None when it is plain output to log as it is."""
    match = LINE.match(line.rstrip())
    if match is None:
        return None
    try:
        body = json.loads(match.group(1))
    except ValueError as error:
        return ScriptMessage(problems=[f"Invalid outputs line ({error}): {_quote(line)}"])
    message = ScriptMessage()
    unknown = sorted(set(body) - {"outputs", "metrics", "logs"})
    if unknown:
        message.problems.append(f"Unknown keys {unknown} in outputs line: {_quote(line)}")
    outputs = body.get("outputs")
    if isinstance(outputs, dict):
        message.outputs = outputs
    elif outputs is not None:
        message.problems.append(f"`outputs` must be an object, got {type(outputs).__name__}")
    for index, item in enumerate(_as_list(body.get("metrics"), "metrics", message)):
        metric = _metric(item)
        if isinstance(metric, str):
            message.problems.append(f"metrics[{index}]: {metric}")
        else:
            message.metrics.append(metric)
    for index, item in enumerate(_as_list(body.get("logs"), "logs", message)):
        if not isinstance(item, dict) or "message" not in item:
            message.problems.append(f"logs[{index}]: expected {{level, message}}")
            continue
        level = str(item.get("level") or "INFO").upper()
        level = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR"}.get(level, level)
        text = item["message"] if isinstance(item["message"], str) else json.dumps(item["message"])
        message.logs.append((level if level in LOG_LEVELS else "INFO", text))
    return message


def _as_list(value: Any, name: str, message: ScriptMessage) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        message.problems.append(f"`{name}` must be a list, got {type(value).__name__}")
        return []
    return value


def _metric(item: Any) -> dict[str, Any] | str:
    """A valid metric as {name, type, value, tags}, or what is wrong with it."""
    if not isinstance(item, dict):
        return "expected {name, type, value, tags}"
    name, kind, value = item.get("name"), str(item.get("type") or "").lower(), item.get("value")
    if not isinstance(name, str) or not name:
        return "a metric needs a non-empty `name`"
    if kind not in METRIC_TYPES:
        return f"metric {name!r}: `type` must be one of {', '.join(METRIC_TYPES)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"metric {name!r}: `value` must be a finite number"
    tags = item.get("tags") or {}
    if not isinstance(tags, dict):
        return f"metric {name!r}: `tags` must be an object"
    return {"name": name, "type": kind, "value": value,
            "tags": {str(key): tag if isinstance(tag, str) else json.dumps(tag) for key, tag in tags.items()}}


def _quote(line: str) -> str:
    return line if len(line) <= _QUOTE_CHARS else line[:_QUOTE_CHARS] + "…"

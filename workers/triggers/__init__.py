"""How a worker evaluates each polling trigger type, one module per family (workers/polling.py
runs them). An evaluator gets the trigger's rendered, typed properties and the run context, and
returns an `Evaluation`; it never touches the repository."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Evaluation:
    fired: bool
    variables: dict[str, Any] = field(default_factory=dict)  # the execution's `trigger` variables
    state: dict[str, Any] | None = None  # what the trigger remembers for the next evaluation
    error: str | None = None  # a partial failure: what fired is still reported
    started: str | None = None  # when the call to the outside world began (ISO-8601)

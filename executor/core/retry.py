"""Retries of a failed attempt: when the next attempt starts, or that there is none.

A task's own `retry` applies first; without one, that of the nearest flowable holding it; without
any, the flow's `retry` (behavior RETRY_FAILED_TASK, the default) applies to each of its tasks. Kestra's three policies:

- `constant`: every `interval`;
- `exponential`: `interval`, then × `delayFactor` (default 2) after each failure, at most
  `maxInterval`;
- `random`: a uniform draw between `minInterval` and `maxInterval`.

`maxAttempt` counts every attempt, the first included; `maxDuration` bounds the time from the
start of the first attempt to the start of the next one. A policy with neither retries until an
attempt succeeds, as in Kestra. Pure: the caller gives the clock and the random draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from orchestrator.flowlang.types import parse_duration

DEFAULT_DELAY_FACTOR = 2.0
CREATE_NEW_EXECUTION = "CREATE_NEW_EXECUTION"
_LONGEST_WAIT = 10 ** 9  # seconds: about 31 years, well inside what a timedelta holds


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    type: str
    interval: timedelta
    max_interval: timedelta | None = None
    min_interval: timedelta | None = None
    delay_factor: float = DEFAULT_DELAY_FACTOR
    max_attempt: int | None = None
    max_duration: timedelta | None = None
    warning_on_retry: bool = False

    @classmethod
    def of(cls, definition: Any) -> "RetryPolicy | None":
        """The policy a `retry` property describes; None when it is absent or not usable (an
        unrendered expression, which validation lets through, cannot be relied upon)."""
        if not isinstance(definition, Mapping):
            return None
        kind = definition.get("type")
        interval = parse_duration(definition.get("interval"))
        min_interval = parse_duration(definition.get("minInterval"))
        max_interval = parse_duration(definition.get("maxInterval"))
        if kind == "random":
            if min_interval is None or max_interval is None:
                return None
            interval = min_interval
        elif kind not in ("constant", "exponential") or interval is None:
            return None
        max_attempt = definition.get("maxAttempt")
        factor = definition.get("delayFactor")
        return cls(
            type=kind, interval=interval, max_interval=max_interval, min_interval=min_interval,
            delay_factor=float(factor) if isinstance(factor, (int, float)) and not isinstance(factor, bool)
            else DEFAULT_DELAY_FACTOR,
            max_attempt=max_attempt if isinstance(max_attempt, int) and not isinstance(max_attempt, bool) else None,
            max_duration=parse_duration(definition.get("maxDuration")),
            warning_on_retry=definition.get("warningOnRetry") is True,
        )

    def delay(self, failed_attempts: int, draw: Callable[[], float]) -> timedelta:
        """The wait before the next attempt, after `failed_attempts` failures (1 or more)."""
        if self.type == "constant":
            return self.interval
        if self.type == "exponential":
            try:
                seconds = self.interval.total_seconds() * self.delay_factor ** max(failed_attempts - 1, 0)
            except OverflowError:  # thousands of failures: as long as a wait can be
                seconds = _LONGEST_WAIT
            wait = timedelta(seconds=min(seconds, _LONGEST_WAIT))
            return min(wait, self.max_interval) if self.max_interval is not None else wait
        low, high = self.min_interval or self.interval, self.max_interval or self.interval
        return low + (high - low) * draw()

    def next_attempt_at(self, failed_attempts: int, first_start: datetime, now: datetime,
                        draw: Callable[[], float]) -> datetime | None:
        """When the next attempt starts, or None when the policy allows no more."""
        if self.max_attempt is not None and failed_attempts >= self.max_attempt:
            return None
        at = now + self.delay(failed_attempts, draw)
        if self.max_duration is not None and at - first_start > self.max_duration:
            return None
        return at


def task_policy(task: Mapping[str, Any], flow: Mapping[str, Any],
                holders: Iterable[Mapping[str, Any]] = ()) -> RetryPolicy | None:
    """The policy that retries a failed attempt of this task: its own, else that of the nearest
    flowable holding it (`holders`, nearest first) that has one, else the flow's when the flow
    retries failed tasks (not when it creates new executions)."""
    for definition in (task, *holders):
        own = definition.get("retry")
        if own is not None:
            return RetryPolicy.of(own)
    flow_retry = flow.get("retry")
    if isinstance(flow_retry, Mapping) and flow_retry.get("behavior") != CREATE_NEW_EXECUTION:
        return RetryPolicy.of(flow_retry)
    return None

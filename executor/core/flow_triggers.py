"""Flow triggers, the pure part: does a listening flow's `io.kestra.plugin.core.trigger.Flow`
trigger fire for an execution that has just changed state? No Django: the shell
(executor/flow_triggers.py) loads the rows, renders expressions through the `truth` callable it
passes in, and stores the precondition progress these functions return.

Two kinds of conditions:
- plain ones (`ExecutionStatus`, `ExecutionFlow`, `ExecutionNamespace`, `Expression`,
  `ExecutionLabels`, `ExecutionOutputs`), which the one execution must meet;
- windowed ones, `preconditions` and the older `MultipleCondition`: a set of named conditions
  that executions seen within a time window must meet between them. Their progress (which names
  were met, when, by which execution) is a plain dict, advanced by `advance`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any, Callable, Mapping

from orchestrator.flowlang.types import parse_duration
from orchestrator.states import TERMINAL

FLOW_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow"})
# The states that fire a trigger without `states`: every terminal one, as in Kestra.
DEFAULT_STATES = frozenset(state.value for state in TERMINAL)
# An upstream of `preconditions.flows` counts in these states unless it names its own.
DEFAULT_UPSTREAM_STATES = ("SUCCESS",)

Truth = Callable[[str], bool]


class UnknownCondition(ValueError):
    """A condition type this evaluation does not know: the trigger does not fire."""


@dataclass(frozen=True)
class Upstream:
    """The execution whose state just changed, as conditions see it."""

    execution_id: str
    namespace: str
    flow_id: str
    flow_revision: int
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, Any] | None = None  # the flow's outputs, once ended

    def variables(self) -> dict[str, Any]:
        """`trigger.*` of the execution a Flow trigger starts."""
        variables: dict[str, Any] = {
            "executionId": self.execution_id, "namespace": self.namespace, "flowId": self.flow_id,
            "flowRevision": self.flow_revision, "state": self.state, "labels": dict(self.labels),
        }
        if self.outputs:
            variables["outputs"] = dict(self.outputs)
        return variables


def kind(condition_type: str) -> str:
    """A condition's short name whatever its spelling: `io.kestra.plugin.core.condition.ExecutionFlow`,
    the older `io.kestra.core.models.conditions.types.ExecutionFlowCondition` → `ExecutionFlow`."""
    short = condition_type.rsplit(".", 1)[-1]
    if short.endswith("Condition") and short != "MultipleCondition":
        short = short[: -len("Condition")]
    return {"Variable": "Expression"}.get(short, short)


def listened_states(trigger: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(trigger.get("states") or DEFAULT_STATES)


def stops(trigger: Mapping[str, Any], ended: str) -> bool:
    """`stopAfter`: whether an execution the trigger started, ending in `ended`, switches it off."""
    return ended in DEFAULT_STATES and ended in (trigger.get("stopAfter") or ())


def _label_map(labels: Any) -> dict[str, str]:
    if isinstance(labels, Mapping):
        return {str(k): str(v) for k, v in labels.items()}
    return {str(item["key"]): str(item["value"]) for item in labels or ()}


def condition_holds(condition: Mapping[str, Any], up: Upstream, truth: Truth) -> bool:
    """A plain condition against one execution. Raises UnknownCondition for a type it does not know."""
    name = kind(str(condition.get("type", "")))
    if name == "ExecutionStatus":
        allowed, refused = condition.get("in"), condition.get("notIn")
        return (not allowed or up.state in allowed) and (not refused or up.state not in refused)
    if name == "ExecutionFlow":
        return up.namespace == condition.get("namespace") and up.flow_id == condition.get("flowId")
    if name == "ExecutionNamespace":
        namespace = str(condition.get("namespace", ""))
        comparison = str(condition.get("comparison") or ("PREFIX" if condition.get("prefix") else "EQUALS")).upper()
        if comparison == "PREFIX":
            return up.namespace.startswith(namespace)
        if comparison == "SUFFIX":
            return up.namespace.endswith(namespace)
        return up.namespace == namespace
    if name == "ExecutionLabels":
        wanted = _label_map(condition.get("labels"))
        return all(up.labels.get(key) == value for key, value in wanted.items())
    if name == "ExecutionOutputs":
        # Kestra: false for an execution without outputs, whatever the expression.
        return bool(up.outputs) and truth(str(condition.get("expression", "")))
    if name == "Expression":
        return truth(str(condition.get("expression", "")))
    raise UnknownCondition(str(condition.get("type")))


# --- where filters (preconditions) --------------------------------------------------------------

def _filter_holds(item: Mapping[str, Any], up: Upstream, truth: Truth) -> bool:
    field_name = item.get("field")
    operator = str(item.get("type", "")).upper()
    value, values = item.get("value"), item.get("values")
    if field_name == "EXPRESSION":
        if operator in ("IS_TRUE", "EQUAL_TO") and value is not None:
            return truth(str(value))
        if operator == "IS_FALSE" and value is not None:
            return not truth(str(value))
        raise UnknownCondition(f"EXPRESSION filter of type {operator}")
    actual = {"FLOW_ID": up.flow_id, "NAMESPACE": up.namespace, "STATE": up.state}.get(str(field_name))
    if operator == "EQUAL_TO":
        return actual == value
    if operator == "NOT_EQUAL_TO":
        return actual != value
    if operator == "STARTS_WITH":
        return actual is not None and actual.startswith(str(value))
    if operator == "ENDS_WITH":
        return actual is not None and actual.endswith(str(value))
    if operator == "CONTAINS":
        return actual is not None and str(value) in actual
    if operator == "REGEX":
        return actual is not None and re.fullmatch(str(value), actual) is not None
    if operator == "IN":
        return actual in (values or ())
    if operator == "NOT_IN":
        return actual not in (values or ())
    if operator == "IS_NULL":
        return actual is None
    if operator == "IS_NOT_NULL":
        return actual is not None
    raise UnknownCondition(f"filter type {operator}")


def _where_holds(where: Mapping[str, Any], up: Upstream, truth: Truth) -> bool:
    results = (_filter_holds(item, up, truth) for item in where.get("filters") or ())
    return any(results) if str(where.get("operand") or "AND").upper() == "OR" else all(results)


def _upstream_holds(upstream: Mapping[str, Any], up: Upstream) -> bool:
    if up.namespace != upstream.get("namespace"):
        return False
    if upstream.get("flowId") and up.flow_id != upstream["flowId"]:
        return False
    if up.state not in (upstream.get("states") or DEFAULT_UPSTREAM_STATES):
        return False
    return all(up.labels.get(key) == value for key, value in _label_map(upstream.get("labels")).items())


# --- windowed groups ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """A set of named conditions to be met within a window: a trigger's `preconditions` or one of
    its MultipleConditions. `met` are the names this execution meets."""

    id: str
    required: tuple[str, ...]
    met: frozenset[str]
    window: Mapping[str, Any]
    reset_on_success: bool = True


def _upstream_key(upstream: Mapping[str, Any]) -> str:
    # Named from what it says, not where it stands: reordering `flows` keeps the progress made.
    return f"flow:{upstream.get('namespace')}:{upstream.get('flowId') or '*'}"


def groups(trigger: Mapping[str, Any], up: Upstream, truth: Truth) -> list[Group]:
    """The trigger's windowed groups, with the names this execution meets in each."""
    found: list[Group] = []
    preconditions = trigger.get("preconditions")
    if isinstance(preconditions, Mapping):
        names: dict[str, bool] = {}
        for upstream in preconditions.get("flows") or ():
            names[_upstream_key(upstream)] = _upstream_holds(upstream, up)
        for where in preconditions.get("where") or ():
            names[f"where:{where.get('id')}"] = _where_holds(where, up, truth)
        found.append(Group(
            id=f"preconditions:{preconditions.get('id') or 'preconditions'}", required=tuple(names),
            met=frozenset(name for name, holds in names.items() if holds),
            window=preconditions.get("timeWindow") or {},
            reset_on_success=preconditions.get("resetOnSuccess") is not False,
        ))
    for index, condition in enumerate(trigger.get("conditions") or ()):
        if kind(str(condition.get("type", ""))) != "MultipleCondition":
            continue
        named = condition.get("conditions") or {}
        window = {"type": "DURATION_WINDOW", "window": condition.get("window"),
                  "windowAdvance": condition.get("windowAdvance")}
        found.append(Group(
            id=f"multiple:{condition.get('id') or index}", required=tuple(named),
            met=frozenset(name for name, inner in named.items() if condition_holds(inner, up, truth)),
            window=window, reset_on_success=condition.get("resetOnSuccess") is not False,
        ))
    return found


def plain_conditions_hold(trigger: Mapping[str, Any], up: Upstream, truth: Truth) -> bool:
    return all(condition_holds(condition, up, truth) for condition in trigger.get("conditions") or ()
               if kind(str(condition.get("type", ""))) != "MultipleCondition")


def _seconds(value: Any, default: timedelta) -> timedelta:
    parsed = parse_duration(value) if value else None
    return parsed if parsed is not None else default


def _clock(value: Any, default: time) -> time:
    return time.fromisoformat(str(value)) if value else default


def window_bounds(window: Mapping[str, Any], moment: datetime) -> tuple[datetime, datetime] | None:
    """The window `moment` falls in, or None when it falls in none (outside a daily window).
    A SLIDING_WINDOW has no fixed bounds: its start is `moment - window`."""
    kind_ = str(window.get("type") or "DURATION_WINDOW").upper()
    moment = moment.astimezone(timezone.utc)
    if kind_ == "SLIDING_WINDOW":
        return moment - _seconds(window.get("window"), timedelta(days=1)), moment
    if kind_ in ("DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW"):
        day = datetime.combine(moment.date(), time(0), tzinfo=timezone.utc)
        if kind_ == "DAILY_TIME_DEADLINE":
            start, end = day, datetime.combine(moment.date(), _clock(window.get("deadline"), time(23, 59, 59)),
                                               tzinfo=timezone.utc)
        else:
            start = datetime.combine(moment.date(), _clock(window.get("startTime"), time(0)), tzinfo=timezone.utc)
            end = datetime.combine(moment.date(), _clock(window.get("endTime"), time(23, 59, 59)),
                                   tzinfo=timezone.utc)
        return (start, end) if start <= moment <= end else None
    # DURATION_WINDOW: consecutive windows of `window`, the first starting at the epoch plus
    # `windowAdvance` (P1D and P0D: each UTC day).
    length = _seconds(window.get("window"), timedelta(days=1)) or timedelta(days=1)
    advance = _seconds(window.get("windowAdvance"), timedelta(0))
    origin = datetime(1970, 1, 1, tzinfo=timezone.utc) + advance
    start = origin + ((moment - origin) // length) * length
    return start, start + length


def advance(progress: Mapping[str, Any], group: Group, up: Upstream, moment: datetime
            ) -> tuple[dict[str, Any], bool, dict[str, Any]]:
    """The group's progress after this execution, whether the group is now complete, and the
    flow outputs of the executions that met it, merged in the order they came.

    progress: {"start": iso or None, "seen": {name: {"date", "executionId"}}, "outputs": {…}}.
    A completed group starts again empty (`resetOnSuccess`, the default) or stays complete, so
    that each further execution meeting one of its names fires again."""
    bounds = window_bounds(group.window, moment)
    seen = dict(progress.get("seen") or {})
    outputs = dict(progress.get("outputs") or {})
    start = progress.get("start")
    if bounds is None:
        return {"start": start, "seen": seen, "outputs": outputs}, False, outputs
    sliding = str(group.window.get("type") or "").upper() == "SLIDING_WINDOW"
    if sliding:
        seen = {name: entry for name, entry in seen.items() if entry.get("date", "") >= _iso(bounds[0])}
    elif start != _iso(bounds[0]):
        seen, outputs, start = {}, {}, _iso(bounds[0])
    seen = {name: entry for name, entry in seen.items() if name in group.required}
    if not group.met:
        return {"start": start, "seen": seen, "outputs": outputs}, False, outputs
    for name in group.met:
        seen[name] = {"date": _iso(moment), "executionId": up.execution_id}
    outputs.update(up.outputs or {})
    complete = bool(group.required) and set(group.required) <= set(seen)
    if complete and group.reset_on_success:
        return {"start": start, "seen": {}, "outputs": {}}, True, outputs
    return {"start": start, "seen": seen, "outputs": outputs}, complete, outputs


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

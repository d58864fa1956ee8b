"""Building blocks for declaring the properties of tasks, triggers and flows: durations,
labels, lists of inputs, expressions. Pure Python (pydantic), imported by the declarations in
`executor/flowables/` and `scheduler/triggers/`, so it must not import the validator."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from orchestrator.states import State

# A list of flow inputs inside a task (Pause's `onResume`): validated and described like the
# flow's own `inputs`.
INPUTS_MARKER = "x-harrier-inputs"
InputList = Annotated[list[dict[str, Any]], Field(json_schema_extra={INPUTS_MARKER: True})]

SYSTEM_LABEL_PREFIX = "system."
# The one system label a flow may carry itself (Kestra: it makes the flow read-only in the UI).
FLOW_SETTABLE_SYSTEM_LABELS = frozenset({"system.readOnly"})

StateName = Literal[tuple(state.value for state in State)]  # type: ignore[valid-type]

_EXPRESSION = re.compile(r"\{\{|\{%")
# java.time.Duration's text form (what Kestra reads): days, hours, minutes, seconds with up to
# nine decimals, each part optional and signed, letters in either case.
_DURATION = re.compile(
    r"^[-+]?P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?$",
    re.IGNORECASE,
)


def is_dynamic(value: Any) -> bool:
    """A string holding an expression, rendered at run time: its type is only known then."""
    return isinstance(value, str) and _EXPRESSION.search(value) is not None


class Props(BaseModel):
    """Base of nested property objects: unknown properties are refused, as in tasks."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def parse_duration(value: Any) -> timedelta | None:
    """The duration a property holds, or None when it is not a literal duration (or one too large
    to hold: Python's timedelta stops at 999,999,999 days)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return timedelta(seconds=value)
        except (OverflowError, ValueError):  # 1e300, NaN, infinity
            return None
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    text = value.strip().upper()
    if match is None or text.endswith(("P", "T")):
        return None
    days, hours, minutes, seconds, fraction = match.groups()
    whole = (seconds or "0").lstrip("+-") or "0"
    second_count = float(f"{whole}.{fraction or '0'}") * (-1 if (seconds or "").startswith("-") else 1)
    try:
        total = timedelta(
            days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0), seconds=second_count
        )
    except OverflowError:
        return None
    return -total if text.startswith("-") else total


def _duration(value: Any) -> Any:
    if is_dynamic(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("expected an ISO-8601 duration such as PT30S, PT5M or P1D")
    if isinstance(value, (int, float)) and value < 0:
        raise ValueError("a duration cannot be negative")
    if parse_duration(value) is None:
        if isinstance(value, (int, float)) or _DURATION.match(value.strip()):
            raise ValueError(f"{value!r} is out of the range of a duration")
        raise ValueError(f"{value!r} is not an ISO-8601 duration such as PT30S, PT5M or P1D")
    return value


# A java.time.Duration as Kestra reads it: ISO-8601 text (PT1H30M, P1D), or a number of seconds.
Duration = Annotated[
    Union[str, float],
    PlainValidator(_duration),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "duration"}, {"type": "number", "minimum": 0}]}),
]


class Label(Props):
    key: str = Field(min_length=1)
    value: str


LabelValue = Union[str, int, float, bool]


def label_pairs(labels: Any) -> list[tuple[Any, Any]]:
    """(key, value) pairs of labels written as a map or as a list of {key, value}."""
    if isinstance(labels, dict):
        return list(labels.items())
    if isinstance(labels, list):
        return [(item.get("key"), item.get("value")) for item in labels if isinstance(item, dict)]
    return []


def system_label_message(key: str, *, in_flow: bool) -> str:
    allowed = (
        f"; a flow may only set {', '.join(sorted(FLOW_SETTABLE_SYSTEM_LABELS))}" if in_flow else ""
    )
    return f"label {key!r}: labels starting with {SYSTEM_LABEL_PREFIX!r} are set by the orchestrator itself{allowed}"


def _no_system_labels(labels: Any) -> Any:
    for key, _ in label_pairs(labels):
        if isinstance(key, str) and key.startswith(SYSTEM_LABEL_PREFIX):
            raise ValueError(system_label_message(key, in_flow=False))
    return labels


# Labels passed to executions (Subflow, ForEachItem, triggers): a map or a list of {key, value};
# no `system.` label, those are the orchestrator's own.
Labels = Annotated[Union[dict[str, LabelValue], list[Label]], AfterValidator(_no_system_labels)]


class Condition(BaseModel):
    """A trigger condition. Conditions are a plugin family of their own; they are checked for
    their shape only (a mapping with a `type`), the condition's own properties are not."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)


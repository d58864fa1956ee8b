"""The trigger-type registry, in the style of the task-type registry (workers/registry.py): one
pydantic declaration per trigger type, from which deploy-time validation and the flow's JSON
Schema come. Pure Python: importing it must not touch Django.

Conditions are a plugin family of their own and are only checked for their shape (a mapping
with a `type`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.flowlang.types import Condition, Labels, StateName
from workers.registry import ID_PATTERN, LogLevel, WorkerGroup

# schedule: fired by the scheduler at cron dates; flow: by other executions ending; webhook: by
# an HTTP call; polling: evaluated by a worker at an interval.
TriggerKind = Literal["schedule", "flow", "webhook", "polling"]

_MODULES = ("schedule", "schedule_on_dates", "flow", "webhook", "http_trigger", "storage_trigger", "jdbc_trigger")


class TriggerBase(BaseModel):
    """Properties every trigger has, whatever its type."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(pattern=ID_PATTERN, max_length=256)
    type: str
    description: str | None = None
    disabled: bool = False
    conditions: list[Condition] | None = Field(None, description="All must hold for the trigger to fire.")
    labels: Labels | None = Field(None, description="Labels of the executions the trigger creates.")
    stopAfter: list[StateName] | None = Field(None, description="Disable the trigger after an execution ends so.")
    workerGroup: WorkerGroup | None = None
    logLevel: LogLevel | None = None
    minLogLevel: LogLevel | None = Field(None, description="Older name of `logLevel`.")
    logToFile: bool = False


@dataclass(frozen=True)
class TriggerType:
    name: str
    properties: type[TriggerBase]
    kind: TriggerKind
    title: str = ""
    aliases: tuple[str, ...] = ()


REGISTRY: dict[str, TriggerType] = {}


def register(trigger_type: TriggerType) -> TriggerType:
    for name in (trigger_type.name, *trigger_type.aliases):
        existing = REGISTRY.get(name)
        if existing is not None and existing is not trigger_type:
            raise ValueError(f"trigger type {name} registered twice")
        REGISTRY[name] = trigger_type
    return trigger_type


def get(name: str) -> TriggerType | None:
    """The declaration of a trigger type by its name or an alias."""
    load_all()
    return REGISTRY.get(name)


def canonical_types() -> list[TriggerType]:
    load_all()
    seen: dict[str, TriggerType] = {}
    for trigger_type in REGISTRY.values():
        seen.setdefault(trigger_type.name, trigger_type)
    return sorted(seen.values(), key=lambda t: t.name)


def old_aliases(name: str) -> tuple[str, ...]:
    """The `io.kestra.core.models.triggers.types.*` name a core trigger had before 0.17."""
    prefix = "io.kestra.plugin.core.trigger."
    return (f"io.kestra.core.models.triggers.types.{name[len(prefix):]}",) if name.startswith(prefix) else ()


_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _MODULES:
        importlib.import_module(f"scheduler.triggers.{module}")

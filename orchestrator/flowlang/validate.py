"""Deploy-time validation of a flow: `parse_flow` (YAML text) and `validate_flow_data` (data
already parsed, e.g. JSON from the API). Every problem is collected, not only the first, and each
is reported with its property path and line.

The validated data is kept exactly as written: no default is filled in, so that what the flow
means (Kestra's semantics of absent properties) is decided in one place, the executor.

Pure functions: nothing here reads Django settings. The repository layer passes the declared
worker groups (HARRIER_WORKER_GROUPS); with `declared_worker_groups=None` they are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import yaml

from orchestrator.flowlang.defaults import with_plugin_defaults
from orchestrator.flowlang.errors import FlowError, FlowSyntaxError, FlowValidationError, Path
from orchestrator.flowlang.inputs import check_inputs
from orchestrator.flowlang.model_errors import model_errors
from orchestrator.flowlang.models import FLOW_KEYS, FlowModel
from orchestrator.flowlang.tasks import FlowContext, check_task, check_trigger
from orchestrator.flowlang.types import FLOW_SETTABLE_SYSTEM_LABELS, SYSTEM_LABEL_PREFIX, system_label_message
from orchestrator.flowlang.walk import flow_tasks
from orchestrator.flowlang.yaml_loader import MAX_DEPTH, MAX_NODES, load_yaml

TASK_LIST_KEYS = ("tasks", "errors", "finally", "afterExecution")

_LISTENERS = (
    "`listeners` were removed from Kestra's flow language (deprecated in 0.12) and are not supported: "
    "use `afterExecution` tasks, or a Flow trigger (io.kestra.plugin.core.trigger.Flow) in another flow"
)


@dataclass(frozen=True)
class FlowDefinition:
    """A valid flow: its identity, its text and its data exactly as written (no defaults added)."""

    id: str
    namespace: str
    source: str = field(repr=False)
    data: dict[str, Any] = field(repr=False, compare=False)

    def task_ids(self) -> tuple[str, ...]:
        """The ids of every task of the flow, nested ones included, in document order."""
        return tuple(task["id"] for _, task in flow_tasks(self.data) if isinstance(task.get("id"), str))


def parse_flow(source: str | bytes, *, declared_worker_groups: frozenset[str] | None = None) -> FlowDefinition:
    """Parse and validate a flow's YAML. Raises FlowSyntaxError (unreadable YAML) or
    FlowValidationError (every problem found); both are FlowValidationError."""
    loaded = load_yaml(source)
    text = source if isinstance(source, str) else bytes(source).decode("utf-8")
    _validate(loaded.data, loaded.line_of, declared_worker_groups)
    return _definition(loaded.data, text)


def validate_flow_data(
    data: Mapping[str, Any], *, declared_worker_groups: frozenset[str] | None = None
) -> FlowDefinition:
    """Validate a flow given as plain data. The definition's `source` is the data written as YAML,
    since there is no original text."""
    _check_plain(data)
    plain = dict(data)
    _validate(plain, None, declared_worker_groups)
    source = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return _definition(plain, source)


def _definition(data: dict[str, Any], source: str) -> FlowDefinition:
    # `id: 2024` is the id "2024", as Kestra reads it (the declaration coerces numbers to text).
    return FlowDefinition(id=str(data["id"]), namespace=str(data["namespace"]), source=source, data=data)


def _validate(
    data: dict[str, Any], line_of: Callable[[Path], int | None] | None, worker_groups: frozenset[str] | None
) -> None:
    problems: list[tuple[Path, str]] = []

    def report(path: Path, message: str) -> None:
        problems.append((path, message))

    _check_top_level(data, report)
    ctx = FlowContext(flow_id=data.get("id"), namespace=data.get("namespace"), worker_groups=worker_groups,
                      report=report)
    # Tasks and triggers are checked as they will run: with the flow's pluginDefaults applied.
    effective = with_plugin_defaults(data)
    for key in TASK_LIST_KEYS:
        items = effective.get(key)
        if isinstance(items, list):
            for index, task in enumerate(items):
                check_task(task, (key, index), ctx)
    check_inputs(data.get("inputs"), ("inputs",), report)
    triggers = effective.get("triggers")
    if isinstance(triggers, list):
        for index, trigger in enumerate(triggers):
            check_trigger(trigger, ("triggers", index), ctx)
    _check_outputs(data.get("outputs"), report)
    if problems:
        raise FlowValidationError(_errors(problems, line_of))


def _check_top_level(data: dict[str, Any], report: Callable[[Path, str], None]) -> None:
    if "listeners" in data:
        report(("listeners",), _LISTENERS)
    for relative, message in model_errors(FlowModel, data, expressions=False, ignore=("listeners",)):
        report(relative, message)
    labels = data.get("labels")
    pairs = labels.items() if isinstance(labels, dict) else (
        ((item.get("key"), index) for index, item in enumerate(labels) if isinstance(item, dict))
        if isinstance(labels, list) else ()
    )
    for key, where in pairs:
        if isinstance(key, str) and key.startswith(SYSTEM_LABEL_PREFIX) and key not in FLOW_SETTABLE_SYSTEM_LABELS:
            path = ("labels", key) if isinstance(labels, dict) else ("labels", where, "key")
            report(path, system_label_message(key, in_flow=True))


def _check_outputs(outputs: Any, report: Callable[[Path, str], None]) -> None:
    if not isinstance(outputs, list):
        return
    seen: dict[str, int] = {}
    for index, output in enumerate(outputs):
        output_id = output.get("id") if isinstance(output, dict) else None
        if not isinstance(output_id, str):
            continue
        if output_id in seen:
            report(("outputs", index, "id"), f"duplicate output id {output_id!r}: also used by outputs[{seen[output_id]}]")
        else:
            seen[output_id] = index


def _errors(problems: list[tuple[Path, str]], line_of: Callable[[Path], int | None] | None) -> list[FlowError]:
    from orchestrator.flowlang.errors import format_path

    errors = [FlowError(format_path(path), message, line_of(path) if line_of else None) for path, message in problems]
    unique = list(dict.fromkeys(errors))
    # In document order for a person reading along; errors without a line keep their order, last.
    return sorted(unique, key=lambda error: (error.line is None, error.line or 0))


def _check_plain(data: Any) -> None:
    """Data that did not come through the YAML loader gets the same bounds: plain JSON-like values
    only, nested at most MAX_DEPTH levels, at most MAX_NODES values."""
    if not isinstance(data, Mapping):
        raise FlowSyntaxError(f"a flow must be a mapping (id, namespace, tasks…), not {type(data).__name__}")
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise FlowSyntaxError(f"the flow holds more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise FlowSyntaxError(f"the flow nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise FlowSyntaxError(f"mapping keys must be strings, found {key!r}")
                stack.append((item, depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            raise FlowSyntaxError(f"a flow holds only plain values, found a {type(value).__name__}")


__all__ = ["FLOW_KEYS", "FlowDefinition", "parse_flow", "validate_flow_data"]

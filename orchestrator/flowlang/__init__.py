"""The flow language: Kestra's YAML flows read safely, validated at deploy time, described by a
JSON Schema. Pure Python; the repository layer (orchestrator/repository.py) is its Django side.

    parse_flow(source, declared_worker_groups=...)  -> FlowDefinition   (YAML text)
    validate_flow_data(data, declared_worker_groups=...) -> FlowDefinition   (parsed data)
    load_yaml(source, max_bytes=...) -> LoadedYaml   (safe YAML with line numbers)
    flow_json_schema() -> dict   (draft 2020-12)

Refusals raise FlowValidationError, whose `errors` are FlowError(path, message, line);
FlowSyntaxError (unreadable or hostile YAML) is a FlowValidationError too.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are imported on first use: the declaration modules (executor/flowables,
# scheduler/triggers) import `orchestrator.flowlang.types`, and the validator imports them, so an
# eager package would make every import order a potential cycle.
_EXPORTS = {
    "FlowError": "errors", "FlowSyntaxError": "errors", "FlowValidationError": "errors",
    "flow_json_schema": "schema",
    "FlowDefinition": "validate", "parse_flow": "validate", "validate_flow_data": "validate",
    "child_tasks": "walk", "flow_tasks": "walk",
    "LoadedYaml": "yaml_loader", "load_yaml": "yaml_loader",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

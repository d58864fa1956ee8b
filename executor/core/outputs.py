"""A flow's `outputs:`, rendered when its execution ends, typed by their declarations."""

from __future__ import annotations

import json
from typing import Any, Mapping

from orchestrator.templating import TemplateError, render_value


class FlowOutputError(ValueError):
    """An output could not be rendered or does not fit its type; the execution fails with it."""


def _typed(output_id: str, kind: str, value: Any) -> Any:
    try:
        if kind in {"STRING", "EMAIL", "URI", "SECRET", "DATETIME", "DATE", "TIME", "DURATION", "FILE", "ENUM",
                    "SELECT"}:
            return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if kind == "INT":
            return int(str(value).strip())
        if kind == "FLOAT":
            return float(str(value).strip())
        if kind in {"BOOLEAN", "BOOL"}:
            text = str(value).strip().lower()
            if text not in {"true", "false"}:
                raise ValueError(f"{value!r} is not true or false")
            return text == "true"
        if kind in {"JSON", "ARRAY", "MULTISELECT"}:
            parsed = json.loads(value) if isinstance(value, str) else value
            if kind != "JSON" and not isinstance(parsed, list):
                raise ValueError(f"{value!r} is not a list")
            return parsed
    except (ValueError, TypeError) as error:
        raise FlowOutputError(f"outputs.{output_id}: {error}") from None
    return value


def render_flow_outputs(declarations: list[Mapping[str, Any]], context: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a flow's outputs; raises FlowOutputError naming the output and the reason."""
    values: dict[str, Any] = {}
    for declaration in declarations:
        output_id = declaration["id"]
        try:
            rendered = render_value(declaration.get("value"), context)
        except TemplateError as error:
            raise FlowOutputError(f"outputs.{output_id}: {error}") from None
        values[output_id] = _typed(output_id, str(declaration.get("type", "STRING")).upper(), rendered)
    return values

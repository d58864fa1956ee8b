"""What a template may ask of its surroundings: secrets, files, the KV store, logs.

The engine itself knows only the data it is given. Functions that need the outside world go
through a :class:`TemplateHooks` object passed to ``render()``; the base class refuses all of
them with a readable message, so a template rendered where a resource is not available (the
executor has no secrets, a worker has no database) fails clearly instead of guessing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from .errors import TemplateError

# The context of the rendering in progress, for hooks that need it (currentEachOutput).
_CURRENT_CONTEXT: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "harrier_template_context", default=None)


def current_context() -> Mapping[str, Any]:
    """The context mapping of the rendering in progress (empty outside a rendering)."""
    return _CURRENT_CONTEXT.get() or {}


class TemplateHooks:
    """Subclass to provide the context-dependent functions of an expression.

    Every method is called with already-evaluated arguments; raise :class:`TemplateError` (or
    any exception: it becomes one) to fail the rendering.
    """

    def secret(self, name: str) -> str:
        """``secret('NAME')``: the secret's value."""
        raise TemplateError(f"secret('{name}') is not available here")

    def read(self, path: str) -> str:
        """``read(path)``: the text of a file of the internal storage or of the namespace."""
        raise TemplateError(f"read('{path}') is not available here")

    def kv(self, key: str, namespace: str | None = None, error_on_missing: bool = True) -> Any:
        """``kv(key, namespace, errorOnMissing)``: a value of the KV store (namespace None: the flow's)."""
        raise TemplateError(f"kv('{key}') is not available here")

    def error_logs(self) -> list:
        """``errorLogs()``: the error logs of the current execution."""
        return []

    def file_size(self, path: str) -> int:
        """``fileSize(path)``: the size in bytes of a file of the internal storage."""
        raise TemplateError(f"fileSize('{path}') is not available here")

    def file_exists(self, path: str) -> bool:
        """``fileExists(path)``: whether a file of the internal storage exists."""
        raise TemplateError(f"fileExists('{path}') is not available here")

    def current_each_output(self, outputs: Any) -> Any:
        """``currentEachOutput(outputs.task)``: the outputs of the current ForEach iteration.

        As Kestra: outputs of tasks inside a ForEach are keyed by iteration value, once per
        enclosing ForEach; walk ``parents`` from the outermost to the innermost, then take
        ``taskrun.value``.
        """
        context = current_context()
        if not isinstance(outputs, Mapping):
            raise TemplateError("The 'currentEachOutput' function expects an argument 'outputs' with type map.")
        parents = context.get("parents") or []
        for parent in reversed(list(parents)):
            taskrun = parent.get("taskrun") if isinstance(parent, Mapping) else None
            if isinstance(taskrun, Mapping) and outputs is not None:
                outputs = _by_value(outputs, taskrun.get("value"))
        taskrun = context.get("taskrun")
        if not isinstance(taskrun, Mapping) or outputs is None:
            return None
        return _by_value(outputs, taskrun.get("value"))


def _by_value(outputs: Any, value: Any) -> Any:
    if not isinstance(outputs, Mapping) or value is None:
        return None
    try:
        if value in outputs:
            return outputs[value]
    except TypeError:  # an unhashable iteration value (a map) is looked up by its text
        pass
    from .formatting import to_string

    return outputs.get(to_string(value))


DEFAULT_HOOKS = TemplateHooks()

"""Harrier's expression engine: Kestra's Pebble syntax on Jinja2's sandboxed environment.

Pure Python, no Django: the executor's decision core and the workers both render with it.

    render("Hello {{ inputs.name | upper }}", {"inputs": {"name": "ada"}})   # 'Hello ADA'
    evaluate("outputs.check.code == 200", context)                           # True
    render_value({"uri": "{{ vars.base }}/x", "n": 1}, context)              # strings rendered, 1 kept

The user reference is docs/expressions.md; the syntax translation and its reasons are in
pebble.py, the sandbox rules in sandbox.py, the bounds in limits.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import engine
from .errors import TemplateError
from .formatting import is_truthy as _is_truthy
from .hooks import TemplateHooks, current_context

__all__ = ["TemplateError", "TemplateHooks", "current_context", "evaluate", "has_expression", "is_truthy",
           "render", "render_value"]


def has_expression(text: str) -> bool:
    """True if the string contains ``{{`` or ``{%`` (a cheap test, nothing is parsed)."""
    return isinstance(text, str) and ("{{" in text or "{%" in text)


def render(template: str, context: Mapping[str, Any], *, hooks: TemplateHooks | None = None) -> str:
    """Render a template to text. A string without ``{{``, ``{%`` or ``{#`` is returned as it is.

    Values taken from ``context`` are never rendered again, whatever they contain, unless the
    template passes them to ``render()``. Raises :class:`TemplateError` and nothing else.
    """
    if type(template) is not str:
        if isinstance(template, str):
            template = str(template)
        else:
            raise TemplateError(f"render() expects a string template, not {type(template).__name__}")
    if "{" not in template or not engine.has_markup(template):
        return template
    return engine.render_text(template, context, engine.new_state(hooks))


def render_value(value: Any, context: Mapping[str, Any], *, hooks: TemplateHooks | None = None) -> Any:
    """Render every string inside dicts and lists, keys included; other values are returned untouched.

    Dicts and lists are copied (tuples become lists); when two keys render to the same text,
    the first one wins, as in Kestra.
    """
    return engine.render_data(value, context, engine.new_state(hooks))


def evaluate(expression: str, context: Mapping[str, Any], *, hooks: TemplateHooks | None = None) -> Any:
    """Evaluate a bare expression (``inputs.count > 3``) to a Python value (bool, number, str, list, dict, None).

    For If conditions, Switch values, ForEach values. A text made of exactly one
    ``{{ expression }}`` is evaluated the same way (its value keeps its type); any other text
    with ``{{ }}`` or ``{% %}`` is rendered to a string.
    """
    if not isinstance(expression, str):
        raise TemplateError(f"evaluate() expects a string expression, not {type(expression).__name__}")
    return engine.evaluate_text(expression, context, engine.new_state(hooks))


def is_truthy(value: Any) -> bool:
    """Kestra's truthiness of a condition (If, runIf, Switch...).

    ``None``, ``False``, ``0``, and the strings ``"false"``, ``"0"``, ``"-0"`` and ``""``
    (surrounding whitespace ignored) are false; every other value is true. As in Kestra, where a
    condition is the rendered text, an empty list or map (``[]``, ``{}``) and ``0.0`` are true.
    """
    return _is_truthy(value)

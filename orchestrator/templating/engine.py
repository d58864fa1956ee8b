"""Compiling (once, cached) and running templates; turning every failure into a TemplateError."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.exceptions import TemplateSyntaxError

from . import dates, filters, filters_collections, filters_data, functions, predicates  # noqa: F401 - importing registers them
from .compiler import set_variable
from .errors import EvaluationError, MissingValueError, TemplateError, missing_message
from .formatting import ensure_defined
from .hooks import _CURRENT_CONTEXT, DEFAULT_HOOKS, TemplateHooks
from .limits import CACHE_SIZE, MAX_OUTPUT_CHARS, MAX_RENDER_DEPTH, MAX_RENDER_PASSES, MAX_RENDER_SECONDS
from .pebble import PebbleParser
from .sandbox import PebbleEnvironment, RenderContext, RenderState

ENVIRONMENT = PebbleEnvironment()
_RESULT = "__harrier_result__"


def has_markup(text: str) -> bool:
    return "{" in text and ("{{" in text or "{%" in text or "{#" in text)


# -- compiling ------------------------------------------------------------------------------

def _syntax_error(error: TemplateSyntaxError, source: str) -> TemplateError:
    return TemplateError(error.message or "Syntax error", source, error.lineno)


def _compile_failure(error: BaseException, source: str) -> TemplateError:
    if isinstance(error, TemplateSyntaxError):
        return _syntax_error(error, source)
    if isinstance(error, (RecursionError, MemoryError)) or "too many" in str(error):
        return TemplateError("The template is nested too deeply to be compiled", source)
    if isinstance(error, EvaluationError):
        return TemplateError(error.reason, source)
    return TemplateError(f"The template cannot be compiled: {error}", source)


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_template(source: str) -> Template:
    """The compiled template of ``source``; a bounded LRU keyed by the source text."""
    try:
        return ENVIRONMENT.from_string(source)
    except Exception as error:  # every failure is the template's error
        raise _compile_failure(error, source) from None


def _expression_template(expr: nodes.Expr) -> Template:
    return ENVIRONMENT.from_string(nodes.Template([set_variable(_RESULT, expr, expr.lineno or 1)], lineno=1))


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_expression(source: str) -> Template:
    """A bare expression (``inputs.x == 1``), compiled to leave its value in the context."""
    try:
        parser = PebbleParser(ENVIRONMENT, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            parser.fail(f"Unexpected `{parser.stream.current.value}` after the expression")
        return _expression_template(expr)
    except Exception as error:
        raise _compile_failure(error, source) from None


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_typed(source: str) -> tuple[Template, bool]:
    """A template that is one ``{{ expression }}`` keeps its value's type; others render text."""
    try:
        tree = PebbleParser(ENVIRONMENT, source).parse()
        body = tree.body
        if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1 \
                and not isinstance(body[0].nodes[0], nodes.TemplateData):
            return _expression_template(body[0].nodes[0]), True
    except Exception as error:
        raise _compile_failure(error, source) from None
    return compile_template(source), False


# -- running --------------------------------------------------------------------------------

def _line_of(error: BaseException, template: Template) -> int | None:
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = template.get_corresponding_lineno(traceback.tb_lineno)
        traceback = traceback.tb_next
    return line


def new_state(hooks: TemplateHooks | None) -> RenderState:
    return RenderState(hooks if hooks is not None else DEFAULT_HOOKS, time.monotonic() + MAX_RENDER_SECONDS)


def _run(template: Template, source: str, context: Mapping[str, Any], state: RenderState, typed: bool) -> Any:
    if not isinstance(context, Mapping):
        raise TemplateError("The rendering context must be a mapping", source)
    ctx = RenderContext(ENVIRONMENT, context, None, {}, None)
    ctx.state, ctx.source = state, source
    token = _CURRENT_CONTEXT.set(context)
    try:
        parts, size = [], 0
        for chunk in template.root_render_func(ctx):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise EvaluationError(f"The rendered text exceeds {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
        if typed:
            return ensure_defined(ctx.vars[_RESULT])
        return "".join(parts)
    except TemplateError as error:
        if error.expression is None:  # raised by a hook: say where
            raise TemplateError(error.reason, source, _line_of(error, template)) from None
        raise
    except MissingValueError as error:
        line = _line_of(error, template)
        raise TemplateError(error.reason, source, line, missing_message(error.name, source, line)) from None
    except EvaluationError as error:
        raise TemplateError(error.reason, source, _line_of(error, template)) from None
    except RecursionError as error:
        raise TemplateError("The rendering recursed too deeply", source, _line_of(error, template)) from None
    except MemoryError as error:
        raise TemplateError("The rendering ran out of memory", source, _line_of(error, template)) from None
    except Exception as error:  # never let another exception type out
        reason = f"{type(error).__name__}: {error}"
        raise TemplateError(reason, source, _line_of(error, template)) from None
    finally:
        _CURRENT_CONTEXT.reset(token)


def render_text(template: str, context: Mapping[str, Any], state: RenderState) -> str:
    if not has_markup(template):
        return template
    return _run(compile_template(template), template, context, state, typed=False)


def evaluate_text(expression: str, context: Mapping[str, Any], state: RenderState) -> Any:
    text = expression.strip()
    if not text:
        raise TemplateError("The expression is empty", expression)
    if has_markup(text):
        compiled, typed = compile_typed(text)
        return _run(compiled, text, context, state, typed=typed)
    return _run(compile_expression(text), text, context, state, typed=True)


def render_data(value: Any, context: Mapping[str, Any], state: RenderState, depth: int = 0) -> Any:
    """Render every string inside ``value`` (map keys too); other scalars are returned as they are."""
    if depth > 100:
        raise TemplateError("The value to render is nested more than 100 levels deep")
    if isinstance(value, str):
        return render_text(value, context, state)
    if isinstance(value, Mapping):
        rendered: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = render_data(key, context, state, depth + 1) if isinstance(key, str) else key
            if new_key not in rendered:  # as Kestra: the first of two keys rendering alike wins
                rendered[new_key] = render_data(item, context, state, depth + 1)
        return rendered
    if isinstance(value, (list, tuple)):
        return [render_data(item, context, state, depth + 1) for item in value]
    return value


def render_nested(call: RenderContext, value: Any, recursive: bool) -> Any:
    """``render()``/``renderOnce()``: render a value with the current context and ``{% set %}`` variables."""
    state = call.state
    if state.depth >= MAX_RENDER_DEPTH:
        raise EvaluationError(f"render() is nested more than {MAX_RENDER_DEPTH} levels deep")
    context = {**dict(call.parent), **call.vars} if call.vars else call.parent
    state.depth += 1
    try:
        current = render_data(value, context, state)
        if not recursive:
            return current
        for _ in range(MAX_RENDER_PASSES):
            if current == value or not _has_markup_inside(current):
                return current
            value, current = current, render_data(current, context, state)
        raise EvaluationError("Too many rendering attempts")
    finally:
        state.depth -= 1


def _has_markup_inside(value: Any) -> bool:
    if isinstance(value, str):
        return has_markup(value)
    if isinstance(value, Mapping):
        return any(_has_markup_inside(k) or _has_markup_inside(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_markup_inside(item) for item in value)
    return False

"""The Jinja2 sandboxed environment that runs compiled Pebble templates.

What an expression can reach, by construction:

- data only. ``a.b`` and ``a['b']`` look up a key of a map or an index of a list — never a
  Python attribute or method (``''.__class__``, ``{}.items``, ``x.mro`` are simply missing
  keys); calls exist only as ``name(...)`` of a registered function; ``obj.name(...)`` is a
  syntax error;
- no Jinja globals (``range``, ``cycler``, ``joiner``, ``namespace``, ``lipsum``, ``self``...):
  a bare name is a ``{% set %}`` variable or a key of the rendering context, nothing else;
- no Jinja filters or tests: only the registered Pebble ones;
- nothing re-rendered: a value from the context is text, whatever braces it holds, unless the
  template passes it to ``render()``.

Jinja's sandbox checks (``is_safe_attribute``, ``is_safe_callable``) stay in place as a second
wall: they refuse everything, and nothing should reach them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment

from . import operators, registry
from .compiler import PebbleCodeGenerator
from .errors import EvaluationError, MissingValueError, PebbleUndefined, raise_if_undefined, undefined
from .formatting import to_string
from .limits import MAX_LOOP_ITERATIONS, check_size
from .pebble import PebbleLexer, PebbleParser

_MISSING = object()
_LOOP_ATTRIBUTES = {"index": "index0", "revindex": "revindex0", "first": "first", "last": "last",
                    "length": "length"}


class RenderState:
    """What the renderings started by one public call share: hooks, budget, nesting."""

    __slots__ = ("deadline", "depth", "hooks", "iterations")

    def __init__(self, hooks: Any, deadline: float) -> None:
        self.hooks = hooks
        self.deadline = deadline
        self.iterations = 0
        self.depth = 0


class RenderContext(Context):
    """Jinja's context, carrying the render state and the template source."""

    state: RenderState
    source: str


class _CountedIterable:
    """A ``{% for %}`` iterable that counts iterations against the shared budget."""

    __slots__ = ("_items", "_state")

    def __init__(self, items: Any, state: RenderState) -> None:
        self._items = items
        self._state = state

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        state = self._state
        for item in self._items:
            state.iterations += 1
            if state.iterations > MAX_LOOP_ITERATIONS:
                raise EvaluationError(f"The loops of this template exceed {MAX_LOOP_ITERATIONS} iterations")
            if time.monotonic() > state.deadline:
                raise EvaluationError("The rendering takes too long")
            yield item


def lookup(obj: Any, key: Any) -> Any:
    """``obj.key`` / ``obj[key]``: a map's key or a list's index; anything else is missing."""
    if isinstance(key, PebbleUndefined):
        return key
    if isinstance(obj, PebbleUndefined):
        return obj
    if isinstance(obj, Mapping):
        try:
            return obj[key]
        except (KeyError, TypeError):
            pass
        if not isinstance(key, str) and not isinstance(key, (list, dict)):
            text = to_string(key)
            if text in obj:
                return obj[text]
        return undefined(key if isinstance(key, str) else to_string(key))
    if isinstance(obj, (list, tuple)):
        index = key
        if isinstance(key, str) and key.isdigit():
            index = int(key)
        if type(index) is int and 0 <= index < len(obj):
            return obj[index]
        return undefined(to_string(key) if not isinstance(key, (list, dict)) else "[...]")
    if isinstance(obj, LoopContext) and isinstance(key, str) and key in _LOOP_ATTRIBUTES:
        return getattr(obj, _LOOP_ATTRIBUTES[key])
    return undefined(key if isinstance(key, str) else to_string(key))


def _check_args(args: list, kwargs: dict) -> None:
    for value in args:
        if isinstance(value, PebbleUndefined):
            value._fail_with_undefined_error()
    for value in kwargs.values():
        if isinstance(value, PebbleUndefined):
            value._fail_with_undefined_error()


class PebbleEnvironment(SandboxedEnvironment):
    code_generator_class = PebbleCodeGenerator
    context_class = RenderContext

    def __init__(self) -> None:
        super().__init__(
            autoescape=False,
            undefined=PebbleUndefined,
            finalize=to_string,
            keep_trailing_newline=True,  # Pebble never drops a final newline
            trim_blocks=False,           # Kestra turns Pebble's newline trimming off
            lstrip_blocks=False,
            optimized=False,             # constant folding would run our lookups at compile time
            cache_size=0,
            auto_reload=False,
        )
        self.globals.clear()
        self.filters = {}
        self.tests = {}
        self._pebble_lexer = PebbleLexer(self)

    @property
    def lexer(self) -> PebbleLexer:  # type: ignore[override]
        return self._pebble_lexer

    def _parse(self, source, name, filename):
        return PebbleParser(self, source, name, filename).parse()

    # -- the sandbox --------------------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return False

    def getattr(self, obj: Any, attribute: str) -> Any:
        return lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return lookup(obj, argument)

    def call(self, __context, __obj, *args, **kwargs):
        raise EvaluationError("Only registered functions can be called")

    # -- what the generated code calls (see compiler.py) ----------------------------------

    @staticmethod
    def pb_var(context: RenderContext, name: str) -> Any:
        value = context.vars.get(name, _MISSING)
        if value is not _MISSING:
            return value
        parent = context.parent
        if name in parent:
            return parent[name]
        return undefined(name)

    @staticmethod
    def pb_set(context: RenderContext, name: str, value: Any) -> None:
        raise_if_undefined(value)
        context.vars[name] = value

    @staticmethod
    def pb_soft(thunk: Any) -> Any:
        try:
            return thunk()
        except MissingValueError as missing:
            return undefined(missing.name)

    @staticmethod
    def pb_coalesce(left: Any, right: Any, undefined_only: bool) -> Any:
        try:
            value = left()
        except MissingValueError:
            return right()
        if isinstance(value, PebbleUndefined) or (value is None and not undefined_only):
            return right()
        return value

    @staticmethod
    def pb_iter(context: RenderContext, value: Any) -> Any:
        if value is None:
            return ()
        raise_if_undefined(value)
        if isinstance(value, Mapping):
            items: Any = [{"key": key, "value": item} for key, item in value.items()]
        elif isinstance(value, (list, tuple)):
            items = value
        elif isinstance(value, (set, frozenset)):
            items = list(value)
        else:
            raise EvaluationError(f"Not an iterable object. Value = [{to_string(value)}]")
        return _CountedIterable(items, context.state)

    @staticmethod
    def pb_call(context: RenderContext, name: str, args: list, kwargs: dict) -> Any:
        _check_args(args, kwargs)
        return check_size(registry.FUNCTIONS[name].func(context, *args, **kwargs))

    @staticmethod
    def pb_filter(context: RenderContext, name: str, value: Any, args: list, kwargs: dict) -> Any:
        spec = registry.FILTERS[name]
        if not spec.soft and isinstance(value, PebbleUndefined):
            value._fail_with_undefined_error()
        _check_args(args, kwargs)
        return check_size(spec.func(context, value, *args, **kwargs))

    @staticmethod
    def pb_test(context: RenderContext, name: str, value: Any, args: list, kwargs: dict, negated: bool) -> bool:
        spec = registry.TESTS[name]
        if not spec.soft and isinstance(value, PebbleUndefined):
            value._fail_with_undefined_error()
        _check_args(args, kwargs)
        result = bool(spec.func(context, value, *args, **kwargs))
        return not result if negated else result

    pb_truth = staticmethod(operators.truth)
    pb_add = staticmethod(operators.add)
    pb_sub = staticmethod(operators.subtract)
    pb_mul = staticmethod(operators.multiply)
    pb_div = staticmethod(operators.divide)
    pb_mod = staticmethod(operators.modulo)
    pb_neg = staticmethod(operators.negate)
    pb_pos = staticmethod(operators.positive)
    pb_eq = staticmethod(operators.equals)
    pb_ne = staticmethod(operators.not_equals)
    pb_concat = staticmethod(operators.concat)
    pb_contains = staticmethod(operators.contains)
    pb_range = staticmethod(operators.number_range)
    pb_is_in = staticmethod(operators.is_in)

    @staticmethod
    def pb_not_in(left: Any, right: Any) -> bool:
        return not operators.is_in(left, right)

    @staticmethod
    def pb_lt(left: Any, right: Any) -> bool:
        return operators.compare("<", left, right)

    @staticmethod
    def pb_le(left: Any, right: Any) -> bool:
        return operators.compare("<=", left, right)

    @staticmethod
    def pb_gt(left: Any, right: Any) -> bool:
        return operators.compare(">", left, right)

    @staticmethod
    def pb_ge(left: Any, right: Any) -> bool:
        return operators.compare(">=", left, right)

"""The filters, functions and tests an expression may call, and their argument lists.

Each is a plain Python function registered under its Pebble name(s). Its parameters after the
leading ``call`` (and, for filters and tests, the input value) are the Pebble argument names,
camelCase as Kestra documents them, so positional and named arguments bind the way Pebble binds
them. Calls are checked against these lists when a template is compiled: a misspelt filter or
argument fails before anything runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    kind: str                 # "filter", "function" or "test"
    name: str
    func: Callable
    params: tuple[str, ...]
    required: int
    variadic: bool
    soft: bool                # receives an undefined input instead of failing on it


FILTERS: dict[str, Spec] = {}
FUNCTIONS: dict[str, Spec] = {}
TESTS: dict[str, Spec] = {}
_TABLES = {"filter": FILTERS, "function": FUNCTIONS, "test": TESTS}


def _register(kind: str, names: tuple[str, ...], soft: bool) -> Callable[[Callable], Callable]:
    def decorate(func: Callable) -> Callable:
        parameters = list(inspect.signature(func).parameters.values())
        skip = 1 if kind == "function" else 2  # `call`, and the input value
        params, required, variadic = [], 0, False
        for parameter in parameters[skip:]:
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                variadic = True
                continue
            params.append(parameter.name)
            if parameter.default is inspect.Parameter.empty:
                required += 1
        for name in names:
            _TABLES[kind][name] = Spec(kind, name, func, tuple(params), required, variadic, soft)
        return func

    return decorate


def filter(*names: str, soft: bool = False) -> Callable[[Callable], Callable]:
    return _register("filter", names, soft)


def function(*names: str) -> Callable[[Callable], Callable]:
    return _register("function", names, False)


def test(*names: str, soft: bool = False) -> Callable[[Callable], Callable]:
    return _register("test", names, soft)


def lookup(kind: str, name: str) -> Spec | None:
    return _TABLES[kind].get(name)


def check_arguments(spec: Spec, positional: int, named: list[str]) -> str | None:
    """Why a call does not fit the argument list, or None when it does."""
    label = f"{spec.kind} `{spec.name}`"
    if positional > len(spec.params) and not spec.variadic:
        if not spec.params:
            return f"The {label} takes no argument"
        return f"The {label} takes at most {len(spec.params)} argument(s): {', '.join(spec.params)}"
    bound = set(spec.params[:positional])
    for name in named:
        if name not in spec.params:
            known = ", ".join(spec.params) or "none"
            return f"The {label} has no argument `{name}` (its arguments: {known})"
        if name in bound:
            return f"The {label} got the argument `{name}` twice"
        bound.add(name)
    for name in spec.params[:spec.required]:
        if name not in bound:
            return f"The {label} expects an argument `{name}`"
    return None

"""Functions: ``name(arguments)``. Those that need the outside world go through the hooks."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from typing import Any

from . import registry
from .errors import EvaluationError, TemplateError
from .filters_data import parse_json, parse_yaml
from .formatting import to_string
from .operators import compare, is_number, number_range


def _hook(call: Any, label: str, method: str, *args: Any) -> Any:
    """Call a hook; its failures become the rendering's error, named after the function."""
    try:
        return getattr(call.state.hooks, method)(*args)
    except (TemplateError, EvaluationError):
        raise
    except Exception as exc:  # a backend's error is the template's error
        raise EvaluationError(f"{label} failed: {exc}") from None


def _text_argument(value: Any, function: str, argument: str) -> str:
    if not isinstance(value, str):
        raise EvaluationError(f"The '{function}' function expects an argument '{argument}' with type string.")
    return value


@registry.function("render")
def render_function(call, toRender, recursive=True):
    """Render a value again — the only way text from data is evaluated as a template."""
    from .engine import render_nested

    if not isinstance(recursive, bool):
        raise EvaluationError("The 'render' function expects an optional argument 'recursive' with type boolean.")
    return render_nested(call, toRender, recursive)


@registry.function("renderOnce")
def render_once_function(call, toRender):
    from .engine import render_nested

    return render_nested(call, toRender, False)


@registry.function("fromJson", "json")
def from_json_function(call, json):
    """Parse a JSON string: ``fromJson('{"a": [1, 2]}').a[0]``."""
    return parse_json(json, "fromJson")


@registry.function("yaml")
def yaml_function(call, yaml):
    """Parse a YAML string: ``yaml('foo: [1, 2]').foo[0]``."""
    return parse_yaml(yaml)


@registry.function("range")
def range_function(call, start, end, increment=1):
    """``range(start, end, increment)``: both ends included, as Pebble."""
    return number_range(start, end, increment)


def _extreme(values: tuple, symbol: str) -> Any:
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = tuple(values[0])
    best = None
    for candidate in values:
        if candidate is None:
            continue
        if best is None or compare(symbol, candidate, best):
            best = candidate
    return best


@registry.function("max")
def max_function(call, *values):
    """The largest of the arguments (numbers, or strings), ignoring nulls."""
    return _extreme(values, ">")


@registry.function("min")
def min_function(call, *values):
    return _extreme(values, "<")


@registry.function("printContext", "fetchContext")
def print_context(call):
    """Every variable of the context (and the template's ``{% set %}`` variables)."""
    return {**dict(call.parent), **call.vars}


@registry.function("currentEachOutput")
def current_each_output(call, outputs):
    """The outputs of a sibling task for the current ForEach iteration."""
    if not isinstance(outputs, Mapping):
        raise EvaluationError("The 'currentEachOutput' function expects an argument 'outputs' with type map.")
    return _hook(call, "currentEachOutput()", "current_each_output", outputs)


@registry.function("errorLogs")
def error_logs(call):
    return _hook(call, "errorLogs()", "error_logs")


@registry.function("secret")
def secret(call, key, namespace=None, subkey=None, full=False):
    """A secret; ``subkey`` picks a field of a JSON secret, ``full=true`` returns ``{value: ...}``."""
    name = _text_argument(key, "secret", "key")
    if namespace is not None:
        raise EvaluationError("secret(): reading another namespace's secrets is not supported")
    value = _hook(call, f"secret('{name}')", "secret", name)
    if subkey is not None:
        fields = parse_json(value, "secret") if isinstance(value, str) else value
        if not isinstance(fields, Mapping) or subkey not in fields:
            raise EvaluationError(f"The secret '{name}' has no field '{subkey}'")
        return fields[subkey]
    return {"value": value} if full is True else value


@registry.function("read")
def read(call, path):
    """The text of a file of the internal storage or of the namespace."""
    location = _text_argument(path, "read", "path")
    return _hook(call, f"read('{location}')", "read", location)


@registry.function("kv")
def kv(call, key, namespace=None, errorOnMissing=True):
    """A value of the KV store; ``errorOnMissing=false`` gives null for a missing key."""
    name = _text_argument(key, "kv", "key")
    if namespace is not None and not isinstance(namespace, str):
        raise EvaluationError("The 'kv' function expects an argument 'namespace' with type string.")
    if not isinstance(errorOnMissing, bool):
        raise EvaluationError("The 'kv' function expects an argument 'errorOnMissing' with type boolean.")
    return _hook(call, f"kv('{name}')", "kv", name, namespace, errorOnMissing)


@registry.function("fileSize")
def file_size(call, path):
    location = _text_argument(path, "fileSize", "path")
    return _hook(call, f"fileSize('{location}')", "file_size", location)


@registry.function("fileExists")
def file_exists(call, path):
    location = _text_argument(path, "fileExists", "path")
    return bool(_hook(call, f"fileExists('{location}')", "file_exists", location))


@registry.function("fileEmpty", "isFileEmpty")
def file_empty(call, path):
    location = _text_argument(path, "fileEmpty", "path")
    return _hook(call, f"fileEmpty('{location}')", "file_size", location) == 0


@registry.function("env")
def env(call, name, default=None):
    """``envs[name]`` with a computed name, or ``default`` when missing or empty."""
    envs = call.parent.get("envs") if isinstance(call.parent, Mapping) else None
    value = envs.get(to_string(name)) if isinstance(envs, Mapping) else None
    return default if value in (None, "") else value


@registry.function("uuid")
def uuid_function(call):
    return str(uuid.uuid4())


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@registry.function("id")
def id_function(call):
    """A random identifier in Kestra's style: a UUID in base 62 (22 characters)."""
    number, digits = uuid.uuid4().int, []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(reversed(digits)).rjust(22, "0")


@registry.function("randomInt")
def random_int(call, lower, upper):
    """A random integer in [lower, upper)."""
    if not (is_number(lower) and is_number(upper)) or int(upper) <= int(lower):
        raise EvaluationError("randomInt(lower, upper) expects two integers with lower < upper")
    return random.randrange(int(lower), int(upper))

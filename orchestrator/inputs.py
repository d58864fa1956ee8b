"""Typed execution inputs: the values given for an execution, read and checked against the flow's
`inputs:` declarations, as Kestra's FlowInputOutput does when an execution is created.

    resolve_inputs(flow_data["inputs"], {"age": "12", "when": "2024-01-15T10:00:00+02:00"},
                   context={"flow": {...}}, seal=encrypt)
    # {"age": 12, "when": "2024-01-15T08:00:00Z"}

Pure Python (no Django): the repository calls it before it stores anything, and a Pause's
`onResume` inputs can go through it too. Every problem of every input is collected and raised
at once as InvalidInputs. What each type reads and checks is in orchestrator/input_types.py;
the user's reference is docs/inputs.md.

Resolution, input by input:
- inputs are taken in declaration order, except that one comes after the inputs it depends on
  (`dependsOn.inputs`, or an `inputs.x` its defaults, condition or expression name);
- an input whose `dependsOn.condition` is false is not asked for: its value is null;
- a value given as null, or as "" for a type other than text, counts as not given; then the
  `defaults` are rendered with the flow and the inputs resolved so far, else a required input
  is an error and an optional one is null;
- `a.b` ids nest (`inputs.a.b`); given values whose name no input declares are dropped.
"""

from __future__ import annotations

import heapq
import re
from typing import Any, Callable, Iterable, Mapping, TypedDict

from orchestrator.input_types import READERS, TEXT_TYPES, Invalid, check, read_list
from orchestrator.templating import TemplateError, evaluate, is_truthy, render_value

# Names of inputs an expression reads: `inputs.a.b` or `inputs['a']`.
_REFERENCE = re.compile(r"""\binputs\s*(?:\.\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)|\[\s*(['"])([^'"]+)\2\s*\])""")


class InputError(TypedDict):
    input: str
    message: str


class InvalidInputs(ValueError):
    """The given inputs were refused. `errors` lists every problem, one {input, message} each;
    `accepted` holds the inputs that were read before, as they would be stored (SECRETs sealed)."""

    def __init__(self, errors: Iterable[InputError], accepted: Mapping[str, Any] | None = None) -> None:
        self.errors: list[InputError] = list(errors)
        self.accepted: dict[str, Any] = dict(accepted or {})
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"input `{error['input']}`: {error['message']}" for error in self.errors)


def input_id(declaration: Mapping[str, Any]) -> str | None:
    """The id of an input (`name` is its older spelling)."""
    value = declaration.get("id", declaration.get("name"))
    return value if isinstance(value, str) and value else None


def resolve_inputs(
    declarations: Iterable[Mapping[str, Any]] | None,
    given: Mapping[str, Any] | None,
    *,
    context: Mapping[str, Any] | None = None,
    seal: Callable[[str], Any] | None = None,
    missing_allowed: bool = False,
) -> dict[str, Any]:
    """The typed inputs of an execution, nested by the dots of their ids; JSON data only.

    `context` is what `defaults` and conditions may read besides `inputs` (`flow`, `execution`…).
    `seal` turns a SECRET input's checked value into what is stored (its encryption); without
    it the value stays plain, for callers that never store it. `missing_allowed` lets a required
    input without a value or default stay null, as Kestra's Flow triggers start their executions.
    Raises InvalidInputs.
    """
    declared = [item for item in declarations or () if isinstance(item, Mapping) and input_id(item)]
    given = given or {}
    resolved: dict[str, Any] = {}
    scope = {**(context or {}), "inputs": resolved}  # `inputs` fills up as the inputs resolve
    errors: list[InputError] = []
    failed: set[str] = set()
    dependencies = _dependencies(declared)
    for declaration in _resolution_order(declared, dependencies):
        name = input_id(declaration)
        upstream_failed = bool(dependencies[name] & failed)
        try:
            value = _resolve_one(declaration, name, given, scope, seal, missing_allowed)
            _place(resolved, name, value)
        except Invalid as error:
            failed.add(name)
            # A default or condition that cannot render because an input it reads was refused
            # says nothing new: the refused input is reported.
            if not (upstream_failed and isinstance(error.__cause__, TemplateError)):
                errors.append({"input": name, "message": str(error)})
    if errors:
        raise InvalidInputs(errors, accepted=resolved)
    return resolved


def unknown_inputs(declarations: Iterable[Mapping[str, Any]] | None, given: Mapping[str, Any]) -> list[str]:
    """Names among the given values that no input declares (they are dropped)."""
    ids = {input_id(item) for item in declarations or () if isinstance(item, Mapping)}
    roots = {name.split(".", 1)[0] for name in ids if name}
    return [name for name in given if name not in ids and name not in roots]


def _resolve_one(declaration: Mapping[str, Any], name: str, given: Mapping[str, Any], scope: Mapping[str, Any],
                 seal: Callable[[str], Any] | None, missing_allowed: bool = False) -> Any:
    input_type = declaration.get("type")
    reader = READERS.get(input_type)  # type: ignore[arg-type]
    if reader is None:
        raise Invalid(f"unknown input type {input_type!r}")
    condition = (declaration.get("dependsOn") or {}).get("condition")
    if isinstance(condition, str) and condition.strip():
        try:
            if not is_truthy(evaluate(condition, scope)):
                return None  # not asked for
        except TemplateError as error:
            raise Invalid(f"the `dependsOn.condition` cannot be evaluated: {error}") from error
    present, raw = _given(given, name)
    if present and (raw is None or (raw == "" and input_type not in TEXT_TYPES)):
        present = False
    origin = ""
    if not present:
        defaults = declaration.get("defaults")
        if defaults is None:
            if declaration.get("required", True) is False or missing_allowed:
                return None
            raise Invalid("a value is required")
        try:
            raw = render_value(defaults, scope)
        except TemplateError as error:
            raise Invalid(f"the `defaults` cannot be rendered: {error}") from error
        origin = "the `defaults`: "
    try:
        value = reader(raw, declaration)
        reasons = check(input_type, value, declaration, choices=_choices(declaration, input_type, scope))
    except Invalid as error:
        raise Invalid(f"{origin}{error}") from error.__cause__
    if reasons:
        raise Invalid(origin + "; ".join(reasons))
    if input_type == "SECRET" and seal is not None and value is not None:
        return seal(value)
    return value


def _choices(declaration: Mapping[str, Any], input_type: str, scope: Mapping[str, Any]) -> list[Any] | None:
    """The values an ENUM, SELECT or MULTISELECT accepts: written out, or given by an expression."""
    if input_type not in ("ENUM", "SELECT", "MULTISELECT"):
        return None
    values = declaration.get("values", declaration.get("options"))
    if values is not None:
        return list(values) if isinstance(values, list) else [values]
    expression = declaration.get("expression")
    if not isinstance(expression, str):
        return None
    try:
        result = evaluate(expression, scope)
    except TemplateError as error:
        raise Invalid(f"the `expression` giving the values cannot be evaluated: {error}") from error
    try:
        return read_list(result)
    except Invalid:
        raise Invalid(f"the `expression` giving the values gave {type(result).__name__}, not a list") from None


def _given(given: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """The value given for an input: by its full id (`a.b`), or nested (`{"a": {"b": …}}`)."""
    if name in given:
        return True, given[name]
    node: Any = given
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _place(resolved: dict[str, Any], name: str, value: Any) -> None:
    *parents, leaf = name.split(".")
    node = resolved
    for index, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise Invalid(f"conflicts with input `{'.'.join(parents[:index + 1])}`, which is not a group of inputs")
        node = child
    if isinstance(node.get(leaf), dict):
        raise Invalid(f"conflicts with the inputs `{name}.…` nested under it")
    node[leaf] = value


# -- order ------------------------------------------------------------------------------------------

def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _dependencies(declared: list[Mapping[str, Any]]) -> dict[str, set[str]]:
    """For each input, the inputs it must come after: those it names in `dependsOn.inputs`, and
    those its `defaults`, `dependsOn.condition` and `expression` read."""
    ids = {input_id(item) for item in declared}
    graph: dict[str, set[str]] = {}
    for declaration in declared:
        name = input_id(declaration)
        depends = declaration.get("dependsOn") or {}
        needed = {item for item in depends.get("inputs") or () if item in ids}
        sources = (declaration.get("defaults"), depends.get("condition"), declaration.get("expression"))
        for text in _texts(list(sources)):
            for match in _REFERENCE.finditer(text):
                path = match.group(1) or match.group(3)
                parts = path.split(".")
                # `inputs.a.b.c` reads input `a.b` when that is the declared id: try each prefix.
                needed |= {".".join(parts[:size]) for size in range(1, len(parts) + 1)} & ids
        needed.discard(name)
        graph[name] = needed
    return graph


def _resolution_order(declared: list[Mapping[str, Any]], dependencies: dict[str, set[str]]) -> list[Mapping[str, Any]]:
    """Declaration order, each input after those it depends on. Dependencies that loop (the flow
    validator refuses explicit ones) are broken in declaration order."""
    position = {input_id(item): index for index, item in enumerate(declared)}
    waiting = {name: len(needed) for name, needed in dependencies.items()}
    dependents: dict[str, list[str]] = {name: [] for name in dependencies}
    for name, needed in dependencies.items():
        for other in needed:
            dependents[other].append(name)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[Mapping[str, Any]] = []
    done: set[str] = set()
    while len(order) < len(declared):
        if not ready:  # a loop: take the first input not done yet
            heapq.heappush(ready, min(position[name] for name in waiting if name not in done))
        index = heapq.heappop(ready)
        name = input_id(declared[index])
        if name in done:
            continue
        done.add(name)
        order.append(declared[index])
        for other in dependents[name]:
            waiting[other] -= 1
            if waiting[other] == 0 and other not in done:
                heapq.heappush(ready, position[other])
    return order

"""Bounds on what one rendering may cost.

Templates come from flow authors and values from the outside world; the executor renders
conditions inside its decision loop, so no expression may run away with memory or time.
Every bound fails the rendering with a TemplateError naming it.
"""

from __future__ import annotations

from typing import Any

from .errors import EvaluationError

MAX_OUTPUT_CHARS = 10_000_000        # text one rendering may produce
MAX_STRING_CHARS = 10_000_000        # any string built by an operator, filter or function
MAX_COLLECTION_ITEMS = 1_000_000     # any list or map built by an operator, filter or function
MAX_RANGE_ITEMS = 1_000_000          # range() and `a..b`, as Kestra bounds them
MAX_LOOP_ITERATIONS = 100_000        # {% for %} iterations, all loops of one rendering together
MAX_RENDER_DEPTH = 10                # render() inside render() inside ...
MAX_RENDER_PASSES = 100              # passes of one recursive render(), as Kestra
MAX_RENDER_SECONDS = 10.0            # wall time of one rendering, checked at each loop iteration
MAX_NESTING = 64                     # parentheses, brackets and operators nested in one expression
REGEX_TIMEOUT_SECONDS = 1.0          # one regular expression match (split, replace(regexp=true))
JQ_TIMEOUT_SECONDS = 5.0             # one jq program
JQ_MEMORY_BYTES = 512 * 1024 * 1024  # address space of the jq helper process
CACHE_SIZE = 1000                    # compiled templates kept, as Kestra's default


def check_string(value: str) -> str:
    if len(value) > MAX_STRING_CHARS:
        raise EvaluationError(f"The result would exceed {MAX_STRING_CHARS} characters")
    return value


def check_string_length(length: int) -> None:
    if length > MAX_STRING_CHARS:
        raise EvaluationError(f"The result would exceed {MAX_STRING_CHARS} characters")


def check_items(count: int) -> None:
    if count > MAX_COLLECTION_ITEMS:
        raise EvaluationError(f"The result would exceed {MAX_COLLECTION_ITEMS} items")


def check_size(value: Any) -> Any:
    """Bound a value built by a filter or a function."""
    kind = type(value)
    if kind is str and len(value) > MAX_STRING_CHARS:
        raise EvaluationError(f"The result would exceed {MAX_STRING_CHARS} characters")
    if (kind is list or kind is dict) and len(value) > MAX_COLLECTION_ITEMS:
        raise EvaluationError(f"The result would exceed {MAX_COLLECTION_ITEMS} items")
    return value

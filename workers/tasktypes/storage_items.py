"""`FilterItems` and `DeduplicateItems`: files of one item per line — newline-delimited JSON, or
the Ion text Kestra's serializers write (storage_ion.py) — filtered or deduplicated by an
expression evaluated on each item.

Each item's fields are variables of the expression (`{{ customer_email }}`), beside the task's
usual ones (`inputs`, `outputs`…), as in Kestra; an item that is not a map (a number, a text)
is `value`. Kept lines are written back byte for byte, so a file keeps its format. Blank lines
are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field

from orchestrator.templating import TemplateError, evaluate, is_truthy, render
from workers.context import RunContext, TaskFailure
from workers.registry import TaskBase
from workers.tasktypes.storage import _register, lines, opened, readable, source_extension, store, workspace
from workers.tasktypes.storage_ion import ItemError, parse_item


def _items(ctx: RunContext, location, what: str) -> Iterator[tuple[int, bytes, Any]]:
    """(line number, the line, its item) for each non-blank line."""
    with opened(location, what) as stream:
        for number, line in enumerate(lines(stream, what, ctx), start=1):
            if not line.strip():
                continue
            try:
                item = parse_item(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise TaskFailure(f"{what}: line {number} is not UTF-8 text") from None
            except ItemError as error:
                raise TaskFailure(f"{what}: line {number} is not a JSON or Ion value: {error}") from None
            yield number, line, item


class _Scope:
    """The variables an item's expression sees: the task's, with the item's fields over them."""

    def __init__(self, ctx: RunContext) -> None:
        ctx.render(None)  # reveals SECRET inputs into ctx.variables, as any rendering does
        self.base = ctx.variables
        self.hooks = ctx.hooks

    def of(self, item: Any) -> dict[str, Any]:
        fields = item if isinstance(item, dict) else {"value": item}
        return {**self.base, **fields}


def _extension(location) -> str:
    """The source's extension, `.ion` (what Kestra writes) when it has none."""
    extension = source_extension(location)
    return ".ion" if extension == ".tmp" else extension


def _shown(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    return text if len(text) <= 200 else text[:200] + "…"


# --- FilterItems ---------------------------------------------------------------------------------

class FilterItemsProperties(TaskBase):
    from_: str = Field(alias="from", description="The kestra:/// URI of the file: one JSON or Ion value per line.")
    filterCondition: str = Field(description="An expression evaluated on each item (its fields are variables); "
                                             "items for which it is true match.")
    filterType: Literal["INCLUDE", "EXCLUDE"] = Field("INCLUDE", description="Keep (INCLUDE) or drop (EXCLUDE) the "
                                                                             "items that match.")
    errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] = Field(
        "FAIL", description="When the expression fails on an item or gives null: fail the task, keep the item, "
                            "or drop it.")


def run_filter(props: FilterItemsProperties, ctx: RunContext) -> dict:
    location = readable(ctx, props.from_, "from")
    scope = _Scope(ctx)
    processed = dropped = 0
    with workspace() as folder:
        target = Path(folder) / "filtered"
        with open(target, "wb") as out:
            for number, line, item in _items(ctx, location, "from"):
                try:
                    result = evaluate(props.filterCondition, scope.of(item), hooks=scope.hooks)
                    failure = None
                except TemplateError as error:
                    result, failure = None, error
                if result is None:
                    if props.errorOrNullBehavior == "FAIL":
                        reason = f"fails: {failure}" if failure else "gives null"
                        raise TaskFailure(f"filterCondition {reason} on line {number}: {_shown(line)}")
                    keep = props.errorOrNullBehavior == "INCLUDE"
                else:
                    matched = is_truthy(result.strip() if isinstance(result, str) else result)
                    keep = matched == (props.filterType == "INCLUDE")
                processed += 1
                if keep:
                    out.write(line + b"\n")
                else:
                    dropped += 1
        uri = store(ctx, target, ctx.job["task"]["id"] + _extension(location), "from")
    return {"uri": uri, "processedItemsTotal": processed, "droppedItemsTotal": dropped}


# --- DeduplicateItems ----------------------------------------------------------------------------

class DeduplicateItemsProperties(TaskBase):
    from_: str = Field(alias="from", description="The kestra:/// URI of the file: one JSON or Ion value per line.")
    expr: str = Field(description="An expression giving each item's key (its fields are variables); the last "
                                  "item of each key is kept.")


def run_deduplicate(props: DeduplicateItemsProperties, ctx: RunContext) -> dict:
    """Two passes over the file, as Kestra: the first finds each key's last line, the second writes
    those lines. Memory holds one entry per distinct key, never the items."""
    location = readable(ctx, props.from_, "from")
    scope = _Scope(ctx)

    def key_of(number: int, line: bytes, item: Any) -> str:
        try:
            return render(props.expr, scope.of(item), hooks=scope.hooks)
        except TemplateError as error:
            raise TaskFailure(f"expr fails on line {number}: {error}: {_shown(line)}") from None

    last: dict[str, int] = {}
    for number, line, item in _items(ctx, location, "from"):
        last[key_of(number, line, item)] = number
    processed = dropped = 0
    with workspace() as folder:
        target = Path(folder) / "deduplicated"
        with open(target, "wb") as out:
            for number, line, item in _items(ctx, location, "from"):
                processed += 1
                if last.get(key_of(number, line, item)) == number:
                    out.write(line + b"\n")
                else:
                    dropped += 1
        uri = store(ctx, target, ctx.job["task"]["id"] + _extension(location), "from")
    return {"uri": uri, "numKeys": len(last), "processedItemsTotal": processed, "droppedItemsTotal": dropped}


# The expressions are evaluated per item, not rendered before the task runs.
_register("FilterItems", FilterItemsProperties, run_filter, "Keep or drop the items of a file by an expression",
          raw=frozenset({"filterCondition"}))
_register("DeduplicateItems", DeduplicateItemsProperties, run_deduplicate,
          "Keep the last item of each key of a file", raw=frozenset({"expr"}))

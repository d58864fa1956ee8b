"""The errors of the flow language, shaped for the person who wrote the flow: where (the property
path and the line) and why. Nothing here may carry a library's traceback or help-page text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Union

PathPart = Union[str, int]
Path = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: Iterable[PathPart]) -> str:
    """`("tasks", 1, "message")` -> `tasks[1].message`; keys that are not plain names are quoted,
    so that a label `system.id` reads `labels["system.id"]` and not `labels.system.id`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


@dataclass(frozen=True)
class FlowError:
    path: str  # dotted, e.g. "tasks[1].message"; "" for the document itself
    message: str
    line: int | None = None  # 1-based, when the source text is known

    def __str__(self) -> str:
        if self.path and self.line is not None:
            return f"{self.path} (line {self.line}): {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        if self.line is not None:
            return f"line {self.line}: {self.message}"
        return self.message


class FlowValidationError(ValueError):
    """A flow was refused. `errors` lists every problem found, not only the first."""

    def __init__(self, errors: Iterable[FlowError]) -> None:
        self.errors: list[FlowError] = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class FlowSyntaxError(FlowValidationError):
    """The text is not a YAML document Harrier accepts (bad syntax, a refused tag, a duplicate key,
    too large or too deep). It is a FlowValidationError too, so one `except` catches both."""

    def __init__(self, message: str, line: int | None = None, path: Iterable[PathPart] = ()) -> None:
        self.message = message
        self.line = line
        super().__init__([FlowError(format_path(path), message, line)])

"""`io.kestra.plugin.core.flow.LoopUntil`: Kestra's later name of WaitFor, with other defaults
for `checkFrequency` (no iteration or duration limit, interval PT1M). Its properties are
WaitFor's; it is a type of its own so that each keeps its defaults."""

from __future__ import annotations

from executor.flowables.base import names
from executor.flowables.wait_for import LoopProperties
from workers.registry import TaskType, register

NAME, ALIASES = names("LoopUntil")

register(TaskType(name=NAME, properties=LoopProperties, kind="flowable", aliases=ALIASES,
                  title="Run tasks until a condition holds"))

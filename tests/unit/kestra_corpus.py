"""Kestra's flow corpus (../shared/compat/kestra/flows), as the flow-language tests read it: the
invalid flows, and the valid flows whose task and trigger types Harrier declares."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from orchestrator.flowlang import FlowSyntaxError, flow_tasks, load_yaml
from orchestrator.messages import DEFAULT_WORKER_GROUP
from scheduler import triggers as trigger_registry
from workers import registry

# Beside the checkout, as for tests/compat; HARRIER_COMPAT_DIR points elsewhere.
CORPUS = Path(
    os.environ.get("HARRIER_COMPAT_DIR", Path(__file__).resolve().parents[3] / "shared" / "compat" / "kestra")
)
INVALIDS = CORPUS / "flows" / "invalids"
VALIDS = CORPUS / "flows" / "valids"
PRESENT = INVALIDS.is_dir() and VALIDS.is_dir()
MISSING_REASON = f"the Kestra corpus is not at {CORPUS} (set HARRIER_COMPAT_DIR)"

# What deploy passes when HARRIER_WORKER_GROUPS is not set (orchestrator/repository.py).
DEPLOY_GROUPS = frozenset({DEFAULT_WORKER_GROUP})


def flow_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if path.suffix in (".yaml", ".yml"))


def undeclared_types(path: Path) -> set[str]:
    """Task and trigger types of a flow that Harrier does not declare (yet)."""
    try:
        data = load_yaml(path.read_bytes()).data
    except FlowSyntaxError:
        return set()  # unreadable: it stays among the flows to accept, and their test says why
    missing = {str(task.get("type")) for _, task in flow_tasks(data) if registry.get(str(task.get("type"))) is None}
    for trigger in data.get("triggers") or ():
        if isinstance(trigger, dict) and trigger_registry.get(str(trigger.get("type"))) is None:
            missing.add(str(trigger.get("type")))
    return missing


@lru_cache(maxsize=1)
def declared_valids() -> tuple[str, ...]:
    """The valid flows whose every task and trigger type is declared: a new type joins the set by
    being registered, with no list to update."""
    return tuple(name for name in flow_files(VALIDS) if not undeclared_types(VALIDS / name))

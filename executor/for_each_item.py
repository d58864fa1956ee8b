"""The executor shell's part of ForEachItem (the decisions are in executor/core/flowables/for_each_item.py):
reading how far a task run's subflow executions are, and a subflow execution leaving its flow
outputs for the parent's `<id>_merge` when it ends.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from django.db.models import Count

from executor.core.decide import SubflowCounts
from executor.flowables.for_each_item import ITEMS, NAME
from orchestrator.models import Execution
from orchestrator.states import ACTIVE, State

logger = logging.getLogger("harrier.executor")

# The trigger variable naming where a batch's subflow execution leaves its flow outputs.
OUTPUTS_VARIABLE = "subflowOutputsUri"
_ACTIVE = [state.value for state in ACTIVE]


def _children(execution_id: str, task_run_id: str):
    return Execution.objects.filter(parent_id=execution_id, trigger__variables__taskRunId=task_run_id)


def subflow_counts(execution_id: str, task_run_id: str) -> SubflowCounts:
    """Two aggregate queries over the task run's subflow executions (indexed by parent): the
    batches started — each once, by its first attempt — and the executions by state, leaving
    out attempts a flow retry replaced."""
    children = _children(execution_id, task_run_id)
    started = children.filter(original_id__isnull=True).count()
    states = dict(children.exclude(state=State.RETRIED.value).order_by().values_list("state")
                  .annotate(count=Count("id")))
    return SubflowCounts(started=started, states=states)


def active_children(execution_id: str, task_run_id: str) -> list[str]:
    """The subflow executions of a task run that have not ended (to kill with their parent)."""
    return list(_children(execution_id, task_run_id).filter(state__in=_ACTIVE).values_list("id", flat=True))


def trigger(run_task_id: str, task_type: str, variables: dict[str, Any], iteration: int | None,
            outputs_uri: str | None) -> dict[str, Any]:
    """The trigger of a subflow execution. A ForEachItem batch's names the ForEachItem's type (so
    that its tasks may read the parent's files, as a Subflow's can), its `taskRunIteration`, and
    where it leaves its outputs."""
    if iteration is None:
        return {"id": run_task_id, "type": task_type, "variables": variables}
    variables = {**variables, "taskRunIteration": iteration}
    if outputs_uri is not None:
        variables[OUTPUTS_VARIABLE] = outputs_uri
    return {"id": run_task_id, "type": NAME if task_type == ITEMS else task_type, "variables": variables}


def leave_outputs(execution: Execution) -> str | None:
    """An ended batch execution writes its flow outputs, one JSON line (which Ion readers read
    too), where its parent's `<id>_merge` looks. Only into the parent execution's own files, and
    only for a trigger the executor made (it has a parent). A failure is logged, not raised: the
    outputs are then missing from the merged file, and the execution's own outcome stands.
    Returns why it could not, or None."""
    variables = (execution.trigger or {}).get("variables") if isinstance(execution.trigger, Mapping) else None
    if not execution.parent_id or not isinstance(variables, Mapping) or execution.outputs is None:
        return None
    uri = variables.get(OUTPUTS_VARIABLE)
    if not isinstance(uri, str) or execution.trigger.get("type") != NAME:
        return None
    from orchestrator.storage import StorageError, check_scope, get_storage

    try:
        parent = (variables.get("namespace"), variables.get("flowId"), execution.parent_id)
        location = check_scope(uri, *parent)
        line = json.dumps(execution.outputs, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
        get_storage().put(location, line.encode("utf-8"))
    except (StorageError, TypeError, ValueError) as error:
        logger.warning("execution %s could not leave its outputs for its parent: %s", execution.id, error)
        return f"Unable to store the flow outputs for the parent execution {execution.parent_id}: {error}"
    return None

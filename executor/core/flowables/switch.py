"""`io.kestra.plugin.core.flow.Switch`: render `value` once, when the Switch starts, and run in
sequence the tasks of the case whose key is that value (keys compared as text: `1`, `true`), or
`defaults` when none is. No match and no `defaults` fails the Switch, as does a value that cannot
be rendered. The outputs `value` and `defaults` (whether no case matched) are kept on the
Switch's task run, as in Kestra."""

from __future__ import annotations

from typing import Any, Mapping

from executor.core.actions import SetTaskRunState
from executor.core.decide import StepContext, enabled, flowable, run_in_sequence
from executor.core.flowables.common import FlowableError, as_text, chosen_branch, guarded, nested_nodes
from executor.core.model import BRANCH_ERRORS, BRANCH_FINALLY, TaskNode, TaskRunView
from orchestrator.states import State
from orchestrator.templating import TemplateError


@flowable("io.kestra.plugin.core.flow.Switch")
@guarded
def switch(ctx: StepContext, node: TaskNode, run: TaskRunView | None) -> State | None:
    assert run is not None
    cases: Mapping[Any, Any] = node.definition.get("cases") or {}
    children = ctx.by_parent.get(run.id, ())
    if children:
        branches = [nested_nodes(ctx, node, tasks or ()) for tasks in cases.values()]
        branch = chosen_branch(children, [*branches, node.branch("defaults")])
    else:
        try:
            value = as_text(ctx.render(node, run, node.definition.get("value")))
        except TemplateError as error:
            raise FlowableError(f"Unable to render the Switch value: {error}") from None
        key = next((key for key in cases if as_text(key) == value), None)
        matched = key is not None
        ctx.actions.append(SetTaskRunState(run.id, State.RUNNING, outputs={"value": value, "defaults": not matched}))
        if matched:
            branch = nested_nodes(ctx, node, cases[key] or ())
        elif node.definition.get("defaults") is not None:
            branch = node.branch("defaults")
        else:
            raise FlowableError(f"No case matches the value `{value}` and the Switch has no defaults "
                                f"(cases: {', '.join(as_text(key) for key in cases) or 'none'})")
    return run_in_sequence(ctx, run.id, enabled(branch), enabled(node.branch(BRANCH_ERRORS)),
                           enabled(node.branch(BRANCH_FINALLY)))

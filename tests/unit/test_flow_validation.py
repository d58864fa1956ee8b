"""Deploy-time validation of flows (orchestrator/flowlang): Kestra's own corpus of invalid flows is
refused, each for the reason its name gives; its valid flows are accepted whenever their task
types are declared; and the rules one by one, each with its path, reason and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.flowlang import (
    FlowError, FlowSyntaxError, FlowValidationError, load_yaml, parse_flow, validate_flow_data,
)
from tests.unit.kestra_corpus import (
    DEPLOY_GROUPS, INVALIDS, MISSING_REASON, PRESENT, VALIDS, declared_valids, flow_files,
)

if not PRESENT:
    pytest.skip(MISSING_REASON, allow_module_level=True)

# Every invalid flow of the corpus, with what its refusal must say. A new file in invalids/ fails
# test_every_invalid_flow_has_an_expected_reason until its reason is written here.
EXPECTED_REFUSALS: dict[str, tuple[str, ...]] = {
    "dag-cyclicdependency.yaml": ("tasks[0].tasks (line 7): cyclic dependency between tasks: task1 -> task2 -> task1",),
    "dag-notexist-task.yaml": ("tasks[0].tasks[1].dependsOn[0] (line 17): 'taskX' is not a task of this Dag",),
    "duplicate-inputs.yaml": ("inputs[1].id (line 8): duplicate input id 'first_input'",),
    "duplicate-key.yaml": (
        "tasks[0].data[\"variables.tf\"] (line 10): duplicate key 'variables.tf': first at line 8, again at line 10",
    ),
    "duplicate-parallel.yaml": ("(line 38): duplicate task id 't3': also used by tasks[0]",),
    "duplicate.yaml": (
        "tasks[2].tasks[0].id (line 21): duplicate task id 'date'",
        "tasks[2].errors[0].id (line 25): duplicate task id 'date'",
        "errors[0].id (line 30): duplicate task id 'date'",
        "triggers[1].id (line 37): duplicate trigger id 'trigger'",
    ),
    "empty.yaml": ("tasks (line 1): required property 'tasks' is missing",),
    "inputs-bad-type.yaml": ("inputs[0].type (line 5): unknown input type 'FOO'",),
    "inputs-bad-validator-syntax.yaml": ("inputs[0].validator (line 6): '\\\\' is not a valid regular expression",),
    "inputs-validation.yaml": (
        "inputs[0].defaults (line 7): an input of type FILE cannot have `defaults`",
        "inputs[1].itemType (line 10): the items of an ARRAY cannot be of type ARRAY",
    ),
    "inputs.yaml": (
        "inputs[0].type (line 4): required property 'type' is missing",
        "inputs[0].id (line 4): 'wrong one' is not valid",
    ),
    "invalid-parallel.yaml": (
        "id (line 1): must not be empty",
        "namespace (line 2): must not be empty",
        "tasks[0].tasks (line 12): required property 'tasks' is missing",
        "tasks[1].tasks (line 18): must not be empty",
        "tasks[2].tasks (line 22): expected a list, got null",
    ),
    "invalid-property.yaml": ("tasks[0].invalid (line 7): unknown property 'invalid'",),
    "invalid-task.yaml": (
        "tasks[0].type (line 12): unknown task type 'io.kestra.plugin.core.debug.MissingTwo'",
        "errors[0].type (line 18): unknown task type 'io.kestra.plugin.core.debug.MissingThree'",
    ),
    "invalid.yaml": (
        "id (line 1): 'my#flow' is not valid",
        "namespace (line 2): 'MY$NAMESPACE' is not valid",
        "tasks[0].id (line 4): required property 'id' is missing",
    ),
    "listener.yaml": ("listeners (line 4): `listeners` were removed from Kestra's flow language",),
    "recursive-flow.yaml": (
        "tasks[0] (line 5): recursive call: this task starts its own flow io.kestra.tests.recursive-flow",
    ),
    "switch-invalid.yaml": ("tasks[0] (line 9): a Switch needs at least one case in `cases` or tasks in `defaults`",),
    "system-labels.yaml": (
        "labels[\"system.label\"] (line 5): label 'system.label': labels starting with 'system.' are set by the "
        "orchestrator itself",
        "labels[\"system.id\"] (line 6): label 'system.id'",
    ),
    "worker-group.yaml": ("tasks[0].workerGroup.key (line 9): worker group 'toto' is not declared",),
    "workingdirectory-invalid.yaml": (
        "tasks[0].tasks[1] (line 11): only runnable tasks can run in a WorkingDirectory; "
        "io.kestra.plugin.core.flow.Pause is a flowable task",
    ),
    "workingdirectory-no-tasks.yaml": ("tasks[0].tasks (line 5): required property 'tasks' is missing",),
}


def refusal(source: str | bytes, **kwargs) -> FlowValidationError:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(source, **kwargs)
    return caught.value


def messages(error: FlowValidationError) -> list[str]:
    return [str(item) for item in error.errors]


# -- the corpus: invalid flows ----------------------------------------------------------------------

def test_every_invalid_flow_has_an_expected_reason():
    assert flow_files(INVALIDS) == sorted(EXPECTED_REFUSALS)


@pytest.mark.parametrize("name", flow_files(INVALIDS))
def test_invalid_flow_is_refused_for_its_reason(name):
    error = refusal((INVALIDS / name).read_bytes(), declared_worker_groups=DEPLOY_GROUPS)
    text = str(error)
    for fragment in EXPECTED_REFUSALS.get(name, ("<no expected reason written for this file>",)):
        assert fragment in text, f"{name}: expected {fragment!r} in:\n{text}"
    for item in error.errors:
        assert item.message and item.line is not None, item
        assert "Traceback" not in item.message and "pydantic" not in item.message


@pytest.mark.parametrize("name", [name for name in flow_files(INVALIDS) if name != "duplicate-key.yaml"])
def test_invalid_flow_given_as_data_is_refused_the_same_way(name):
    """The API may send parsed data: the same problems, only without lines."""
    source = (INVALIDS / name).read_bytes()
    from_text = refusal(source, declared_worker_groups=DEPLOY_GROUPS)
    with pytest.raises(FlowValidationError) as caught:
        validate_flow_data(load_yaml(source).data, declared_worker_groups=DEPLOY_GROUPS)
    assert {(e.path, e.message) for e in caught.value.errors} == {(e.path, e.message) for e in from_text.errors}
    assert all(e.line is None for e in caught.value.errors)


# -- the corpus: valid flows ------------------------------------------------------------------------

ALL_VALIDS = flow_files(VALIDS)
DECLARED_VALIDS = list(declared_valids())


def test_most_valid_flows_have_their_task_types_declared():
    # Guards against the accepted set shrinking to nothing (a registry that fails to load, a
    # moved corpus) while the parametrized test below still passes.
    assert len(DECLARED_VALIDS) >= 100
    assert len(DECLARED_VALIDS) >= 0.8 * len(ALL_VALIDS), sorted(set(ALL_VALIDS) - set(DECLARED_VALIDS))


@pytest.mark.parametrize("name", DECLARED_VALIDS)
def test_valid_flow_is_accepted(name):
    source = (VALIDS / name).read_bytes()
    try:
        flow = parse_flow(source, declared_worker_groups=DEPLOY_GROUPS)
    except FlowValidationError as error:
        pytest.fail(f"{name} was refused:\n{error}")
    assert flow.id and flow.namespace
    assert flow.data == load_yaml(source).data  # kept as written: no defaults filled in


# -- focused rules ----------------------------------------------------------------------------------

HEAD = "id: focused\nnamespace: io.kestra.tests\n"
LOG = "io.kestra.plugin.core.log.Log"


def flow(body: str) -> str:
    return HEAD + body


def test_a_valid_flow_gives_its_definition():
    definition = parse_flow(flow(f"tasks:\n  - id: hello\n    type: {LOG}\n    message: hi\n"))
    assert (definition.id, definition.namespace) == ("focused", "io.kestra.tests")
    assert definition.task_ids() == ("hello",)
    assert definition.source.startswith("id: focused")


def test_error_messages_read_path_line_reason():
    error = refusal(flow(f"tasks:\n  - id: hello\n    type: {LOG}\n    mesage: hi\n"))
    assert messages(error) == [
        "tasks[0].message (line 4): required property 'message' is missing",
        "tasks[0].mesage (line 6): unknown property 'mesage'; did you mean 'message'?",
    ]
    assert error.errors[1] == FlowError("tasks[0].mesage", "unknown property 'mesage'; did you mean 'message'?", 6)


def test_an_unknown_property_deep_in_flowables_names_its_whole_path():
    source = flow(
        "tasks:\n"
        "  - id: outer\n"
        "    type: io.kestra.plugin.core.flow.Sequential\n"
        "    tasks:\n"
        "      - id: branch\n"
        "        type: io.kestra.plugin.core.flow.If\n"
        "        condition: '{{ true }}'\n"
        "        then:\n"
        f"          - id: leaf\n            type: {LOG}\n            message: hi\n            colour: red\n"
    )
    assert messages(refusal(source)) == ["tasks[0].tasks[0].then[0].colour (line 14): unknown property 'colour'"]


def test_an_unknown_flow_property_is_refused_with_a_suggestion():
    error = refusal(flow(f"concurency:\n  limit: 1\ntasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"))
    assert messages(error) == ["concurency (line 3): unknown property 'concurency'; did you mean 'concurrency'?"]


def test_a_value_of_the_wrong_kind_is_refused():
    error = refusal(flow(f"disabled: maybe\ntasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"
                         "    allowFailure: yes please\n    retry:\n      type: constant\n      interval: PT1S\n"
                         "      maxAttempt: three\n"))
    assert messages(error) == [
        "disabled (line 3): expected true or false, got the string 'maybe'",
        "tasks[0].allowFailure (line 8): expected true or false, got the string 'yes please'",
        "tasks[0].retry.maxAttempt (line 12): expected an integer, got the string 'three'",
    ]


def test_an_expression_is_accepted_where_a_typed_value_is_declared():
    parse_flow(flow(
        "tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n    concurrent: '{{ inputs.n }}'\n"
        f"    tasks:\n      - id: a\n        type: {LOG}\n        message: hi\n"
    ))


def test_tasks_cannot_come_from_an_expression():
    error = refusal(flow("tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n"
                         "    tasks: '{{ inputs.tasks }}'\n"))
    assert messages(error) == [
        "tasks[0].tasks (line 6): tasks and inputs are part of the flow's structure and cannot come from an "
        "expression: write them out"
    ]


def test_an_unknown_task_type_is_refused_with_a_suggestion():
    error = refusal(flow("tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Lg\n    message: hi\n"))
    assert messages(error) == [
        "tasks[0].type (line 5): unknown task type 'io.kestra.plugin.core.log.Lg'; "
        "did you mean 'io.kestra.plugin.core.log.Log'?"
    ]


def test_an_unknown_task_type_does_not_hide_a_bad_id():
    error = refusal(flow("tasks:\n  - id: 'bad id'\n    type: com.example.Nope\n  - type: com.example.Nope\n"))
    assert messages(error) == [
        "tasks[0].id (line 4): 'bad id' is not valid: use letters, digits, '_' and '-', starting with a letter "
        "or a digit",
        "tasks[0].type (line 5): unknown task type 'com.example.Nope'",
        "tasks[1].type (line 6): unknown task type 'com.example.Nope'",
        "tasks[1].id (line 6): required property 'id' is missing",
    ]


def test_old_task_type_names_are_accepted():
    parse_flow(flow("tasks:\n  - id: a\n    type: io.kestra.core.tasks.log.Log\n    message: hi\n"
                    "  - id: b\n    type: io.kestra.core.tasks.debugs.Return\n    format: hi\n"))


def test_an_unknown_trigger_type_and_a_bad_schedule_are_refused():
    error = refusal(flow(
        f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"
        "triggers:\n"
        "  - id: every\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '* * *'\n    timezone: Mars/Base\n"
        "  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhok\n    key: k\n"
    ))
    assert messages(error) == [
        "triggers[0].cron (line 10): invalid cron expression '* * *': expected 5 fields, found 3",
        "triggers[0].timezone (line 11): unknown time zone 'Mars/Base'; use a name such as Europe/Paris or UTC",
        "triggers[1].type (line 13): unknown trigger type 'io.kestra.plugin.core.trigger.Webhok'; "
        "did you mean 'io.kestra.plugin.core.trigger.Webhook'?",
    ]


def test_task_ids_are_unique_across_the_whole_flow():
    error = refusal(flow(
        f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"
        "  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n"
        f"    tasks:\n      - id: a\n        type: {LOG}\n        message: hi\n"
        f"errors:\n  - id: p\n    type: {LOG}\n    message: hi\n"
        f"finally:\n  - id: a\n    type: {LOG}\n    message: hi\n"
    ))
    assert messages(error) == [
        "tasks[1].tasks[0].id (line 10): duplicate task id 'a': also used by tasks[0]",
        "errors[0].id (line 14): duplicate task id 'p': also used by tasks[1]",
        "finally[0].id (line 18): duplicate task id 'a': also used by tasks[0]",
    ]


def dag(*items: tuple[str, list]) -> str:
    body = "tasks:\n  - id: dag\n    type: io.kestra.plugin.core.flow.Dag\n    tasks:\n"
    for task_id, depends in items:
        body += f"      - task:\n          id: {task_id}\n          type: {LOG}\n          message: hi\n"
        if depends is not None:
            body += f"        dependsOn: {depends!r}\n"
    return flow(body)


def test_a_dag_without_cycles_is_accepted():
    parse_flow(dag(("a", None), ("b", ["a"]), ("c", ["a", "b"])))


def test_a_dag_cycle_is_refused_with_the_cycle():
    error = refusal(dag(("a", ["c"]), ("b", ["a"]), ("c", ["b"])))
    assert messages(error) == ["tasks[0].tasks (line 6): cyclic dependency between tasks: a -> c -> b -> a"]


def test_a_dag_task_depending_on_itself_is_a_cycle():
    assert "cyclic dependency between tasks: a -> a" in str(refusal(dag(("a", ["a"]),)))


def test_a_dag_dependency_on_an_unknown_task_is_refused():
    error = refusal(dag(("a", None), ("b", ["a", "zzz"])))
    assert messages(error) == [
        "tasks[0].tasks[1].dependsOn[1] (line 15): 'zzz' is not a task of this Dag (its tasks: a, b)"
    ]


def test_a_dag_dependency_of_the_wrong_kind_is_reported_not_a_crash():
    error = refusal(dag(("a", None), ("b", [["a"]])))
    assert messages(error) == ["tasks[0].tasks[1].dependsOn[0] (line 15): expected a string, got a list"]


@pytest.mark.parametrize("body, expected", [
    ("tasks: []\n", ["id (line 1): required property 'id' is missing",
                     "namespace (line 1): required property 'namespace' is missing",
                     "tasks (line 1): must not be empty"]),
    ("id: f\ntasks: []\n", ["namespace (line 1): required property 'namespace' is missing",
                            "tasks (line 2): must not be empty"]),
])
def test_id_namespace_and_tasks_are_required(body, expected):
    assert messages(refusal(body)) == expected


@pytest.mark.parametrize("key, value, rule", [
    ("id", "my flow", "use letters, digits, '.', '_' and '-', starting with a letter or a digit"),
    ("id", "-flow", "use letters, digits, '.', '_' and '-', starting with a letter or a digit"),
    ("namespace", "Company.Team", "use lowercase letters, digits, '.', '_' and '-'"),
    ("namespace", "team/flows", "use lowercase letters, digits, '.', '_' and '-'"),
])
def test_flow_id_and_namespace_follow_kestra_rules(key, value, rule):
    values = {"id": "f", "namespace": "n", key: value}
    source = f"id: '{values['id']}'\nnamespace: '{values['namespace']}'\ntasks:\n  - id: a\n    type: {LOG}\n" \
             "    message: hi\n"
    line = 1 if key == "id" else 2
    error = refusal(source)
    assert len(error.errors) == 1
    assert str(error).startswith(f"{key} (line {line}): {value!r} is not valid: {rule}")


@pytest.mark.parametrize("task_id", ["with space", "dotted.id", "é", "-dash-first"])
def test_a_task_id_follows_kestra_rules(task_id):
    error = refusal(flow(f"tasks:\n  - id: '{task_id}'\n    type: {LOG}\n    message: hi\n"))
    assert messages(error) == [f"tasks[0].id (line 4): {task_id!r} is not valid: use letters, digits, '_' and '-', "
                               "starting with a letter or a digit"]


def test_a_numeric_flow_id_is_the_text_written():
    definition = parse_flow(f"id: 2024\nnamespace: n\ntasks:\n  - id: a\n    type: {LOG}\n    message: hi\n")
    assert definition.id == "2024"


def test_listeners_are_refused_with_what_to_use_instead():
    error = refusal(flow(f"listeners:\n  - tasks:\n      - id: l\n        type: {LOG}\n        message: hi\n"
                         f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"))
    assert len(error.errors) == 1
    assert error.errors[0].path == "listeners" and error.errors[0].line == 3
    assert "use `afterExecution` tasks, or a Flow trigger" in error.errors[0].message


def test_every_problem_is_reported_at_once_in_document_order():
    error = refusal(
        "id: 'bad id'\n"
        "namespace: n\n"
        "tasks:\n"
        f"  - id: a\n    type: {LOG}\n"
        "  - id: a\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n    extra: 1\n"
    )
    assert [(item.path, item.line) for item in error.errors] == [
        ("id", 1), ("tasks[0].message", 4), ("tasks[1].id", 6), ("tasks[1].extra", 9),
    ]


def test_data_without_text_is_validated_without_lines():
    with pytest.raises(FlowValidationError) as caught:
        validate_flow_data({"id": "f", "namespace": "n", "tasks": [{"id": "a", "type": LOG}]})
    assert messages(caught.value) == ["tasks[0].message: required property 'message' is missing"]
    definition = validate_flow_data({"id": "f", "namespace": "n", "tasks": [{"id": "a", "type": LOG, "message": "hi"}]})
    assert parse_flow(definition.source).data == definition.data


@pytest.mark.parametrize("data, fragment", [
    ([], "a flow must be a mapping"),
    ({"id": "f", "namespace": "n", "tasks": [object()]}, "a flow holds only plain values"),
    ({"id": "f", 1: "x"}, "mapping keys must be strings"),
])
def test_data_that_is_not_plain_is_refused(data, fragment):
    with pytest.raises(FlowSyntaxError, match=fragment):
        validate_flow_data(data)


def test_worker_groups_are_checked_against_the_declared_ones():
    source = flow(f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n    workerGroup:\n      key: gpu\n"
                  "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"
                  "    workerGroup:\n      key: cpu\n")
    parse_flow(source)  # not checked when the caller declares nothing (e.g. reading a stored revision)
    parse_flow(source, declared_worker_groups=frozenset({"default", "gpu", "cpu"}))
    error = refusal(source, declared_worker_groups=DEPLOY_GROUPS)
    assert messages(error) == [
        "tasks[0].workerGroup.key (line 8): worker group 'gpu' is not declared; declared: default (the operator "
        "declares worker groups with HARRIER_WORKER_GROUPS)",
        "triggers[0].workerGroup.key (line 14): worker group 'cpu' is not declared; declared: default (the "
        "operator declares worker groups with HARRIER_WORKER_GROUPS)",
    ]


def test_system_labels_are_refused_in_both_label_forms_except_read_only():
    parse_flow(flow(f"labels:\n  system.readOnly: 'true'\ntasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"))
    error = refusal(flow("labels:\n  - key: system.readOnly\n    value: 'true'\n  - key: system.correlationId\n"
                         f"    value: x\ntasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"))
    assert [item.path for item in error.errors] == ["labels[1].key"]
    assert "label 'system.correlationId': labels starting with 'system.' are set by the orchestrator" in str(error)


@pytest.mark.parametrize("task", [
    "type: io.kestra.plugin.core.flow.Subflow\n    namespace: io.kestra.tests\n    flowId: focused\n",
    "type: io.kestra.core.tasks.flows.Flow\n    namespace: io.kestra.tests\n    flowId: focused\n",
    "type: io.kestra.plugin.core.flow.ForEachItem\n    items: '{{ inputs.file }}'\n    batch:\n      rows: 1\n"
    "    namespace: io.kestra.tests\n    flowId: focused\n",
])
def test_a_task_starting_its_own_flow_is_refused(task):
    error = refusal(flow(f"tasks:\n  - id: again\n    {task}"))
    assert messages(error) == ["tasks[0] (line 4): recursive call: this task starts its own flow io.kestra.tests.focused"]


def test_a_subflow_of_another_flow_is_accepted():
    parse_flow(flow("tasks:\n  - id: other\n    type: io.kestra.plugin.core.flow.Subflow\n"
                    "    namespace: io.kestra.tests\n    flowId: another\n"))


def test_a_subflow_of_a_numeric_flow_id_is_recognised_as_recursive():
    error = refusal("id: 2024\nnamespace: n\ntasks:\n  - id: again\n    type: io.kestra.plugin.core.flow.Subflow\n"
                    "    namespace: n\n    flowId: '2024'\n")
    assert "recursive call" in str(error)


@pytest.mark.parametrize("cases, defaults, refused", [
    ("{}", "null", True),
    (None, "[]", True),
    (None, None, True),
    (f"\n      A:\n        - id: a\n          type: {LOG}\n          message: hi", None, False),
    (None, f"\n      - id: a\n        type: {LOG}\n        message: hi", False),
])
def test_a_switch_needs_a_case_or_defaults(cases, defaults, refused):
    body = "tasks:\n  - id: s\n    type: io.kestra.plugin.core.flow.Switch\n    value: '{{ inputs.x }}'\n"
    if cases is not None:
        body += f"    cases: {cases}\n"
    if defaults is not None:
        body += f"    defaults: {defaults}\n"
    if refused:
        assert "a Switch needs at least one case in `cases` or tasks in `defaults`" in str(refusal(flow(body)))
    else:
        parse_flow(flow(body))


def working_directory(children: str) -> str:
    return flow(f"tasks:\n  - id: wd\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:{children}")


def test_a_working_directory_runs_runnable_tasks():
    parse_flow(working_directory(f"\n      - id: a\n        type: {LOG}\n        message: hi\n"))


def test_a_working_directory_refuses_flowables_and_child_worker_groups():
    error = refusal(working_directory(
        "\n      - id: seq\n        type: io.kestra.plugin.core.flow.Sequential\n        tasks:\n"
        f"          - id: a\n            type: {LOG}\n            message: hi\n"
        f"      - id: b\n        type: {LOG}\n        message: hi\n        workerGroup:\n          key: gpu\n"
    ))
    assert messages(error) == [
        "tasks[0].tasks[0] (line 7): only runnable tasks can run in a WorkingDirectory; "
        "io.kestra.plugin.core.flow.Sequential is a flowable task",
        "tasks[0].tasks[1].workerGroup (line 16): set `workerGroup` on the WorkingDirectory itself, not on the "
        "tasks inside it",
    ]


def test_a_working_directory_needs_tasks():
    assert messages(refusal(working_directory(" []\n"))) == ["tasks[0].tasks (line 6): must not be empty"]


@pytest.mark.parametrize("timeout, problem", [
    ("banana", "'banana' is not an ISO-8601 duration such as PT30S, PT5M or P1D"),
    ("-5", "a duration cannot be negative"),
    ("true", "expected an ISO-8601 duration such as PT30S, PT5M or P1D"),
    ("P999999999999D", "'P999999999999D' is out of the range of a duration"),
    ("1.0e+400", "inf is out of the range of a duration"),
])
def test_a_task_timeout_is_a_duration(timeout, problem):
    error = refusal(flow(f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n    timeout: {timeout}\n"))
    assert messages(error) == [f"tasks[0].timeout (line 7): {problem}"]


@pytest.mark.parametrize("timeout", ["PT5M", "PT0.5S", "P1DT2H", "30", "'{{ inputs.timeout }}'"])
def test_a_valid_task_timeout_is_accepted(timeout):
    parse_flow(flow(f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n    timeout: {timeout}\n"))


def test_a_retry_is_checked_like_the_flows():
    error = refusal(flow(f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"
                         "    retry:\n      type: constant\n      interval: PT1M\n      maxDuration: PT30S\n"))
    assert messages(error) == [
        "tasks[0].retry (line 7): 'maxDuration' must be longer than the interval between attempts"
    ]


def test_an_input_with_a_missing_type_still_has_its_id_checked():
    error = refusal(flow(f"inputs:\n  - id: 'bad id'\ntasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"))
    assert [item.path for item in error.errors] == ["inputs[0].type", "inputs[0].id"]


@pytest.mark.parametrize("item_type", ["[ARRAY]", "{a: 1}"])
def test_an_input_item_type_of_the_wrong_kind_is_reported_not_a_crash(item_type):
    error = refusal(flow(f"inputs:\n  - id: values\n    type: ARRAY\n    itemType: {item_type}\n"
                         f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"))
    assert [item.path for item in error.errors] == ["inputs[0].itemType"]


def test_input_dependencies_of_the_wrong_kind_are_reported_not_a_crash():
    error = refusal(flow("inputs:\n  - id: a\n    type: STRING\n    dependsOn:\n      inputs: [[b]]\n"
                         f"tasks:\n  - id: t\n    type: {LOG}\n    message: hi\n"))
    assert [item.path for item in error.errors] == ["inputs[0].dependsOn.inputs[0]"]


def test_a_flow_output_id_is_unique():
    error = refusal(flow(f"tasks:\n  - id: a\n    type: {LOG}\n    message: hi\n"
                         "outputs:\n  - id: o\n    type: STRING\n    value: x\n  - id: o\n    type: STRING\n"
                         "    value: y\n"))
    assert messages(error) == ["outputs[1].id (line 11): duplicate output id 'o': also used by outputs[0]"]


def test_the_examples_of_the_user_documentation_hold():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "flow-language.md").read_text(encoding="utf-8")
    valid, invalid = re.findall(r"```yaml\n(.*?)```", doc, re.S)[:2]
    parse_flow(valid)
    for line in messages(refusal(invalid)):
        assert f"  {line}\n" in doc, line

"""The flow's JSON Schema (orchestrator/flowlang/schema.py): a valid draft 2020-12 schema, generated
from the declarations so that it covers every task, trigger and input type with its properties,
and agreeing with the validator on the corpus."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest
from jsonschema import Draft202012Validator

from orchestrator.flowlang import flow_json_schema, load_yaml, parse_flow
from orchestrator.flowlang.models import INPUT_TYPES, FlowModel, input_model
from orchestrator.flowlang.schema import DRAFT
from scheduler import triggers as trigger_registry
from tests.unit.kestra_corpus import DEPLOY_GROUPS, INVALIDS, PRESENT, VALIDS, declared_valids
from workers import registry

LOG = "io.kestra.plugin.core.log.Log"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return flow_json_schema()


@pytest.fixture(scope="module")
def validator(schema) -> Draft202012Validator:
    return Draft202012Validator(schema)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def errors(validator: Draft202012Validator, data: dict) -> list[tuple[list, str]]:
    return [(list(error.absolute_path), error.message) for error in validator.iter_errors(data)]


def property_names(model) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def discriminated(schema: dict, union: str) -> dict[str, dict]:
    """type name -> the $defs entry its `if`/`then` selects, for Task, Trigger or Input."""
    defs = schema["$defs"]
    selected = {}
    for rule in defs[union]["allOf"]:
        name = rule["if"]["properties"]["type"]["const"]
        selected[name] = defs[rule["then"]["$ref"].removeprefix("#/$defs/")]
    return selected


# -- a schema editors and validators can use ----------------------------------------------------------

def test_the_schema_is_valid_draft_2020_12(schema):
    assert schema["$schema"] == DRAFT == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_the_schema_is_json_and_every_reference_resolves(schema):
    assert json.loads(json.dumps(schema)) == schema
    for node in walk(schema):
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"], ref
        assert not any(str(key).startswith("x-harrier-") for key in node), "a declaration marker was left in"


def test_each_call_gives_a_fresh_copy():
    first = flow_json_schema()
    first["$defs"].clear()
    assert flow_json_schema()["$defs"]


def test_the_flow_properties_are_the_declared_ones(schema):
    assert set(schema["properties"]) == property_names(FlowModel)
    assert set(schema["required"]) == {"id", "namespace", "tasks"}
    assert schema["additionalProperties"] is False


# -- coverage of the declarations -----------------------------------------------------------------------

def test_every_task_type_and_alias_is_described_with_its_properties(schema):
    names = {branch["const"] for branch in schema["$defs"]["Task"]["properties"]["type"]["oneOf"]}
    selected = discriminated(schema, "Task")
    declared = registry.canonical_types()
    assert len(declared) >= 20
    for task_type in declared:
        for name in (task_type.name, *task_type.aliases):
            assert name in names, name
            definition = selected[name]
            assert set(definition["properties"]) == property_names(task_type.properties), name
            assert {"id", "type"} <= set(definition["required"]), name
            assert definition["additionalProperties"] is False, name
    internal = {name for name, task_type in registry.REGISTRY.items() if task_type.internal}
    assert names == set(selected) == set(registry.REGISTRY) - internal


def test_task_types_carry_their_titles_for_completion(schema):
    titles = {branch["const"]: branch.get("description") for branch in schema["$defs"]["Task"]["properties"]["type"]["oneOf"]}
    for task_type in registry.canonical_types():
        if task_type.title:
            assert titles[task_type.name] == task_type.title


def test_every_trigger_type_is_described_with_its_properties(schema):
    selected = discriminated(schema, "Trigger")
    for trigger_type in trigger_registry.canonical_types():
        for name in (trigger_type.name, *trigger_type.aliases):
            assert set(selected[name]["properties"]) == property_names(trigger_type.properties), name
    assert set(selected) == set(trigger_registry.REGISTRY)


def test_every_input_type_is_described_with_its_properties(schema):
    selected = discriminated(schema, "Input")
    assert set(selected) == set(INPUT_TYPES)
    for input_type in INPUT_TYPES:
        assert set(selected[input_type]["properties"]) == property_names(input_model(input_type)), input_type


def test_every_place_that_holds_tasks_refers_to_the_task_union(schema):
    selected = discriminated(schema, "Task")
    holders = {
        "flow.tasks": schema["properties"]["tasks"],
        "flow.errors": schema["properties"]["errors"],
        "flow.finally": schema["properties"]["finally"],
        "flow.afterExecution": schema["properties"]["afterExecution"],
    }
    for task_type in registry.canonical_types():
        for name in registry.task_list_properties(task_type):
            holders[f"{task_type.name}.{name}"] = selected[task_type.name]["properties"][name]
    assert "io.kestra.plugin.core.flow.If.then" in holders
    for where, holder in holders.items():
        assert '"#/$defs/Task"' in json.dumps(holder), where
    # Structure inside a structure: a Switch's cases, a Dag's tasks[].task.
    assert '"#/$defs/Task"' in json.dumps(selected["io.kestra.plugin.core.flow.Switch"]["properties"]["cases"])
    dag_item = selected["io.kestra.plugin.core.flow.Dag"]["properties"]["tasks"]
    assert '"#/$defs/Task"' in json.dumps([schema["$defs"][ref.removeprefix("#/$defs/")]
                                          for ref in (n.get("$ref") for n in walk(dag_item)) if ref])


# -- validating flows ---------------------------------------------------------------------------------

def flow(tasks: list[dict], **extra) -> dict:
    return {"id": "f", "namespace": "io.kestra.tests", "tasks": tasks, **extra}


def test_a_plain_flow_is_valid(validator):
    assert errors(validator, flow([{"id": "a", "type": LOG, "message": "hi"}])) == []


@pytest.mark.parametrize("data, where", [
    (flow([{"id": "a", "type": "io.kestra.plugin.core.log.Lg", "message": "hi"}]), ["tasks", 0, "type"]),
    (flow([{"id": "a", "type": LOG}]), ["tasks", 0]),  # message is required
    (flow([{"id": "a", "type": LOG, "message": "hi", "colour": "red"}]), ["tasks", 0]),
    (flow([{"id": "a", "type": LOG, "message": "hi", "allowFailure": "yes"}]), ["tasks", 0, "allowFailure"]),
    (flow([{"id": "bad id", "type": LOG, "message": "hi"}]), ["tasks", 0, "id"]),
    (flow([{"id": "p", "type": "io.kestra.plugin.core.flow.Parallel",
            "tasks": [{"id": "a", "type": LOG, "message": "hi", "colour": "red"}]}]), ["tasks", 0, "tasks", 0]),
    (flow([{"id": "p", "type": "io.kestra.plugin.core.flow.Parallel", "tasks": "{{ inputs.tasks }}"}]),
     ["tasks", 0, "tasks"]),
    (flow([{"id": "a", "type": LOG, "message": "hi"}], listeners=[]), []),
    (flow([{"id": "a", "type": LOG, "message": "hi"}], disabled="{{ inputs.off }}"), ["disabled"]),
    # Optional lists are `anyOf: [list, null]`: a validator reports the list as a whole.
    (flow([{"id": "a", "type": LOG, "message": "hi"}], triggers=[{"id": "t", "type": "nope"}]), ["triggers"]),
    (flow([{"id": "a", "type": LOG, "message": "hi"}], inputs=[{"id": "x", "type": "FOO"}]), ["inputs"]),
])
def test_the_schema_refuses_what_the_declarations_refuse(validator, data, where):
    found = errors(validator, data)
    assert found, data
    assert any(path == where for path, _ in found), found


def test_expressions_are_allowed_in_task_properties_only(validator):
    data = flow([{"id": "p", "type": "io.kestra.plugin.core.flow.Parallel", "concurrent": "{{ inputs.n }}",
                  "allowFailure": "{{ inputs.soft }}", "tasks": [{"id": "a", "type": LOG, "message": "hi"}]}])
    assert errors(validator, data) == []


def test_nested_flowables_are_validated_in_linear_time(validator):
    # A `oneOf` of whole task schemas costs (number of types) ** depth: this took minutes.
    task: dict = {"id": "leaf", "type": LOG, "message": "hi"}
    for depth in range(20):
        task = {"id": f"level{depth}", "type": "io.kestra.plugin.core.flow.Parallel", "tasks": [task]}
    data = flow([task])
    parse_flow(json.dumps(data))
    start = time.perf_counter()
    assert errors(validator, data) == []
    assert time.perf_counter() - start < 2.0


# -- agreement with the validator on the corpus ----------------------------------------------------------

corpus = pytest.mark.skipif(not PRESENT, reason="the Kestra corpus is not present")


@corpus
def test_the_schema_is_checked_against_enough_of_the_corpus():
    assert len(declared_valids()) >= 100


@corpus
@pytest.mark.parametrize("name", declared_valids())
def test_the_schema_accepts_the_valid_flows(validator, name):
    source = (VALIDS / name).read_bytes()
    parse_flow(source, declared_worker_groups=DEPLOY_GROUPS)
    assert errors(validator, load_yaml(source).data) == []


# The invalid flows whose reason a schema can state (unknown or missing properties, patterns,
# kinds). The others break rules that span several values — unique ids, a Dag's dependencies,
# recursion, declared worker groups — which only the validator checks (schema.py says so).
SCHEMA_REFUSES = [
    "duplicate.yaml", "empty.yaml", "inputs-bad-type.yaml", "inputs.yaml", "invalid-parallel.yaml",
    "invalid-property.yaml", "invalid-task.yaml", "invalid.yaml", "listener.yaml", "system-labels.yaml",
    "workingdirectory-no-tasks.yaml",
]


@corpus
@pytest.mark.parametrize("name", SCHEMA_REFUSES)
def test_the_schema_refuses_the_invalid_flows_it_can(validator, name):
    assert errors(validator, load_yaml((INVALIDS / name).read_bytes()).data)

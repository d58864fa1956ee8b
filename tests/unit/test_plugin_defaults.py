"""pluginDefaults / taskDefaults: what a flow's tasks run with, and how validation sees them."""

import pytest

from orchestrator.flowlang import FlowValidationError, parse_flow
from orchestrator.flowlang.defaults import with_plugin_defaults

LOG = "io.kestra.plugin.core.log.Log"


def flow(tasks, defaults, key="pluginDefaults", **extra):
    return {"id": "f", "namespace": "n", "tasks": tasks, key: defaults, **extra}


def test_a_default_fills_a_property_the_task_leaves_out():
    data = flow([{"id": "a", "type": LOG}], [{"type": LOG, "values": {"message": "hi", "level": "WARN"}}])
    task = with_plugin_defaults(data)["tasks"][0]
    assert task == {"id": "a", "type": LOG, "message": "hi", "level": "WARN"}


def test_the_task_wins_over_a_default_that_is_not_forced():
    data = flow([{"id": "a", "type": LOG, "message": "mine"}], [{"type": LOG, "values": {"message": "default"}}])
    assert with_plugin_defaults(data)["tasks"][0]["message"] == "mine"


def test_a_forced_default_wins_over_the_task():
    data = flow([{"id": "a", "type": LOG, "message": "mine"}],
                [{"type": LOG, "forced": True, "values": {"message": "forced"}}])
    assert with_plugin_defaults(data)["tasks"][0]["message"] == "forced"


def test_id_and_type_are_never_defaulted():
    data = flow([{"id": "a", "type": LOG, "message": "m"}],
                [{"type": LOG, "forced": True, "values": {"id": "b", "type": "x", "level": "ERROR"}}])
    task = with_plugin_defaults(data)["tasks"][0]
    assert (task["id"], task["type"], task["level"]) == ("a", LOG, "ERROR")


def test_maps_merge_key_by_key_and_lists_are_taken_whole():
    task = {"id": "a", "type": "io.kestra.plugin.core.debug.Return", "format": "x",
            "retry": {"type": "constant", "maxAttempt": 2}}
    data = flow([task], [{"type": "io.kestra.plugin.core.debug", "values": {
        "retry": {"type": "constant", "interval": "PT1S", "maxAttempt": 5}, "tags": ["a", "b"]}}])
    result = with_plugin_defaults(data)["tasks"][0]
    assert result["retry"] == {"type": "constant", "interval": "PT1S", "maxAttempt": 2}
    assert result["tags"] == ["a", "b"]


def test_a_prefix_matches_every_type_under_it_and_only_those():
    tasks = [{"id": "a", "type": LOG, "message": "m"}, {"id": "b", "type": "io.kestra.plugin.core.debug.Return",
                                                         "format": "x"}]
    data = flow(tasks, [{"type": "io.kestra.plugin.core.log", "values": {"level": "WARN"}}])
    result = with_plugin_defaults(data)["tasks"]
    assert result[0]["level"] == "WARN" and "level" not in result[1]


def test_a_prefix_does_not_match_part_of_a_name():
    data = flow([{"id": "a", "type": LOG, "message": "m"}], [{"type": "io.kestra.plugin.core.lo", "values": {"level": "WARN"}}])
    assert "level" not in with_plugin_defaults(data)["tasks"][0]


def test_older_type_names_match_both_ways():
    data = flow([{"id": "a", "type": "io.kestra.core.tasks.log.Log", "message": "m"}],
                [{"type": LOG, "values": {"level": "WARN"}}])
    assert with_plugin_defaults(data)["tasks"][0]["level"] == "WARN"
    data = flow([{"id": "a", "type": LOG, "message": "m"}],
                [{"type": "io.kestra.core.tasks.log.Log", "values": {"level": "ERROR"}}], key="taskDefaults")
    assert with_plugin_defaults(data)["tasks"][0]["level"] == "ERROR"


def test_nested_tasks_and_error_branches_get_defaults():
    data = flow([{"id": "seq", "type": "io.kestra.plugin.core.flow.Sequential",
                  "tasks": [{"id": "inner", "type": LOG}]}],
                [{"type": LOG, "values": {"message": "deep"}}],
                errors=[{"id": "e", "type": LOG}])
    result = with_plugin_defaults(data)
    assert result["tasks"][0]["tasks"][0]["message"] == "deep"
    assert result["errors"][0]["message"] == "deep"


def test_the_flow_as_written_is_left_unchanged():
    data = flow([{"id": "a", "type": LOG}], [{"type": LOG, "values": {"message": "hi"}}])
    with_plugin_defaults(data)
    assert data["tasks"][0] == {"id": "a", "type": LOG}


def test_a_required_property_may_come_from_a_default():
    source = f"""
id: f
namespace: n
pluginDefaults:
  - type: {LOG}
    values:
      message: from the defaults
tasks:
  - id: a
    type: {LOG}
"""
    definition = parse_flow(source)
    assert "message" not in definition.data["tasks"][0]  # kept as written


def test_without_the_default_the_missing_property_is_reported():
    source = f"""
id: f
namespace: n
tasks:
  - id: a
    type: {LOG}
"""
    with pytest.raises(FlowValidationError) as raised:
        parse_flow(source)
    assert "message" in str(raised.value)


def test_a_default_of_the_wrong_kind_is_reported_on_the_task():
    source = f"""
id: f
namespace: n
pluginDefaults:
  - type: {LOG}
    values:
      message: m
      level: LOUD
tasks:
  - id: a
    type: {LOG}
"""
    with pytest.raises(FlowValidationError) as raised:
        parse_flow(source)
    assert "tasks[0].level" in str(raised.value)

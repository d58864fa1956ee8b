"""The flow YAML loader (orchestrator/flowlang/yaml_loader.py): plain data out, hostile documents
refused early, every refusal with a line a person can go to."""

from __future__ import annotations

import time

import pytest

from orchestrator.flowlang import FlowSyntaxError, FlowValidationError, load_yaml, parse_flow
from orchestrator.flowlang import yaml_loader
from orchestrator.flowlang.yaml_loader import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES

# Hostile documents must be refused long before they cost anything; generous for slow CI machines.
QUICK = 2.0


def refusal(source: str | bytes, **kwargs) -> FlowSyntaxError:
    with pytest.raises(FlowSyntaxError) as caught:
        load_yaml(source, **kwargs)
    assert len(caught.value.errors) == 1
    return caught.value


def timed_refusal(source: str | bytes) -> tuple[FlowSyntaxError, float]:
    start = time.perf_counter()
    error = refusal(source)
    return error, time.perf_counter() - start


# -- tags ----------------------------------------------------------------------------------------

def test_python_object_apply_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    source = f"id: x\nnamespace: n\ntasks: !!python/object/apply:os.system ['touch {marker}']\n"
    error = refusal(source)
    assert "'!!python/object/apply:os.system' is not allowed" in error.message
    assert error.line == 3
    assert error.errors[0].path == "tasks"
    assert not marker.exists()


def test_python_tag_is_refused_through_parse_flow_too(tmp_path):
    marker = tmp_path / "ran"
    source = (
        "id: x\nnamespace: n\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
        f"    message: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(source)
    assert str(caught.value).startswith("tasks[0].message (line 6): the YAML tag '!!python/object/apply:os.system'")
    assert not marker.exists()


@pytest.mark.parametrize("source, tag", [
    ("a: !!python/name:os.system x\n", "!!python/name:os.system"),
    ("a: !!python/tuple [1, 2]\n", "!!python/tuple"),
    ("!!python/str a: 1\n", "!!python/str"),
    ("a: !<tag:yaml.org,2002:python/object:os.system> {}\n", "!!python/object:os.system"),
    ("a: !!binary aGVsbG8=\n", "!!binary"),
    ("a: !!set {x, y}\n", "!!set"),
    ("a: !!omap [x: 1]\n", "!!omap"),
    ("a: !local value\n", "!local"),
    ("a: !Ref other\n", "!Ref"),
])
def test_tags_outside_the_core_schema_are_refused_by_name(source, tag):
    error = refusal(source)
    assert f"the YAML tag {tag!r} is not allowed" in error.message
    assert "only the core tags" in error.message
    assert error.line == 1


def test_a_core_tag_on_the_wrong_kind_of_value_is_refused():
    assert refusal("a: !!map [1]\n").message == "the YAML tag '!!map' cannot be written on a list"
    assert refusal("a: !!seq x\n").message == "the YAML tag '!!seq' cannot be written on a plain value"


def test_core_tags_are_accepted():
    data = load_yaml("a: !!str 1\nb: !!int '2'\nc: !!float 3\nd: !!bool true\ne: !!null ''\n"
                     "f: !!seq [1]\ng: !!map {x: 1}\nh: !!timestamp 2024-01-01\n").data
    assert data == {"a": "1", "b": 2, "c": 3.0, "d": True, "e": None, "f": [1], "g": {"x": 1}, "h": "2024-01-01"}


def test_scalars_are_plain_values_and_dates_stay_text():
    data = load_yaml("s: hello\ni: 42\nf: 1.5\nb: false\nn: ~\nd: 2024-01-01\nt: 2024-01-01T10:00:00Z\n"
                     "x: 0x1F\n").data
    assert data == {"s": "hello", "i": 42, "f": 1.5, "b": False, "n": None, "d": "2024-01-01",
                    "t": "2024-01-01T10:00:00Z", "x": 31}


def test_a_value_that_does_not_fit_its_tag_is_refused():
    error = refusal("a:\n  b: !!int abc\n")
    assert error.message == "'abc' is not a valid integer"
    assert (error.errors[0].path, error.line) == ("a.b", 2)


# -- keys ----------------------------------------------------------------------------------------

def test_a_duplicate_key_is_refused_with_both_lines():
    error = refusal("id: a\nnamespace: n\nid: b\n")
    assert error.message == "duplicate key 'id': first at line 1, again at line 3"
    assert error.line == 3
    assert str(error) == "id (line 3): duplicate key 'id': first at line 1, again at line 3"


def test_a_duplicate_key_deep_in_the_flow_names_its_path():
    source = (
        "id: f\n"
        "namespace: n\n"
        "tasks:\n"
        "  - id: a\n"
        "    type: io.kestra.plugin.core.log.Log\n"
        "    message: one\n"
        "    message: two\n"
    )
    error = refusal(source)
    assert str(error) == "tasks[0].message (line 7): duplicate key 'message': first at line 6, again at line 7"


@pytest.mark.parametrize("source", [
    "1: a\n'1': b\n",  # keys are the text written: Kestra reads both as "1"
    "true: a\n'true': b\n",
    "{a: 1, a: 2}\n",
    "a: &k x\nb: y\n*k : z\nx: w\n",  # an alias used as a key is its text
])
def test_keys_that_read_the_same_are_duplicates(source):
    assert "duplicate key" in refusal(source).message


def test_keys_are_the_text_written():
    assert load_yaml("1: a\ntrue: b\n2024-01-01: c\nnull: d\n").data == {
        "1": "a", "true": "b", "2024-01-01": "c", "null": "d"
    }


def test_the_same_key_in_two_mappings_is_fine():
    data = load_yaml("a:\n  id: 1\nb:\n  id: 2\n").data
    assert data == {"a": {"id": 1}, "b": {"id": 2}}


def test_a_key_must_be_a_plain_value():
    error = refusal("a:\n  ? [1, 2]\n  : v\n")
    assert error.message == "a mapping key must be a plain value, not a list or a mapping"
    assert error.line == 2


def test_merge_keys_are_refused():
    error = refusal("base: &base {x: 1}\nother:\n  <<: *base\n  y: 2\n")
    assert "merge keys" in error.message
    assert error.line == 3


# -- size and hostile structures ------------------------------------------------------------------

def test_the_size_limit_applies_to_text_and_bytes():
    small = "id: x\n" + "# padding\n" * 10
    assert load_yaml(small, max_bytes=len(small)).data == {"id": "x"}
    assert load_yaml(small.encode(), max_bytes=len(small)).data == {"id": "x"}
    assert "the limit is 50 bytes" in refusal(small.encode(), max_bytes=50).message
    assert "limit of 50 bytes" in refusal(small, max_bytes=50).message


def test_the_size_limit_counts_utf8_bytes_not_characters():
    text = "a: " + "é" * 30 + "\n"  # 34 characters, 64 bytes
    error = refusal(text, max_bytes=40)
    assert error.message == "the flow is 64 bytes long; the limit is 40 bytes"


def test_the_default_size_limit_refuses_a_huge_flow_quickly():
    huge = "id: x\n" + "# " + "x" * MAX_BYTES + "\n"
    error, elapsed = timed_refusal(huge)
    assert f"{MAX_BYTES:,}" in error.message
    assert elapsed < QUICK


def test_billion_laughs_is_refused_quickly():
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        uses = ", ".join([f"*lol{level - 1}"] * 10)
        lines.append(f"lol{level}: &lol{level} [{uses}]")
    error, elapsed = timed_refusal("\n".join(lines) + "\n")
    assert error.message == f"the document holds more than {MAX_NODES:,} values once its aliases are expanded"
    assert error.line is not None and error.line <= 6  # stopped within the first levels, not at the end
    assert elapsed < QUICK


def test_billion_laughs_with_mappings_is_refused_quickly():
    lines = ["a0: &a0 {x: 1, y: 2, z: 3, w: 4}"]
    for level in range(1, 20):
        lines.append(f"a{level}: &a{level} {{p: *a{level - 1}, q: *a{level - 1}, r: *a{level - 1}, s: *a{level - 1}}}")
    error, elapsed = timed_refusal("\n".join(lines) + "\n")
    assert "once its aliases are expanded" in error.message
    assert elapsed < QUICK


def test_too_many_aliases_are_refused():
    source = "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    error, elapsed = timed_refusal(source)
    assert error.message == f"the document uses more than {MAX_ALIASES:,} aliases"
    assert elapsed < QUICK


@pytest.mark.parametrize("source", [
    "[" * 100_000 + "]" * 100_000,
    "{a: " * 100_000 + "1" + "}" * 100_000,
    "".join("  " * level + "a:\n" for level in range(MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "b: 1\n",
])
def test_deep_nesting_is_refused_without_recursion(source):
    error, elapsed = timed_refusal(source)
    assert error.message == f"the document nests deeper than {MAX_DEPTH} levels"
    assert elapsed < QUICK


def test_nesting_up_to_the_limit_is_fine():
    # The root mapping is the first level.
    deepest = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    value, depth = load_yaml(deepest).data["a"], 2
    while value:
        value, depth = value[0], depth + 1
    assert depth == MAX_DEPTH
    too_deep = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    assert "nests deeper" in refusal(too_deep).message


def test_an_alias_to_a_structure_that_contains_itself_is_refused():
    error = refusal("a: &a [1, *a]\n")
    assert "alias *a refers to no finished anchor" in error.message


def test_an_undefined_alias_is_refused():
    error = refusal("id: x\nb: *nowhere\n")
    assert error.message.startswith("alias *nowhere refers to no finished anchor")
    assert error.line == 2


# -- anchors used as people use them --------------------------------------------------------------

def test_reasonable_anchors_and_aliases_are_fine():
    source = (
        "id: anchors\n"
        "namespace: io.kestra.tests\n"
        "variables:\n"
        "  retry: &retry\n"
        "    type: constant\n"
        "    interval: PT1S\n"
        "    maxAttempt: 3\n"
        "  greeting: &greeting hello\n"
        "tasks:\n"
        "  - id: first\n"
        "    type: io.kestra.plugin.core.log.Log\n"
        "    message: *greeting\n"
        "    retry: *retry\n"
        "  - id: second\n"
        "    type: io.kestra.plugin.core.log.Log\n"
        "    message: *greeting\n"
        "    retry: *retry\n"
    )
    flow = parse_flow(source)
    first, second = flow.data["tasks"]
    assert first["message"] == second["message"] == "hello"
    assert first["retry"] == second["retry"] == {"type": "constant", "interval": "PT1S", "maxAttempt": 3}
    # Each use is a copy: the data is a tree, changing one use leaves the others alone.
    first["retry"]["maxAttempt"] = 9
    assert second["retry"]["maxAttempt"] == 3
    assert flow.data["variables"]["retry"]["maxAttempt"] == 3


def test_many_uses_of_a_small_anchor_are_fine():
    source = "a: &a {x: 1}\nb: [" + ", ".join(["*a"] * 1000) + "]\n"
    assert len(load_yaml(source).data["b"]) == 1000


# -- documents --------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, kind", [
    ("- a\n- b\n", "a list"),
    ("just text\n", "a string"),
    ("42\n", "a number"),
    ("true\n", "a boolean"),
    ("null\n", "null"),
    ("---\n~\n", "null"),
])
def test_a_flow_must_be_a_mapping(source, kind):
    error = refusal(source)
    assert error.message == f"a flow must be a YAML mapping (id, namespace, tasks…), not {kind}"
    assert error.line is not None


@pytest.mark.parametrize("source", ["", "\n\n", "# only a comment\n"])
def test_an_empty_document_is_refused(source):
    error = refusal(source)
    assert error.message.startswith("the document is empty")
    assert error.line == 1


def test_a_second_document_is_refused_at_its_start():
    error = refusal("id: a\nnamespace: n\n---\nid: b\n")
    assert error.message == "a flow file holds one YAML document; a second one starts here"
    assert error.line == 3


def test_document_markers_around_one_document_are_fine():
    assert load_yaml("---\nid: a\n...\n").data == {"id": "a"}


# -- syntax errors give a line ---------------------------------------------------------------------

@pytest.mark.parametrize("source, line", [
    ("id: x\n\tnamespace: y\n", 2),  # a tab where indentation is expected
    ("id: x\nnamespace: [a, b\ntasks: []\n", 3),
    ("id: x\nmessage: 'unclosed\n", 3),
    ("id: x\n  namespace: y\n", 2),
    ("id: x\nnamespace: n\n- a\n", 3),
    ("tasks:\n  - id: a\n   type: b\n", 3),
])
def test_syntax_errors_give_a_line(source, line):
    error = refusal(source)
    assert error.message.startswith("invalid YAML: ")
    assert error.line == line
    assert "Traceback" not in str(error) and "yaml." not in str(error)


def test_a_control_character_is_refused_with_its_line():
    error = refusal("id: x\nname: a\x00b\n")
    assert "control characters are not allowed" in error.message
    assert error.line == 2


def test_bytes_that_are_not_utf8_are_refused_with_their_line():
    error = refusal(b"id: x\nname: caf\xe9\n")
    assert error.message.startswith("the flow is not UTF-8 text (byte 0xe9")
    assert error.line == 2


def test_a_syntax_error_is_a_validation_error():
    with pytest.raises(FlowValidationError):
        load_yaml("a: [\n")


# -- lines ----------------------------------------------------------------------------------------

def test_every_value_has_its_line_and_a_missing_one_falls_back_to_its_owner():
    loaded = load_yaml(
        "id: x\n"
        "tasks:\n"
        "  - id: a\n"
        "    type: t\n"
        "    nested:\n"
        "      deep: [1, 2]\n"
    )
    assert loaded.line_of(()) == 1
    assert loaded.line_of(("tasks",)) == 2
    assert loaded.line_of(("tasks", 0)) == 3
    assert loaded.line_of(("tasks", 0, "type")) == 4
    assert loaded.line_of(("tasks", 0, "nested", "deep")) == 6
    assert loaded.line_of(("tasks", 0, "missing", "more")) == 3


def test_the_limits_are_the_documented_ones():
    # docs/flow-language.md states these numbers; change both together.
    assert (yaml_loader.MAX_BYTES, MAX_DEPTH, MAX_ALIASES, MAX_NODES) == (1_048_576, 100, 10_000, 100_000)

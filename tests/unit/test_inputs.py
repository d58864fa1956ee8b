"""Typed execution inputs (orchestrator/inputs.py): every type, every rule, every message.
Pure: no database, no processes."""

from __future__ import annotations

import json

import pytest

from orchestrator import encryption
from orchestrator.inputs import InvalidInputs, resolve_inputs, unknown_inputs
from workers.environment import MASK, SecretHooks


def typed(declaration: dict, value, **context):
    """The typed value of one input `x` given `value`."""
    return resolve_inputs([{"id": "x", **declaration}], {"x": value}, context=context)["x"]


def refused(declarations: list[dict] | dict, given: dict, **options) -> list[str]:
    """The messages of the refusal, as `str(InvalidInputs)` prints them."""
    declarations = declarations if isinstance(declarations, list) else [{"id": "x", **declarations}]
    with pytest.raises(InvalidInputs) as caught:
        resolve_inputs(declarations, given, **options)
    assert str(caught.value).splitlines() == [f"input `{e['input']}`: {e['message']}" for e in caught.value.errors]
    return str(caught.value).splitlines()


# -- each type reads text (forms, the CLI) and JSON values (the API) ---------------------------------

@pytest.mark.parametrize("input_type, given, expected", [
    ("STRING", "hello", "hello"),
    ("STRING", "", ""),
    ("STRING", 12, "12"),
    ("STRING", True, "true"),
    ("INT", "12", 12),
    ("INT", " -7 ", -7),
    ("INT", 12, 12),
    ("INT", 12.0, 12),
    ("FLOAT", "1.5", 1.5),
    ("FLOAT", "-2e3", -2000.0),
    ("FLOAT", ".5", 0.5),
    ("FLOAT", 3, 3.0),
    ("BOOLEAN", "true", True),
    ("BOOLEAN", "FALSE", False),
    ("BOOLEAN", False, False),
    ("BOOL", "True", True),
    ("BOOL", True, True),
    ("DATETIME", "2024-01-15T10:00:00Z", "2024-01-15T10:00:00Z"),
    ("DATETIME", "2024-01-15T10:00:00+02:00", "2024-01-15T08:00:00Z"),
    ("DATETIME", "2024-01-15T10:00:00.500-01:00", "2024-01-15T11:00:00.500Z"),
    ("DATETIME", "2024-01-15T10:00:00.123456Z", "2024-01-15T10:00:00.123456Z"),
    ("DATE", "2024-01-15", "2024-01-15"),
    ("TIME", "10:15", "10:15:00"),
    ("TIME", "10:15:30.250", "10:15:30.250000"),
    ("DURATION", "PT5M", "PT5M"),
    ("DURATION", "pt90s", "PT1M30S"),
    ("DURATION", "P1D", "PT24H"),
    ("DURATION", "PT1H30M0.5S", "PT1H30M0.5S"),
    ("DURATION", "PT0S", "PT0S"),
    ("DURATION", "-PT5M", "PT-5M"),
    ("FILE", "kestra:///company/team/data.csv", "kestra:///company/team/data.csv"),
    ("JSON", '{"a": [1, "x", null]}', {"a": [1, "x", None]}),
    ("JSON", '"text"', "text"),
    ("JSON", "12", 12),
    ("JSON", {"already": "parsed"}, {"already": "parsed"}),
    ("JSON", [1, 2], [1, 2]),
    ("YAML", "a: 1\nb: [x, y]\nwhen: 2024-01-15", {"a": 1, "b": ["x", "y"], "when": "2024-01-15"}),
    ("YAML", "- 1\n- two", [1, "two"]),
    ("YAML", "just text", "just text"),
    ("YAML", {"a": 1}, {"a": 1}),
    ("URI", "https://example.com/path?q=1", "https://example.com/path?q=1"),
    ("URI", "s3://bucket/key", "s3://bucket/key"),
    ("EMAIL", "ada@example.com", "ada@example.com"),
    ("SECRET", "hunter2", "hunter2"),
])
def test_each_type_reads_its_values(input_type, given, expected):
    assert typed({"type": input_type}, given) == expected


def test_enum_and_select_take_one_of_their_values():
    assert typed({"type": "ENUM", "values": ["a", "b"]}, "b") == "b"
    assert typed({"type": "SELECT", "values": ["a", "b"]}, "a") == "a"
    assert typed({"type": "SELECT", "values": ["a"], "allowCustomValue": True}, "z") == "z"


def test_multiselect_takes_a_list_or_the_text_of_one():
    declaration = {"type": "MULTISELECT", "values": ["a", "b", "c"]}
    assert typed(declaration, ["a", "c"]) == ["a", "c"]
    assert typed(declaration, '["b"]') == ["b"]
    assert typed({"type": "MULTISELECT", "options": ["1", "2"], "itemType": "INT"}, '["1", 2]') == [1, 2]
    assert typed({"type": "MULTISELECT", "values": ["a"], "allowCustomValue": True}, ["a", "new"]) == ["a", "new"]


@pytest.mark.parametrize("item_type, given, expected", [
    ("STRING", '["a", "b"]', ["a", "b"]),
    ("INT", '["1", 2]', [1, 2]),
    ("FLOAT", ["1.5", 2], [1.5, 2.0]),
    ("BOOLEAN", ["true", False], [True, False]),
    ("DATETIME", ["2024-01-15T10:00:00+01:00"], ["2024-01-15T09:00:00Z"]),
    ("DATE", '["2024-01-15"]', ["2024-01-15"]),
    ("DURATION", ["PT1M"], ["PT1M"]),
    ("JSON", ['{"a": 1}'], [{"a": 1}]),
    ("EMAIL", ["a@b.io"], ["a@b.io"]),
])
def test_array_items_are_typed_by_item_type(item_type, given, expected):
    assert typed({"type": "ARRAY", "itemType": item_type}, given) == expected


def test_every_value_is_json_data():
    declarations = [{"id": t.lower(), "type": t} for t in ("INT", "FLOAT", "DATETIME", "DATE", "TIME", "DURATION")]
    given = {"int": "1", "float": "1.5", "datetime": "2024-01-15T10:00:00Z", "date": "2024-01-15",
             "time": "10:00", "duration": "PT1S"}
    resolved = resolve_inputs(declarations, given)
    assert json.loads(json.dumps(resolved)) == resolved


# -- refusals, each with its message -----------------------------------------------------------------

@pytest.mark.parametrize("declaration, given, message", [
    ({"type": "INT"}, "12x", "'12x' is not a whole number"),
    ({"type": "INT"}, "1.5", "'1.5' is not a whole number"),
    ({"type": "INT"}, 1.5, "1.5 is not a whole number"),
    ({"type": "INT"}, True, "true is not a whole number"),
    ({"type": "FLOAT"}, "one", "'one' is not a number"),
    ({"type": "FLOAT"}, "nan", "'nan' is not a number"),
    ({"type": "FLOAT"}, "1e999", "'1e999' is not a finite number"),
    ({"type": "BOOLEAN"}, "yes", "'yes' is not a boolean (true or false)"),
    ({"type": "BOOL"}, 1, "1 is not a boolean (true or false)"),
    ({"type": "STRING"}, ["a"], "expected text, not a list"),
    ({"type": "DATETIME"}, "yesterday", "'yesterday' is not an ISO-8601 date-time such as 2024-01-15T10:00:00Z"),
    ({"type": "DATETIME"}, "2024-01-15T10:00:00",
     "'2024-01-15T10:00:00' has no time zone: end it with Z or an offset such as +02:00"),
    ({"type": "DATETIME"}, 1700000000, "1700000000 is not an ISO-8601 date-time such as 2024-01-15T10:00:00Z"),
    ({"type": "DATE"}, "2024-02-30", "'2024-02-30' is not an ISO-8601 date such as 2024-01-15"),
    ({"type": "TIME"}, "25:00", "'25:00' is not an ISO-8601 time such as 10:15:30"),
    ({"type": "TIME"}, "10:00+02:00",
     "'10:00+02:00' has a time zone; a TIME is a time of day without one, such as 10:15:30"),
    ({"type": "DURATION"}, "5 minutes", "'5 minutes' is not an ISO-8601 duration such as PT30S, PT5M or P1D"),
    ({"type": "DURATION"}, 300, "300 is not an ISO-8601 duration such as PT30S, PT5M or P1D"),
    ({"type": "FILE"}, "/tmp/data.csv",
     "'/tmp/data.csv' is not a valid storage URI: an absolute path is not a storage URI; storage URIs start "
     "with kestra:///"),
    ({"type": "FILE"}, 12, "12 is not an internal storage URI such as kestra:///company/team/file.csv"),
    ({"type": "FILE"}, "kestra:///a/../etc/passwd",
     "'kestra:///a/../etc/passwd' is not a valid storage URI: '..' segments are not allowed"),
    ({"type": "FILE"}, "kestra:///a/%252e%252e/etc",
     "'kestra:///a/%252e%252e/etc' is not a valid storage URI: it hides a path separator, '.' or '..', or a "
     "control character under repeated percent-encoding"),
    ({"type": "FILE", "allowedFileExtensions": [".csv", "json"]}, "kestra:///a/b.txt",
     "'kestra:///a/b.txt' is not a file of type .csv, .json"),
    ({"type": "JSON"}, "{", "'{' is not valid JSON: Expecting property name enclosed in double quotes: "
                            "line 1 column 2 (char 1)"),
    ({"type": "JSON"}, "NaN", "'NaN' is not valid JSON: NaN is not a JSON value"),
    ({"type": "URI"}, "not a uri", "'not a uri' is not a URI such as https://example.com/path"),
    ({"type": "EMAIL"}, "ada@", "'ada@' is not an email address"),
    ({"type": "EMAIL"}, "ada@localhost", "'ada@localhost' is not an email address"),
    ({"type": "ARRAY", "itemType": "INT"}, "1,2", "'1,2' is not a list such as [\"a\", \"b\"]"),
    ({"type": "ARRAY", "itemType": "INT"}, '[1, "x", "y"]',
     "item 2: 'x' is not a whole number; item 3: 'y' is not a whole number"),
    ({"type": "MULTISELECT", "values": ["a", "b"]}, "a", "'a' is not a list such as [\"a\", \"b\"]"),
    ({"type": "MULTISELECT", "values": ["a", "b"]}, ["a", "z"], "'z' is not one of a, b"),
    ({"type": "ENUM", "values": ["a", "b"]}, "c", "'c' is not one of a, b"),
    ({"type": "SELECT", "values": ["a", "b"]}, "c", "'c' is not one of a, b"),
])
def test_a_wrong_value_is_refused_with_the_reason(declaration, given, message):
    assert refused(declaration, {"x": given}) == [f"input `x`: {message}"]


def test_unreadable_yaml_is_refused_with_the_parser_reason():
    [message] = refused({"type": "YAML"}, {"x": "a: [1"})
    # the wording is the YAML parser's (libyaml's or PyYAML's), the line is ours
    assert message.startswith("input `x`: 'a: [1' is not valid YAML: ") and message.endswith("at line 2")


def test_yaml_inputs_build_no_objects():
    messages = refused({"type": "YAML"}, {"x": "!!python/object/apply:os.system ['id']"})
    assert "is not valid YAML" in messages[0] and "!!python/object/apply:os.system" in messages[0]


def test_a_long_value_is_shortened_in_the_message():
    [message] = refused({"type": "INT"}, {"x": "9" * 50 + "x" * 50})
    assert message == f"input `x`: '{'9' * 50 + 'x' * 7}...' is not a whole number"


# -- validators -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("declaration, good, bad, message", [
    ({"type": "STRING", "validator": "[a-z]+\\d"}, "abc1", "abc1x", "'abc1x' does not match the pattern `[a-z]+\\d`"),
    ({"type": "STRING", "minLength": 3}, "abc", "ab", "'ab' has 2 characters; at least 3 are required"),
    ({"type": "STRING", "maxLength": 3}, "abc", "abcd", "'abcd' has 4 characters; at most 3 are allowed"),
    ({"type": "ARRAY", "itemType": "INT", "minLength": 2}, [1, 2], [1], "[1] has 1 item; at least 2 are required"),
    ({"type": "MULTISELECT", "values": ["a", "b"], "maxLength": 1}, ["a"], ["a", "b"],
     '["a", "b"] has 2 items; at most 1 are allowed'),
    ({"type": "INT", "min": 18}, "18", "17", "17 is less than the minimum 18"),
    ({"type": "INT", "max": 10}, "10", "11", "11 is more than the maximum 10"),
    ({"type": "FLOAT", "min": 0.5}, "0.5", "0.25", "0.25 is less than the minimum 0.5"),
    ({"type": "FLOAT", "max": 1}, "1", "1.5", "1.5 is more than the maximum 1"),
    ({"type": "DURATION", "min": "PT1M"}, "PT60S", "PT59S", "PT59S is less than the minimum PT1M"),
    ({"type": "DURATION", "max": "PT1H"}, "PT1H", "P1D", "PT24H is more than the maximum PT1H"),
    ({"type": "DURATION", "max": 60}, "PT1M", "PT61S", "PT1M1S is more than the maximum 60"),
    ({"type": "DATE", "after": "2024-01-01"}, "2024-01-01", "2023-12-31",
     "'2023-12-31' is before 2024-01-01, the earliest allowed (`after`)"),
    ({"type": "DATE", "before": "2024-12-31"}, "2024-12-31", "2025-01-01",
     "'2025-01-01' is after 2024-12-31, the latest allowed (`before`)"),
    ({"type": "DATETIME", "after": "2024-01-01T00:00:00Z"}, "2024-01-01T01:00:00+01:00", "2023-12-31T23:59:59Z",
     "'2023-12-31T23:59:59Z' is before 2024-01-01T00:00:00Z, the earliest allowed (`after`)"),
    ({"type": "DATETIME", "before": "2024-01-01T00:00:00"}, "2023-12-31T23:00:00Z", "2024-01-01T00:00:01Z",
     "'2024-01-01T00:00:01Z' is after 2024-01-01T00:00:00, the latest allowed (`before`)"),
    ({"type": "TIME", "after": "09:00", "before": "17:00"}, "09:00", "08:59",
     "'08:59:00' is before 09:00, the earliest allowed (`after`)"),
    ({"type": "TIME", "after": "09:00", "before": "17:00"}, "17:00", "17:00:01",
     "'17:00:01' is after 17:00, the latest allowed (`before`)"),
])
def test_validators_accept_the_bound_and_refuse_beyond(declaration, good, bad, message):
    typed(declaration, good)
    assert refused(declaration, {"x": bad}) == [f"input `x`: {message}"]


def test_the_pattern_must_match_the_whole_value():
    declaration = {"type": "STRING", "validator": "\\d+"}
    assert typed(declaration, "123") == "123"
    assert refused(declaration, {"x": "123abc"}) == ["input `x`: '123abc' does not match the pattern `\\d+`"]


def test_every_broken_rule_of_one_input_is_told():
    declaration = {"type": "STRING", "validator": "[a-z]+", "minLength": 5}
    assert refused(declaration, {"x": "AB"}) == [
        "input `x`: 'AB' does not match the pattern `[a-z]+`; 'AB' has 2 characters; at least 5 are required"
    ]


def test_an_unreadable_bound_is_reported():
    assert refused({"type": "DATE", "after": "soon"}, {"x": "2024-01-01"}) == [
        "input `x`: the bound `after` cannot be read: 'soon' is not an ISO-8601 date such as 2024-01-15"
    ]


def test_select_values_may_come_from_an_expression():
    declarations = [
        {"id": "region", "type": "STRING"},
        {"id": "zone", "type": "SELECT", "expression": "{{ [inputs.region ~ '-a', inputs.region ~ '-b'] }}"},
    ]
    assert resolve_inputs(declarations, {"region": "eu", "zone": "eu-b"})["zone"] == "eu-b"
    assert refused(declarations, {"region": "eu", "zone": "us-a"}) == ["input `zone`: 'us-a' is not one of eu-a, eu-b"]


# -- required, defaults, order, nesting ------------------------------------------------------------------

def test_a_missing_required_input_is_an_error_and_an_optional_one_is_null():
    declarations = [{"id": "needed", "type": "STRING"}, {"id": "maybe", "type": "INT", "required": False}]
    assert refused(declarations, {}) == ["input `needed`: a value is required"]
    assert resolve_inputs(declarations, {"needed": "x"}) == {"needed": "x", "maybe": None}


def test_null_and_empty_text_count_as_not_given_except_for_text_types():
    declarations = [{"id": "n", "type": "INT", "required": False}, {"id": "s", "type": "STRING"},
                    {"id": "d", "type": "DATE", "defaults": "2024-01-01"}]
    assert resolve_inputs(declarations, {"n": "", "s": "", "d": None}) == {"n": None, "s": "", "d": "2024-01-01"}
    assert refused([{"id": "s", "type": "STRING"}], {"s": None}) == ["input `s`: a value is required"]


def test_defaults_are_typed_and_checked_like_given_values():
    assert typed({"type": "INT", "defaults": "5"}, None) == 5
    assert typed({"type": "JSON", "defaults": {"a": ["{{ 1 + 1 }}"]}}, None) == {"a": ["2"]}
    assert typed({"type": "MULTISELECT", "values": ["a", "b"], "defaults": ["a"]}, None) == ["a"]
    assert refused({"type": "INT", "min": 10, "defaults": 5}, {}) == [
        "input `x`: the `defaults`: 5 is less than the minimum 10"
    ]


def test_defaults_render_with_the_flow_and_earlier_inputs():
    declarations = [
        {"id": "greeting", "type": "STRING", "defaults": "hello {{ inputs.name }} from {{ flow.id }}"},
        {"id": "name", "type": "STRING", "defaults": "ada"},
        {"id": "count", "type": "INT", "defaults": "{{ inputs.name | length }}"},
    ]
    resolved = resolve_inputs(declarations, {}, context={"flow": {"id": "f"}})
    assert resolved == {"greeting": "hello ada from f", "name": "ada", "count": 3}
    assert list(resolved) == ["name", "greeting", "count"]  # `greeting` waited for `name`


def test_depends_on_orders_the_inputs_and_its_condition_skips_them():
    declarations = [
        {"id": "details", "type": "STRING", "dependsOn": {"inputs": ["kind"], "condition": "{{ inputs.kind == 'b' }}"}},
        {"id": "kind", "type": "SELECT", "values": ["a", "b"]},
    ]
    assert resolve_inputs(declarations, {"kind": "a"}) == {"kind": "a", "details": None}
    assert resolve_inputs(declarations, {"kind": "b", "details": "d"}) == {"kind": "b", "details": "d"}
    assert refused(declarations, {"kind": "b"}) == ["input `details`: a value is required"]


def test_a_default_that_cannot_render_is_reported():
    assert refused({"type": "STRING", "defaults": "{{ inputs.nowhere }}"}, {}) == [
        "input `x`: the `defaults` cannot be rendered: Unable to find `nowhere` used in the expression "
        "`{{ inputs.nowhere }}` at line 1"
    ]


def test_an_input_refused_upstream_is_reported_once():
    declarations = [{"id": "n", "type": "INT"}, {"id": "m", "type": "INT", "defaults": "{{ inputs.n + 1 }}"}]
    assert refused(declarations, {"n": "x"}) == ["input `n`: 'x' is not a whole number"]


def test_dotted_ids_nest_and_may_be_given_flat_or_nested():
    declarations = [{"id": "db.host", "type": "STRING"}, {"id": "db.port", "type": "INT"},
                    {"id": "url", "type": "STRING", "defaults": "{{ inputs.db.host }}:{{ inputs.db.port }}"}]
    expected = {"db": {"host": "h", "port": 5432}, "url": "h:5432"}
    assert resolve_inputs(declarations, {"db.host": "h", "db.port": "5432"}) == expected
    assert resolve_inputs(declarations, {"db": {"host": "h", "port": 5432}}) == expected


def test_unknown_given_inputs_are_dropped():
    declarations = [{"id": "a", "type": "STRING"}, {"id": "g.b", "type": "STRING"}]
    given = {"a": "x", "g.b": "y", "other": "z"}
    assert resolve_inputs(declarations, given) == {"a": "x", "g": {"b": "y"}}
    assert unknown_inputs(declarations, given) == ["other"]


def test_every_error_is_collected_at_once():
    declarations = [{"id": "age", "type": "INT"}, {"id": "ok", "type": "STRING"}, {"id": "when", "type": "DATE"},
                    {"id": "email", "type": "EMAIL"}]
    with pytest.raises(InvalidInputs) as caught:
        resolve_inputs(declarations, {"age": "12x", "ok": "fine", "when": "someday"})
    assert caught.value.errors == [
        {"input": "age", "message": "'12x' is not a whole number"},
        {"input": "when", "message": "'someday' is not an ISO-8601 date such as 2024-01-15"},
        {"input": "email", "message": "a value is required"},
    ]
    assert str(caught.value).splitlines()[0] == "input `age`: '12x' is not a whole number"


def test_refused_inputs_keep_what_was_read_before_them_with_secrets_sealed():
    declarations = [{"id": "age", "type": "INT"}, {"id": "pw", "type": "SECRET"}, {"id": "g.b", "type": "STRING"}]
    with pytest.raises(InvalidInputs) as caught:
        resolve_inputs(declarations, {"age": "old", "pw": "hunter2", "g.b": "y"}, seal=lambda v: {"sealed": v[::-1]})
    assert caught.value.accepted == {"pw": {"sealed": "2retnuh"}, "g": {"b": "y"}}
    assert InvalidInputs([{"input": "x", "message": "m"}]).accepted == {}


def test_older_name_property_and_no_declarations():
    assert resolve_inputs([{"name": "old", "type": "INT"}], {"old": "1"}) == {"old": 1}
    assert resolve_inputs(None, {"anything": 1}) == {}


# -- SECRET inputs ------------------------------------------------------------------------------------

def test_a_secret_is_sealed_and_never_quoted_in_errors():
    declaration = [{"id": "pw", "type": "SECRET", "validator": "[a-z]{8,}"}]
    assert resolve_inputs(declaration, {"pw": "longenough"}, seal=lambda v: {"sealed": v[::-1]}) == {
        "pw": {"sealed": "hguonegnol"}}
    messages = refused(declaration, {"pw": "S3CRET"})
    assert messages == ["input `pw`: the value does not match the pattern `[a-z]{8,}`"]
    assert refused({"type": "SECRET", "maxLength": 3}, {"x": "S3CRET"}) == [
        "input `x`: the value has 6 characters; at most 3 are allowed"
    ]


def test_encryption_round_trip_and_wrong_key(settings):
    settings.HARRIER_ENCRYPTION_KEY = "one key"
    sealed = encryption.encrypt("hunter2-value")
    assert encryption.is_encrypted(sealed) and "hunter2" not in json.dumps(sealed)
    assert encryption.decrypt(sealed) == "hunter2-value"
    settings.HARRIER_ENCRYPTION_KEY = "another key"
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(sealed)


def test_a_worker_reveals_secret_inputs_and_masks_them(settings):
    settings.HARRIER_ENCRYPTION_KEY = "worker key"
    inputs = resolve_inputs([{"id": "db.password", "type": "SECRET"}, {"id": "user", "type": "STRING"}],
                            {"db.password": "hunter2-value", "user": "ada"}, seal=encryption.encrypt)
    hooks = SecretHooks()
    revealed = hooks.reveal(inputs)
    assert revealed == {"db": {"password": "hunter2-value"}, "user": "ada"}
    assert hooks.mask("login ada:hunter2-value HUNTER2-VALUE") == f"login ada:{MASK} {MASK}"


def test_length_rules_are_accepted_at_deploy_time_and_must_be_in_order():
    from orchestrator.flowlang import FlowValidationError, validate_flow_data

    def flow(**rules):
        return {"id": "f", "namespace": "n", "inputs": [{"id": "x", "type": "STRING", **rules}],
                "tasks": [{"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": "m"}]}

    validate_flow_data(flow(minLength=1, maxLength=3))
    with pytest.raises(FlowValidationError) as caught:
        validate_flow_data(flow(minLength=5, maxLength=3))
    assert "`maxLength` (3) comes before `minLength` (5)" in str(caught.value)


def test_a_pattern_that_backtracks_badly_is_stopped(monkeypatch):
    from orchestrator import input_types

    monkeypatch.setattr(input_types, "VALIDATOR_TIMEOUT_SECONDS", 0.05)
    value = "a" * 40 + "!"
    assert refused({"type": "STRING", "validator": "(a|aa)+$"}, {"x": value}) == [
        f"input `x`: checking '{value}' against the pattern `(a|aa)+$` takes too long"
    ]


def test_digits_are_ascii_digits():
    assert refused({"type": "INT"}, {"x": "١٢"}) == ["input `x`: '١٢' is not a whole number"]

"""The public API: render, render_value, evaluate, has_expression, is_truthy, hooks, errors."""

import datetime as dt
import threading
import time

import pytest

from orchestrator.templating import (
    TemplateError,
    TemplateHooks,
    current_context,
    engine,
    evaluate,
    has_expression,
    is_truthy,
    render,
    render_value,
)
from orchestrator.templating.limits import CACHE_SIZE

CONTEXT = {
    "inputs": {"name": "ada", "n": 3, "items": [1, 2], "none": None, "payload": {"a": {"b": 1}}},
    "outputs": {"task": {"value": "{{ inputs.name }}", "code": 200}},
    "vars": {"template": "{{ inputs.name | upper }}", "chain": "{{ vars.template }}"},
    "flow": {"id": "hello", "namespace": "company.team"},
    "execution": {"id": "abc", "startDate": "2024-01-01T10:00:00.000Z"},
    "taskrun": {"value": "b"},
    "parents": [{"taskrun": {"value": "a"}}],
    "envs": {"api_url_prod": "https://prod"},
}


# -- render ---------------------------------------------------------------------------------------

def test_plain_strings_are_returned_unchanged_and_as_the_same_object():
    text = "no expression here: {single} braces and } {"
    assert render(text, CONTEXT) is text


def test_render_rejects_non_strings_with_a_template_error():
    with pytest.raises(TemplateError, match="expects a string template"):
        render(42, CONTEXT)  # type: ignore[arg-type]


def test_context_values_are_never_re_rendered():
    assert render("{{ outputs.task.value }}", CONTEXT) == "{{ inputs.name }}"
    assert render("{{ vars }}", CONTEXT) == '{"template":"{{ inputs.name | upper }}","chain":"{{ vars.template }}"}'


def test_render_function_is_the_only_way_to_re_render():
    assert render("{{ render(vars.template) }}", CONTEXT) == "ADA"
    assert render("{{ render(vars.chain) }}", CONTEXT) == "ADA"           # recursive by default
    assert render("{{ render(vars.chain, recursive=false) }}", CONTEXT) == "{{ inputs.name | upper }}"
    assert render("{{ renderOnce(vars.chain) }}", CONTEXT) == "{{ inputs.name | upper }}"
    assert render("{{ render({'k': vars.template}) }}", CONTEXT) == '{"k":"ADA"}'
    assert render("{{ render(42) }}", CONTEXT) == "42"


def test_render_sees_set_variables():
    assert render("{% set who = 'bob' %}{{ render('hi {{ who }}') }}", CONTEXT) == "hi bob"


def test_recursive_render_stops_on_cycles():
    context = {"first": "{{ second }}", "second": "{{ first }}"}
    with pytest.raises(TemplateError, match="Too many rendering attempts"):
        render("{{ render(first) }}", context)


def test_errors_inside_render_name_the_inner_template():
    with pytest.raises(TemplateError, match="Unable to find `nope` used in the expression `{{ nope }}`"):
        render("{{ render(bad) }}", {"bad": "{{ nope }}"})


# -- undefined values -----------------------------------------------------------------------------

def test_undefined_variable_message_is_kestras():
    with pytest.raises(TemplateError) as caught:
        render("{{inputs.invalid}}", CONTEXT)
    assert str(caught.value) == "Unable to find `invalid` used in the expression `{{inputs.invalid}}` at line 1"
    assert caught.value.line == 1
    assert caught.value.expression == "{{inputs.invalid}}"


@pytest.mark.parametrize("template,name", [
    ("{{ missing }}", "missing"),
    ("{{ inputs.payload.x.y }}", "x"),
    ("{{ inputs.none.x }}", "x"),
    ("{{ inputs.items[5] }}", "5"),
    ("{{ missing | upper }}", "missing"),
    ("{{ missing + 1 }}", "missing"),
    ("{{ missing == 1 }}", "missing"),
    ("{{ [1, missing] }}", "missing"),
    ("{{ {'a': missing} }}", "missing"),
    ("{% if missing %}{% endif %}", "missing"),
    ("{% for x in missing %}{% endfor %}", "missing"),
    ("{{ range(missing, 2) }}", "missing"),
    ("{{ missing ? 1 : 2 }}", "missing"),
    ("{{ missing is null }}", "missing"),
    ("{{ missing is defined ? missing : missing2 }}", "missing2"),
])
def test_using_an_undefined_value_fails(template, name):
    with pytest.raises(TemplateError, match=f"Unable to find `{name}`"):
        render(template, CONTEXT)


@pytest.mark.parametrize("template,expected", [
    ("{{ missing ?? 'd' }}", "d"),
    ("{{ missing ??? 'd' }}", "d"),
    ("{{ missing | default('d') }}", "d"),
    ("{{ inputs.payload.x.y | default('d') }}", "d"),
    ("{{ missing is defined }}", "false"),
    ("{{ inputs.none | default('d') }}", "d"),
    ("{{ '' | default('d') }}", "d"),
    ("{{ 'x' | default('d') }}", "x"),
])
def test_undefined_is_allowed_under_coalescing_default_and_defined(template, expected):
    assert render(template, CONTEXT) == expected


def test_error_line_points_at_the_failing_line():
    with pytest.raises(TemplateError) as caught:
        render("first\nsecond\n{{ inputs.nope }}\nfourth", CONTEXT)
    assert caught.value.line == 3
    assert str(caught.value).endswith("at line 3")


def test_long_templates_are_shortened_in_messages():
    template = "x" * 1000 + "{{ nope }}"
    with pytest.raises(TemplateError) as caught:
        render(template, CONTEXT)
    assert len(str(caught.value)) < 500
    assert caught.value.expression == template


# -- render_value -----------------------------------------------------------------------------------

def test_render_value_renders_strings_in_nested_data_and_keys():
    value = {"a": "{{ inputs.name }}", "{{ flow.id }}": [1, "{{ inputs.n + 1 }}", {"deep": "{{ true }}"}],
             "n": 5, "f": 1.5, "b": True, "z": None}
    assert render_value(value, CONTEXT) == {
        "a": "ada", "hello": [1, "4", {"deep": "true"}], "n": 5, "f": 1.5, "b": True, "z": None}


def test_render_value_copies_containers_and_keeps_the_first_of_colliding_keys():
    value = {"{{ flow.id }}": 1, "hello": 2}
    assert render_value(value, CONTEXT) == {"hello": 1}
    source = [["x"]]
    rendered = render_value(source, CONTEXT)
    assert rendered == source and rendered is not source and rendered[0] is not source[0]
    assert render_value(("a", "{{ flow.id }}"), CONTEXT) == ["a", "hello"]


def test_render_value_leaves_scalars_untouched():
    for scalar in (1, 1.5, True, None, b"bytes"):
        assert render_value(scalar, CONTEXT) is scalar


# -- evaluate --------------------------------------------------------------------------------------

@pytest.mark.parametrize("expression,expected", [
    ("inputs.n == 3", True),
    ("inputs.n", 3),
    ("inputs.items", [1, 2]),
    ("inputs.payload", {"a": {"b": 1}}),
    ("inputs.none", None),
    ("inputs.name ~ '!'", "ada!"),
    ("outputs.task.code >= 200 and outputs.task.code < 300", True),
    ("[inputs.n, inputs.name]", [3, "ada"]),
    ("  inputs.n + 1  ", 4),
    ("{{ inputs.items }}", [1, 2]),
    ("  {{ inputs.n > 1 }} ", True),
    ("{{ inputs.n }} items", "3 items"),
    ("{% if true %}yes{% endif %}", "yes"),
    ("1.5", 1.5),
    ("{{ fromJson('[1, {\"a\": null}]') }}", [1, {"a": None}]),
])
def test_evaluate_returns_python_values(expression, expected):
    result = evaluate(expression, CONTEXT)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("expression,message", [
    ("inputs.nope", "Unable to find `nope`"),
    ("[1, nope]", "Unable to find `nope`"),
    ("inputs.n +", "The expression is incomplete"),
    ("inputs.n inputs.n", "Unexpected `inputs` after the expression"),
    ("", "The expression is empty"),
])
def test_evaluate_errors(expression, message):
    with pytest.raises(TemplateError, match=message):
        evaluate(expression, CONTEXT)


def test_evaluate_rejects_non_strings():
    with pytest.raises(TemplateError):
        evaluate(None, CONTEXT)  # type: ignore[arg-type]


# -- has_expression and is_truthy ------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("{{ x }}", True), ("a {% if %}", True), ("plain", False), ("{ single }", False), ("{# c #}", False),
    (None, False), (3, False),
])
def test_has_expression(text, expected):
    assert has_expression(text) is expected


@pytest.mark.parametrize("value,expected", [
    (False, False), ("false", False), (0, False), ("0", False), ("-0", False), ("", False), (None, False),
    ("  false \n", False), (" ", False),
    (True, True), ("true", True), (1, True), ("hello", True), ("False", True), ("no", True),
    (0.0, True), ("0.0", True), ([], True), ({}, True), ([0], True), (-1, True),
])
def test_is_truthy_follows_kestras_rule(value, expected):
    assert is_truthy(value) is expected


def test_is_truthy_of_a_rendered_condition():
    assert is_truthy(render("{{ inputs.n > 5 }}", CONTEXT)) is False
    assert is_truthy(render("{{ inputs.n > 1 }}", CONTEXT)) is True
    assert is_truthy(evaluate("inputs.n > 1", CONTEXT)) is True


# -- output formatting -----------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("text", "text"), (None, ""), (True, "true"), (False, "false"), (42, "42"), (-0.5, "-0.5"),
    (1.0, "1.0"), (100.0, "100.0"), (1e7, "1.0E7"), (12345678.9, "1.23456789E7"), (0.001, "0.001"),
    (0.0001, "1.0E-4"), (float("nan"), "NaN"), (float("inf"), "Infinity"),
    ({"value": "x"}, '{"value":"x"}'), ([1, 2], "[1,2]"), ([{"a": None}], '[{"a":null}]'),
    (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "2024-01-01T00:00:00.000Z"),
    (dt.datetime(2024, 1, 1, 1, 2, 3, 456789, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2024-01-01T00:02:03.456Z"),
    (dt.datetime(2024, 1, 1), "2024-01-01T00:00:00.000Z"),
    (dt.date(2024, 1, 1), "2024-01-01"),
    ((1, 2), "[1,2]"),
])
def test_values_print_as_kestra_prints_them(value, expected):
    assert render("{{ v }}", {"v": value}) == expected


def test_datetimes_inside_json_are_iso_with_milliseconds():
    value = {"at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    assert render("{{ v }}", {"v": value}) == '{"at":"2024-01-01T00:00:00.000Z"}'


# -- hooks ---------------------------------------------------------------------------------------

class Hooks(TemplateHooks):
    def secret(self, name):
        return {"TOKEN": "s3cr3t", "JSON": '{"user": "u", "password": "p"}'}[name]

    def read(self, path):
        return f"content of {path}"

    def kv(self, key, namespace=None, error_on_missing=True):
        store = {("company.team", "k"): {"v": 1}}
        value = store.get((namespace or current_context()["flow"]["namespace"], key))
        if value is None and error_on_missing:
            raise TemplateError(f"The key '{key}' does not exist in the namespace '{namespace}'.")
        return value

    def error_logs(self):
        return [{"message": "boom"}]

    def file_size(self, path):
        return 0 if path.endswith("empty") else 12

    def file_exists(self, path):
        return path == "kestra:///present"


@pytest.mark.parametrize("template,expected", [
    ("{{ secret('TOKEN') }}", "s3cr3t"),
    ("{{ secret('JSON', subkey='password') }}", "p"),
    ("{{ secret('TOKEN', full=true).value }}", "s3cr3t"),
    ("{{ read('a.txt') }}", "content of a.txt"),
    ("{{ kv('k').v }}", "1"),
    ("{{ kv('k', 'company.team') }}", '{"v":1}'),
    ("[{{ kv('missing', errorOnMissing=false) }}]", "[]"),
    ("{{ errorLogs()[0].message }}", "boom"),
    ("{{ fileSize('kestra:///x') }}", "12"),
    ("{{ fileExists('kestra:///present') }} {{ fileExists('kestra:///absent') }}", "true false"),
    ("{{ fileEmpty('kestra:///empty') }}", "true"),
])
def test_hooks_provide_context_dependent_functions(template, expected):
    assert render(template, CONTEXT, hooks=Hooks()) == expected


def test_hook_errors_become_template_errors_with_the_expression():
    with pytest.raises(TemplateError) as caught:
        render("{{ kv('missing') }}", CONTEXT, hooks=Hooks())
    assert "The key 'missing' does not exist" in str(caught.value)
    assert caught.value.expression == "{{ kv('missing') }}"
    with pytest.raises(TemplateError, match=r"secret\('OTHER'\) failed: 'OTHER'"):
        render("{{ secret('OTHER') }}", CONTEXT, hooks=Hooks())


@pytest.mark.parametrize("template,message", [
    ("{{ secret('X') }}", "secret('X') is not available here"),
    ("{{ read('f') }}", "read('f') is not available here"),
    ("{{ kv('k') }}", "kv('k') is not available here"),
    ("{{ fileSize('f') }}", "fileSize('f') is not available here"),
    ("{{ fileExists('f') }}", "fileExists('f') is not available here"),
])
def test_default_hooks_refuse_clearly(template, message):
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render(template, CONTEXT)


def test_default_error_logs_is_empty():
    assert render("{{ errorLogs() }}", CONTEXT) == "[]"


def test_current_each_output_follows_parents_and_taskrun_value():
    context = {**CONTEXT, "outputs": {"make": {"a": {"b": {"values": {"data": "a-b"}}}}}}
    assert render("{{ currentEachOutput(outputs.make).values.data }}", context) == "a-b"
    with pytest.raises(TemplateError, match="expects an argument 'outputs' with type map"):
        render("{{ currentEachOutput('x') }}", context)


def test_current_context_is_empty_outside_a_rendering():
    assert current_context() == {}


# -- caching, concurrency, speed -------------------------------------------------------------------

def test_compiled_templates_are_cached_in_a_bounded_lru():
    engine.compile_template.cache_clear()
    render("{{ inputs.n }} cached", CONTEXT)
    render("{{ inputs.n }} cached", CONTEXT)
    info = engine.compile_template.cache_info()
    assert info.hits >= 1 and info.misses == 1
    assert info.maxsize == CACHE_SIZE == 1000


def test_rendering_is_thread_safe():
    errors = []

    def work(index):
        try:
            for _ in range(200):
                assert render("{{ i * 2 }}-{% for x in l %}{{ x }}{% endfor %}", {"i": index, "l": [index]}) \
                    == f"{index * 2}-{index}"
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_simple_render_is_fast():
    template = "{{ inputs.name }}"
    render(template, CONTEXT)
    runs = 2000
    started = time.perf_counter()
    for _ in range(runs):
        render(template, CONTEXT)
    per_render = (time.perf_counter() - started) / runs
    # Measured around 5 µs; the bound leaves room for a loaded CI machine.
    assert per_render < 200e-6

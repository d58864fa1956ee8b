"""The sandbox: only plain data is reachable, every cost is bounded, every failure is a TemplateError."""

import importlib.util

import pytest

from orchestrator.templating import TemplateError, engine, evaluate, jqrunner, limits, render


class Secretive:
    password = "hunter2"

    def method(self):
        return "called"


CONTEXT = {
    "inputs": {"name": "ada", "items": [1, 2, 3], "map": {"a": 1}},
    "obj": Secretive(),
    "text": "{{ inputs.name }}",
}


def fails(template: str, message: str = "", context=None) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render(template, CONTEXT if context is None else context)
    assert message in str(caught.value), str(caught.value)
    return caught.value


# -- nothing but data --------------------------------------------------------------------------

@pytest.mark.parametrize("template,missing", [
    ("{{ inputs.__class__ }}", "__class__"),
    ("{{ inputs.name.__class__ }}", "__class__"),
    ("{{ inputs['__class__'] }}", "__class__"),
    ("{{ inputs.items.__class__.__mro__ }}", "__class__"),
    ("{{ inputs.map.__init__.__globals__ }}", "__init__"),
    ("{{ inputs.name.mro }}", "mro"),
    ("{{ inputs.map.__subclasses__ }}", "__subclasses__"),
    ("{{ inputs.map.items }}", "items"),
    ("{{ inputs.map.keys }}", "keys"),
    ("{{ inputs.name.upper }}", "upper"),
    ("{{ inputs.name.format }}", "format"),
    ("{{ inputs.items.append }}", "append"),
    ("{{ obj.password }}", "password"),
    ("{{ obj.method }}", "method"),
    ("{{ obj.__dict__ }}", "__dict__"),
    ("{% for x in [1] %}{{ loop.__class__ }}{% endfor %}", "__class__"),
    ("{% for x in [1] %}{{ loop.index0 }}{% endfor %}", "index0"),
    ("{{ self }}", "self"),
    ("{{ config }}", "config"),
    ("{{ request }}", "request"),
    ("{{ range }}", "range"),
    ("{{ cycler }}", "cycler"),
    ("{{ joiner }}", "joiner"),
    ("{{ namespace }}", "namespace"),
    ("{{ lipsum }}", "lipsum"),
    ("{{ environment }}", "environment"),
    ("{{ context }}", "context"),
    ("{{ loop }}", "loop"),
    ("{{ render.__globals__ }}", "render"),
])
def test_only_data_is_reachable(template, missing):
    error = fails(template, f"Unable to find `{missing}`")
    assert "hunter2" not in str(error)


@pytest.mark.parametrize("template,message", [
    ("{{ inputs.map.items() }}", "Method calls are not supported: `.items(...)`"),
    ("{{ inputs.name.upper() }}", "Method calls are not supported: `.upper(...)`"),
    ("{{ '{0.__class__}'.format(inputs) }}", "Method calls are not supported: `.format(...)`"),
    ("{{ obj.method() }}", "Method calls are not supported"),
    ("{{ inputs['map']() }}", "Only functions can be called, by their name"),
    ("{{ (render)('x') }}", "Only functions can be called, by their name"),
    ("{{ cycler(1, 2) }}", "Function `cycler` does not exist"),
    ("{{ joiner() }}", "Function `joiner` does not exist"),
    ("{{ namespace(a=1) }}", "Function `namespace` does not exist"),
    ("{{ lipsum() }}", "Function `lipsum` does not exist"),
    ("{{ dict(a=1) }}", "Function `dict` does not exist"),
    ("{{ self() }}", "Function `self` does not exist"),
    ("{{ caller() }}", "Function `caller` does not exist"),
    ("{{ getattr(inputs, 'x') }}", "Function `getattr` does not exist"),
    ("{{ inputs | attr('__class__') }}", "Filter `attr` does not exist"),
    ("{{ inputs | map('upper') }}", "Filter `map` does not exist"),
    ("{{ 'x' | e }}", "Filter `e` does not exist"),
    ("{{ 'x' is callable }}", "Test `callable` does not exist"),
    ("{{ '%s' % inputs.map }}", "Cannot convert to Number: %s"),
    ("{{ '%(a)s' % {'a': 1} }}", "Cannot convert to Number"),
    ("{{ 'a' * 1000000000 }}", "Cannot convert to Number: a"),  # no string repetition
    ("{{ 2 ** 1000000 }}", "The operator `**` does not exist"),  # no exponentiation
    ("{{ x if y else z }}", "Unexpected name `if` after the expression"),             # Jinja-only syntax
])
def test_no_calls_but_registered_functions(template, message):
    fails(template, message)


@pytest.mark.parametrize("tag", [
    "{% include 'other' %}", "{% import 'macros' as m %}", "{% from 'macros' import m %}",
    "{% extends 'base' %}", "{% macro m() %}x{% endmacro %}", "{% call m() %}x{% endcall %}",
    "{% filter upper %}x{% endfilter %}", "{% block b %}x{% endblock %}", "{% with a = 1 %}{% endwith %}",
    "{% autoescape true %}{% endautoescape %}", "{% print 'x' %}", "{% do x %}",
])
def test_forbidden_tags_fail_cleanly(tag):
    name = tag.split()[1]
    fails(tag, f"The tag {{% {name} %}} is not supported")


def test_context_values_are_text_not_templates():
    assert render("{{ text }}", CONTEXT) == "{{ inputs.name }}"
    assert render("{{ text ~ '!' }}", CONTEXT) == "{{ inputs.name }}!"
    assert render("{{ inputs | jq('.name') | first }}", {"inputs": {"name": "{{ secret('X') }}"}}) \
        == "{{ secret('X') }}"


# -- bounds ----------------------------------------------------------------------------------------

def test_range_length_is_bounded():
    fails("{{ range(0, 2000000000) }}",
          "The range function cannot produce more than 1000000 elements, but this call would produce 2000000001.")
    fails("{{ 1..10000000 }}", "cannot produce more than 1000000 elements")


def test_loop_iterations_are_bounded_across_all_loops():
    fails("{% for i in range(1, 1000) %}{% for j in range(1, 1000) %}{% endfor %}{% endfor %}",
          f"The loops of this template exceed {limits.MAX_LOOP_ITERATIONS} iterations")


def test_output_size_is_bounded():
    fails("{% for i in range(1, 20000) %}{{ big }}{% endfor %}", "The rendered text exceeds 10000000 characters",
          context={"big": "x" * 1000})


def test_strings_cannot_double_without_bound():
    fails("{% set s = 'ab' %}{% for i in range(1, 40) %}{% set s = s ~ s %}{% endfor %}",
          "The result would exceed 10000000 characters")
    fails("{% set s = 'ab' %}{% for i in range(1, 40) %}{% set s = s + s %}{% endfor %}",
          "The result would exceed 10000000 characters")


def test_lists_cannot_double_without_bound():
    fails("{% set l = [1] %}{% for i in range(1, 40) %}{% set l = l + l %}{% endfor %}",
          "The result would exceed 1000000 items")
    fails("{% set l = [1] %}{% for i in range(1, 40) %}{% set l = l | merge(l) %}{% endfor %}",
          "The result would exceed 1000000 items")


def test_filters_cannot_blow_up_strings():
    big = "a" * 100_000
    fails("{{ big | replace({'a': big}) }}", "The result would exceed", context={"big": big})
    fails("{{ big | replace({'a': big}, regexp=true) }}", "The result would exceed", context={"big": big})
    fails("{{ lines | indent(1000) }}", "The result would exceed", context={"lines": "\n" * 100_000})
    fails("{{ items | join(big) }}", "The result would exceed", context={"items": [1] * 1000, "big": big})


def test_render_nesting_is_bounded():
    fails("{{ render(t) }}", "Too many rendering attempts", context={"t": "{{ '{{' }} t {{ '}}' }}x"})
    fails("{{ render(t) }}", "render() is nested more than 10 levels deep",
          context={"t": "{{ render(t) }}"})


def test_expression_nesting_is_bounded():
    fails("{{ " + "(" * 200 + "1" + ")" * 200 + " }}", "The expression is nested more than 64 levels deep")
    fails("{{ " + "[" * 200 + "]" * 200 + " }}", "nested more than")
    fails("{{ " + "-" * 1000 + "1 }}", "nested more than")


def test_deeply_nested_context_data_fails_cleanly():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    fails("{{ d }}", "", context={"d": deep})


def test_rendering_time_is_bounded(monkeypatch):
    monkeypatch.setattr(engine, "MAX_RENDER_SECONDS", 0.05)
    fails("{% for i in range(1, 90000) %}{{ s | sha512 | sha512 }}{% endfor %}", "The rendering takes too long",
          context={"s": "x" * 1000})


@pytest.mark.skipif(importlib.util.find_spec("regex") is None, reason="the regex package is not installed")
def test_regular_expressions_are_bounded_in_time(monkeypatch):
    monkeypatch.setattr("orchestrator.templating.filters.REGEX_TIMEOUT_SECONDS", 0.2)
    fails("{{ s | replace({'(x+x+)+y': '-'}, regexp=true) }}", "takes too long", context={"s": "x" * 5000})
    fails("{{ s | split('(x+x+)+y') }}", "takes too long", context={"s": "x" * 5000})


@pytest.mark.skipif(importlib.util.find_spec("jq") is None, reason="the jq package is not installed")
def test_jq_programs_are_bounded_in_time_and_memory(monkeypatch):
    monkeypatch.setattr(jqrunner, "JQ_TIMEOUT_SECONDS", 1.0)
    fails("{{ 1 | jq('until(false; .)') }}", "The jq program takes longer than 1 seconds")
    fails("{{ 1 | jq('[range(1e10)] | length') }}", "The jq program")
    # The helper recovers after being killed.
    assert render("{{ [1, 2] | jq('.[1]') | first }}", {}) == "2"


def test_jq_cannot_read_files():
    fails("{{ 1 | jq('import \"x\" as y; .') }}", "jq programs may not import modules or read files")
    fails("{{ 1 | jq('include \"x\"; .') }}", "jq programs may not import modules or read files")


# -- every failure is a TemplateError ------------------------------------------------------------

@pytest.mark.parametrize("template", [
    "{{ 1 / 0 }}", "{{ 1 % 0 }}", "{{ {} + 1 }}", "{{ [1] * 2 }}", "{{ {[1]: 2} }}", "{{ inputs.items[inputs.map] }}",
    "{{ 'a' < 1 }}", "{{ true > false }}", "{{ -'a' }}", "{{ inputs | date }}", "{{ 'x' | number('INT') }}",
    "{{ 99999999999999999999999 | date }}", "{{ inputs.map | slice(0) }}", "{% for x in 'abc' %}{% endfor %}",
    "{{", "}}{{", "{% if %}", "{% for %}", "{% set %}", "{{ 'unterminated }}", "\x00{{ 1 }", "{{ \x00 }}",
    "{{ {'a': 1 }}", "{{ [1, 2 }}", "{{ f( }}", "{{ inputs. }}", "{{ inputs[] }}", "{{ 1 ? 2 }}", "{{ ?? 1 }}",
    "{{ a..}}", "{%- -%}", "{% endraw %}", "{% raw %}never closed", "{# never closed",
])
def test_every_failure_is_a_template_error(template):
    with pytest.raises(TemplateError):
        render(template, CONTEXT)


@pytest.mark.parametrize("expression", ["1 / 0", "inputs.", "{{ }}", "a b", ")", "1 +* 2", "[1,, 2]"])
def test_every_evaluate_failure_is_a_template_error(expression):
    with pytest.raises(TemplateError):
        evaluate(expression, CONTEXT)


def test_a_non_mapping_context_fails_cleanly():
    with pytest.raises(TemplateError, match="The rendering context must be a mapping"):
        render("{{ x }}", ["not", "a", "mapping"])  # type: ignore[arg-type]

"""Functions without hooks: parsing, ranges, extremes, context, identifiers."""

import json
import re

import pytest

from orchestrator.templating import TemplateError, evaluate, render

CONTEXT = {"inputs": {"age": 42, "doc": '{"foo": [666, 1, 2]}'}, "envs": {"api_url_prod": "https://prod"},
           "flow": {"id": "f"}}


def r(template: str) -> str:
    return render(template, CONTEXT)


@pytest.mark.parametrize("template,expected", [
    ("{{ fromJson('[1, 2, 3]')[0] }}", "1"),
    ("{{ fromJson(inputs.doc).foo[0] }}", "666"),
    ("{{ json('{\"a\": true}').a }}", "true"),
    ("[{{ fromJson(null) }}]", "[]"),
    ("{{ yaml('foo: [666, 1, 2]').foo[0] }}", "666"),
    ("{{ yaml('a: 1\nb: [x, y]') }}", '{"a":1,"b":["x","y"]}'),
    ("{% for i in range(0, 3) %}{{ i }},{% endfor %}", "0,1,2,3,"),
    ("{% for i in range(0, 6, 2) %}{{ i }},{% endfor %}", "0,2,4,6,"),
    ("{{ range(5, 1, -2) }}", "[5,3,1]"),
    ("{{ max(20, 80, inputs.age) }} {{ min(20, 80, inputs.age) }}", "80 20"),
    ("{{ max(1.5, 2) }} {{ min('b', 'a') }} {{ max([3, 9, 4]) }} [{{ max() }}]", "2 a 9 []"),
    ("{{ max(null, 1) }}", "1"),
    ("{{ env('api_url_' ~ 'prod') }} {{ env('nope', 'localhost') }}", "https://prod localhost"),
])
def test_functions(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,message", [
    ("{{ fromJson('{bad') }}", "Invalid json:"),
    ("{{ fromJson(5) }}", "The 'fromJson' function expects an argument 'json' with type string."),
    ("{{ yaml(5) }}", "The 'yaml' function expects an argument 'yaml' with type string."),
    ("{{ yaml('a: [1') }}", "Invalid yaml:"),
    ("{{ range(0, 5, 0) }}", "The increment of the range function must be different than 0"),
    ("{{ range('a', 5) }}", "Arguments of range function must be of type Number or String with a length of 1"),
    ("{{ range(0, 5, 'x') }}", "The increment of the range function must be a number x"),
    ("{{ max(1, 'a') }}", "Could not perform greater than comparison between string and integer"),
    ("{{ randomInt(5, 1) }}", "randomInt(lower, upper) expects two integers with lower < upper"),
    ("{{ render('x', recursive='yes') }}",
     "The 'render' function expects an optional argument 'recursive' with type boolean."),
    ("{{ secret(5) }}", "The 'secret' function expects an argument 'key' with type string."),
    ("{{ secret('X', namespace='other') }}", "reading another namespace's secrets is not supported"),
])
def test_function_errors(template, message):
    with pytest.raises(TemplateError) as caught:
        r(template)
    assert message in str(caught.value)


def test_print_context_shows_every_variable():
    printed = json.loads(render("{% set local = 1 %}{{ printContext() }}", CONTEXT))
    assert printed == {**CONTEXT, "local": 1}
    assert evaluate("fetchContext().flow.id", CONTEXT) == "f"


def test_identifiers_and_random_numbers():
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", r("{{ uuid() }}"))
    assert re.fullmatch(r"[0-9A-Za-z]{22}", r("{{ id() }}"))
    assert r("{{ uuid() }}") != r("{{ uuid() }}")
    values = {evaluate("randomInt(1, 3)", CONTEXT) for _ in range(50)}
    assert values <= {1, 2} and values


def test_yaml_aliases_cannot_expand_without_bound():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7))
    with pytest.raises(TemplateError, match="expands to more than"):
        render("{{ yaml(doc) }}", {"doc": bomb})

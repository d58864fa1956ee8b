"""Pebble syntax as Kestra documents it: delimiters, tags, operators, precedence, literals."""

import pytest

from orchestrator.templating import TemplateError, render

CONTEXT = {
    "inputs": {"name": "ada", "n": 3, "items": [1, 2, 3], "map": {"a": 1, "b": 2}, "flag": True, "none": None},
    "outputs": {"first": {"value": "one"}, "second-task": {"value": "two"}},
    "vars": {"greeting": "hello", "nested": {"deep": {"key": "k"}}},
}


def r(template: str, **extra) -> str:
    return render(template, {**CONTEXT, **extra})


# -- delimiters, comments, raw, whitespace -------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ inputs.name }}", "ada"),
    ("{{inputs.name}}", "ada"),
    ("Hi {{ inputs.name }}!", "Hi ada!"),
    ("{# a comment #}x", "x"),
    ("a{# multi\nline #}b", "ab"),
    ("{% raw %}{{ inputs.name }}{% endraw %}", "{{ inputs.name }}"),
    ("See {%raw%}{{ x }}{%endraw%} and {% raw %}{% if %}{% endraw %}", "See {{ x }} and {% if %}"),
    ("a  {{- inputs.name -}}  b", "aadab"),
    ("a\n  {%- if true %}x{% endif -%}\n  b", "axb"),
    ("line\n", "line\n"),
    ("{{ inputs.name }}\n", "ada\n"),
    ("{% if true %}\nx\n{% endif %}\n", "\nx\n\n"),
])
def test_delimiters_comments_raw_and_whitespace(template, expected):
    assert r(template) == expected


# -- access -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ outputs.first.value }}", "one"),
    ("{{ outputs['second-task'].value }}", "two"),
    ("{{ outputs[\"second-task\"]['value'] }}", "two"),
    ("{{ inputs.items[0] }}", "1"),
    ("{{ inputs.items.1 }}", "2"),
    ("{{ vars.nested['deep'].key }}", "k"),
    ("{{ vars.nested[key].key }}", "k"),
    ("{{ fromJson('[1, 2, 3]')[0] }}", "1"),
    ("{{ {'a': {'b': 5}}.a.b }}", "5"),
    ("{{ [10, 20][1] }}", "20"),
])
def test_attribute_and_index_access(template, expected):
    assert r(template, key="deep") == expected


# -- literals and output formatting --------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ 'single' }}{{ \"double\" }}", "singledouble"),
    ("{{ 'it\\'s' }}", "it's"),
    ("{{ \"say \\\"hi\\\"\" }}", 'say "hi"'),
    ("{{ 'C:\\new\\table' }}", "C:\\new\\table"),  # Pebble keeps backslashes
    ("{{ 'a ? b : c .. d' }}", "a ? b : c .. d"),
    ("{{ '{{ not rendered }}' }}", "{{ not rendered }}"),
    ("{{ 42 }}", "42"),
    ("{{ 1.5 }}", "1.5"),
    ("{{ 2.0 }}", "2.0"),
    ("{{ true }} {{ TRUE }} {{ false }} {{ FALSE }}", "true true false false"),
    ("[{{ null }}][{{ none }}][{{ NULL }}]", "[][][]"),
    ("{{ [1, 'a', true, null] }}", '[1,"a",true,null]'),
    ("{{ {'a': 1, \"b\": [2]} }}", '{"a":1,"b":[2]}'),
    ("{{ [] }}{{ {} }}", "[]{}"),
    ("{{ {'key': 'é'} }}", '{"key":"é"}'),
    ("{{ inputs.map }}", '{"a":1,"b":2}'),
    ("{{ 1.0E-5 + 0 }}", "1.0E-5"),
])
def test_literals_and_how_values_print(template, expected):
    assert r(template) == expected


def test_map_literal_keys_are_expressions():
    assert r("{{ {inputs.name: 1} }}") == '{"ada":1}'


# -- operators ------------------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ 1 + 2 }}", "3"),
    ("{{ 7 - 10 }}", "-3"),
    ("{{ 6 * 7 }}", "42"),
    ("{{ 7 / 2 }}", "3"),           # Java integer division
    ("{{ -7 / 2 }}", "-3"),         # truncated towards zero
    ("{{ 7.0 / 2 }}", "3.5"),
    ("{{ 7 % 3 }}", "1"),
    ("{{ -7 % 3 }}", "-1"),         # the sign of the dividend, as Java
    ("{{ 1.5 + 1 }}", "2.5"),
    ("{{ '5' * 2 }}", "10"),        # numeric strings are converted
    ("{{ 'a' + 1 }}", "a1"),        # + with a string concatenates
    ("{{ 'a' + null }}", "anull"),
    ("{{ [1, 2] + 3 }}", "[1,2,3]"),
    ("{{ [1, 2] + [3] }}", "[1,2,3]"),
    ("{{ [1, 2, 3] - 2 }}", "[1,3]"),
    ("{{ 2 + 2 / (10 % 3) * (8 - 1) }}", "16"),
    ("{{ -inputs.n }}", "-3"),
    ("{{ 'a' ~ 1 ~ true ~ null ~ [1] }}", "a1true[1]"),
    ("{{ 'apple' ~ 'pear' | upper }}", "APPLEPEAR"),  # ~ binds tighter than |
    ("{{ 1 + 2 | abs }}", "3"),
])
def test_arithmetic_and_concatenation(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ 1 == 1 }} {{ 1 == 1.0 }} {{ 1 != 2 }}", "true true true"),
    ("{{ 'a' equals 'a' }}", "true"),
    ("{{ true == 1 }} {{ '1' == 1 }} {{ null == null }}", "false false true"),
    ("{{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}", "true true"),
    ("{{ 2 > 1 }} {{ 2 >= 2 }} {{ 1 < 2 }} {{ 2 <= 1 }}", "true true true false"),
    ("{{ 'abc' < 'abd' }}", "true"),  # Kestra compares strings lexicographically
    ("{{ null > 1 }} {{ 1 < null }}", "false false"),
    ("{{ true and false }} {{ true or false }} {{ not true }}", "false true false"),
    ("{{ not false and false }}", "false"),  # `not` binds tightest
    ("{{ 1 == 1 and 2 == 2 }}", "true"),
    ("{{ false or 1 == 1 }}", "true"),
    ("{{ 'x' and 1 }}", "true"),
])
def test_comparisons_and_logic(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ inputs.items contains 2 }}", "true"),
    ("{{ inputs.items contains 9 }}", "false"),
    ("{{ inputs.items contains [1, 3] }}", "true"),
    ("{{ inputs.map contains 'a' }}", "true"),
    ("{{ inputs.map contains ['a', 'z'] }}", "false"),
    ("{{ 'abc' contains 'b' }}", "true"),
    ("{{ 'abc' contains 'z' }}", "false"),
    ("{{ null contains 'z' }}", "false"),
    ("{{ 'b' isIn ['a', 'b'] }} {{ 'c' notIn ['a', 'b'] }} {{ 1 isIn ['1'] }}", "true true true"),
])
def test_contains_and_is_in(template, expected):
    assert r(template) == expected


def test_contains_on_a_number_is_an_error():
    with pytest.raises(TemplateError, match="Contains operator can only be used on Collections"):
        r("{{ 5 contains 1 }}")


@pytest.mark.parametrize("template,expected", [
    ("{{ 1..4 }}", "[1,2,3,4]"),
    ("{{ 3..1 }}", "[]"),
    ("{% for i in 1..3 %}{{ i }}{% endfor %}", "123"),
    ("{{ 'a'..'c' }}", '["a","b","c"]'),
    ("{{ range(0, 3) }}", "[0,1,2,3]"),
    ("{{ range(10, 0, -5) }}", "[10,5,0]"),
])
def test_ranges(template, expected):
    assert r(template) == expected


# -- ternary and null coalescing ----------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ inputs.flag ? 'yes' : 'no' }}", "yes"),
    ("{{ inputs.n > 5 ? 'big' : 'small' }}", "small"),
    ("{{ inputs.n > 5 ? 'big' : inputs.n > 2 ? 'medium' : 'small' }}", "medium"),
    ("{{ inputs.missing is defined ? inputs.missing : 'fallback' }}", "fallback"),
    ("{{ inputs.none ?? 'was null' }}", "was null"),
    ("{{ inputs.missing ?? 'was undefined' }}", "was undefined"),
    ("{{ inputs.name ?? 'unused' }}", "ada"),
    ("{{ foo ?? bar ?? 'baz' }}", "baz"),
    ("{{ missing.deep.path ?? 'safe' }}", "safe"),
    ("{{ inputs.missing ??? 'undefined only' }}", "undefined only"),
    ("[{{ inputs.none ??? 'not used for null' }}]", "[]"),
    ("{{ inputs.name ~ '!' ?? 'x' }}", "ada!"),          # ?? binds tighter than ~
    ("{{ inputs.missing ?? inputs.name | upper }}", "ADA"),  # ... and than |
    ("{{ (inputs.missing | upper) ?? 'caught' }}", "caught"),
])
def test_ternary_and_coalescing(template, expected):
    assert r(template) == expected


def test_coalescing_does_not_evaluate_the_right_side_when_not_needed():
    # The right side would fail: it must not be evaluated.
    assert r("{{ inputs.name ?? secret('NOPE') }}") == "ada"


def test_coalescing_chain_fails_when_everything_is_undefined():
    with pytest.raises(TemplateError, match="Unable to find `raise`"):
        r("{{ foo ?? bar ?? raise }}")


# -- tests (is ...) ---------------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ inputs.name is defined }}", "true"),
    ("{{ inputs.missing is defined }}", "false"),
    ("{{ inputs.missing is not defined }}", "true"),
    ("{{ missing.a.b is defined }}", "false"),
    ("{{ vars.nested[missing].key is defined }}", "false"),
    ("{{ inputs.none is defined }}", "false"),  # Pebble: null is not defined
    ("{{ inputs.none is null }} {{ inputs.name is null }}", "true false"),
    ("{{ '' is empty }} {{ '  ' is empty }} {{ [] is empty }} {{ {} is empty }} {{ null is empty }}",
     "true true true true true"),
    ("{{ 'x' is empty }} {{ [0] is not empty }}", "false true"),
    ("{{ 2 is even }} {{ 3 is odd }} {{ 3 is not even }}", "true true true"),
    ("{{ inputs.items is iterable }} {{ inputs.map is iterable }}", "true false"),
    ("{{ inputs.map is map }} {{ inputs.items is map }}", "true false"),
    ("{{ '{\"a\": 1}' is json }} {{ 'nope' is json }}", "true false"),
    ("{{ 2 is even and 3 is odd }}", "true"),
])
def test_tests(template, expected):
    assert r(template) == expected


def test_even_of_null_is_an_error():
    with pytest.raises(TemplateError, match='Can not pass null value to "even" test.'):
        r("{{ inputs.none is even }}")


# -- control structures -----------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{% if inputs.n == 3 %}three{% endif %}", "three"),
    ("{% if inputs.n == 1 %}one{% elseif inputs.n == 3 %}three{% else %}other{% endif %}", "three"),
    ("{% if false %}a{% elseif false %}b{% else %}c{% endif %}", "c"),
    ("{% if inputs.items is empty %}none{% else %}{{ inputs.items | length }}{% endif %}", "3"),
    ("{% if 'false' %}non-empty string is true{% endif %}", "non-empty string is true"),
    ("{% if 0 %}zero{% else %}zero is false{% endif %}", "zero is false"),
    ("{% if inputs.none %}x{% else %}null is false{% endif %}", "null is false"),
    ("{% if not inputs.flag %}x{% else %}y{% endif %}", "y"),
])
def test_if(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{% for x in inputs.items %}{{ x }},{% endfor %}", "1,2,3,"),
    ("{% for x in inputs.items %}{{ loop.index }}/{{ loop.length }}{% if not loop.last %} {% endif %}{% endfor %}",
     "0/3 1/3 2/3"),
    ("{% for x in inputs.items %}{{ loop.first }}-{{ loop.last }}-{{ loop.revindex }};{% endfor %}",
     "true-false-2;false-false-1;false-true-0;"),
    ("{% for x in [] %}x{% else %}empty{% endfor %}", "empty"),
    ("{% for entry in inputs.map %}{{ entry.key }}={{ entry.value }};{% endfor %}", "a=1;b=2;"),
    ("{% for row in [[1, 2], [3]] %}{% for c in row %}{{ c }}{% endfor %}|{% endfor %}", "12|3|"),
    ("{% for x in inputs.items %}{% for y in inputs.items %}{% if x == y %}{{ x }}{% endif %}{% endfor %}{% endfor %}",
     "123"),
    ("{% for x in null %}x{% endfor %}done", "done"),
])
def test_for(template, expected):
    assert r(template) == expected


def test_for_over_a_scalar_is_an_error():
    with pytest.raises(TemplateError, match=r"Not an iterable object. Value = \[5\]"):
        r("{% for x in 5 %}{% endfor %}")


@pytest.mark.parametrize("template,expected", [
    ("{% set header = 'Welcome' %}{{ header }}", "Welcome"),
    ("{% set x = inputs.n * 2 %}{{ x + 1 }}", "7"),
    ("{% set total = 0 %}{% for i in inputs.items %}{% set total = total + i %}{% endfor %}{{ total }}", "6"),
    ("{% set inputs = 'shadow' %}{{ inputs }}", "shadow"),
    ("{% for x in [1, 2] %}{% set x = x * 10 %}{{ x }},{% endfor %}", "10,20,"),
    ("{% set m = {'k': [1, 2]} %}{{ m.k[1] }}", "2"),
])
def test_set(template, expected):
    assert r(template) == expected


def test_set_of_an_undefined_value_fails_at_the_set():
    with pytest.raises(TemplateError, match="Unable to find `nope`"):
        r("{% set x = nope %}")


# -- named arguments --------------------------------------------------------------------------

def test_named_and_positional_arguments():
    assert r("{{ 'a.b.c' | substringAfter(separator='.') }}") == "b.c"
    assert r("{{ '2024-01-02T03:04:05Z' | date(format='yyyy', timeZone='UTC') }}") == "2024"
    assert r("{{ '2024-01-02T03:04:05Z' | date('yyyy/MM', timeZone='UTC') }}") == "2024/01"


def test_positional_argument_after_a_named_one_is_a_syntax_error():
    with pytest.raises(TemplateError, match="Positional arguments must be declared before any named arguments"):
        r("{{ 'x' | date(format='yyyy', 'UTC') }}")


# -- syntax errors are TemplateErrors with the line ----------------------------------------------

@pytest.mark.parametrize("template,message", [
    ("{{ }}", "The expression is incomplete"),
    ("{{ inputs.name", "The template ends before the closing `}}`"),
    ("{% if true", "The template ends before the closing `%}`"),
    ("{% if true %}no end", "Unexpected end of template"),
    ("{% endfor %}", "Unexpected tag {% endfor %}"),
    ("{% frobnicate %}", "Unknown tag {% frobnicate %}"),
    ("{{ 'a' 'b' }}", "Two string literals follow each other"),
    ("{{ 2 ** 3 }}", "The operator `**` does not exist"),
    ("{{ 7 // 2 }}", "The operator `//` does not exist"),
    ("{{ inputs.name | nosuchfilter }}", "Filter `nosuchfilter` does not exist"),
    ("{{ nosuchfunction() }}", "Function `nosuchfunction` does not exist"),
    ("{{ 1 is nosuchtest }}", "Test `nosuchtest` does not exist"),
    ("{{ 'a' | upper('x') }}", "The filter `upper` takes no argument"),
    ("{{ 'a' | split(nope=',') }}", "The filter `split` has no argument `nope`"),
    ("{{ 'a' | split }}", "The filter `split` expects an argument `delimiter`"),
    ("{{ 'a' ! 'b' }}", "unexpected char '!'"),
    ("{% set 1 = 2 %}", "expected token 'name'"),
])
def test_syntax_errors(template, message):
    with pytest.raises(TemplateError) as caught:
        r(template)
    assert message.lower() in str(caught.value).lower()
    assert caught.value.expression == template


def test_syntax_error_names_its_line():
    with pytest.raises(TemplateError) as caught:
        r("line one\nline two {{ inputs.name | nosuchfilter }}")
    assert caught.value.line == 2
    assert "at line 2" in str(caught.value)

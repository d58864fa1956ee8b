"""Every filter: Kestra's documented examples, edge cases and error messages."""

import importlib.util

import pytest

from orchestrator.templating import TemplateError, evaluate, render

needs_jq = pytest.mark.skipif(importlib.util.find_spec("jq") is None, reason="the jq package is not installed")

CONTEXT = {
    "vars": {
        "second": {"string": "string", "int": 1, "float": 1.123, "list": ["string", 1, 1.123], "bool": True,
                   "map": {"string": "string", "int": 1, "float": 1.123}},
        "list": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "big": 1e20,
    },
    "none": None,
}


def r(template: str) -> str:
    return render(template, CONTEXT)


def fails(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        r(template)
    assert message in str(caught.value), str(caught.value)


# -- text ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ 'quiet sentence' | upper }}", "QUIET SENTENCE"),
    ("{{ 'LOUD TEXT' | lower }}", "loud text"),
    ("{{ 'article title' | title }}", "Article Title"),
    ("{{ 'mIxEd case' | title }}", "MIxEd Case"),  # only first letters change, as Pebble
    ("{{ 'article title' | capitalize }}", "Article title"),
    ("{{ '  lead' | capitalize }}", "  Lead"),
    ("{{ '   padded text   ' | trim }}", "padded text"),
    ("{{ '\t\n x \n' | trim }}", "x"),
    ("{{ 'this is a long sentence.' | abbreviate(7) }}", "this..."),
    ("{{ 'Lemons to lemonade.' | upper | abbreviate(10) }}", "LEMONS ..."),
    ("{{ 'short' | abbreviate(10) }}", "short"),
    ("{{ 'abcdef' | abbreviate(2) }}", "ab"),
    ("{{ 123 | string }}", "123"),
    ("{{ 12 | upper }}", "12"),
    ("[{{ none | upper }}]", "[]"),
])
def test_text_case_and_trim(template, expected):
    assert r(template) == expected


def test_text_filters_refuse_collections():
    fails("{{ [1] | upper }}", "The 'upper' filter expects a string, not a list")
    fails("{{ 'x' | abbreviate(-1) }}", "Invalid argument to abbreviate filter; must be greater than zero")


@pytest.mark.parametrize("template,expected", [
    ("{{ 'a.b.c' | substringBefore('.') }}", "a"),
    ("{{ 'a.b.c' | substringAfter(separator='.') }}", "b.c"),
    ("{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
    ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
    ("{{ 'abc' | substringBefore('z') }}", "abc"),
    ("[{{ 'abc' | substringAfter('z') }}]", "[]"),
    ("{{ 'abc' | substringBeforeLast('z') }}", "abc"),
    ("[{{ 'abc.' | substringAfterLast('.') }}]", "[]"),
    ("{{ 'hello world' | startsWith('hello') }} {{ 'hello world' | startsWith('world') }}", "true false"),
    ("{{ 'Hello World' | endsWith('World') }}", "true"),
    ("{{ 'Hello World!' | slugify }}", "hello-world"),
    ("{{ 'Test\t\t\ntest*' | slugify }}", "test-test"),
    ("{{ 'Crème Brûlée à la carte' | slugify }}", "creme-brulee-a-la-carte"),
    ("{{ '--a__b--' | slugify }}", "a-b"),
])
def test_substrings_prefixes_and_slugify(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ \"L'eau c'est la vie\" | escapeChar('single') }}", "L\\'eau c\\'est la vie"),
    ("{{ '\"Hello\"' | escapeChar('double') }}", '\\"Hello\\"'),
    ("{{ \"L'eau c'est la vie\" | escapeChar('shell') }}", "L'\\''eau c'\\''est la vie"),
    ("{{ \"it's\" | escapeChar('SINGLE') }}", "it\\'s"),
    ("[{{ '' | escapeChar('shell') }}]", "[]"),
    ("{{ {'k': \"a'b\", 'l': [\"c'd\"]} | escapeChar('single') }}", '{"k":"a\\\\\'b","l":["c\\\\\'d"]}'),
])
def test_escape_char(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("kind", ["foo", ""])
def test_escape_char_rejects_unknown_kinds(kind):
    fails("{{ 'Hello' | escapeChar('" + kind + "') }}",
          "The 'escapeChar' filter expects the value of 'type' to be either 'single', 'double', or 'shell'.")


@pytest.mark.parametrize("template,expected", [
    ("{{ 'a\nb' | indent(2) }}", "a\n  b"),
    ("{{ 'a\nb' | indent(1, prefix='>') }}", "a\n>b"),
    ("{{ 'key: value' | nindent(2) }}", "\n  key: value"),
    ("{{ 'a\r\nb' | nindent(1) }}", "\r\n a\r\n b"),
    ("[{{ '' | indent(4) }}]", "[]"),
])
def test_indent_and_nindent(template, expected):
    assert r(template) == expected


def test_indent_rejects_negative_amounts():
    fails("{{ 'a' | indent(-1) }}", "The 'indent' filter expects a positive integer >=0 as argument 'amount'.")


@pytest.mark.parametrize("template,expected", [
    ("{{ 'apple,banana,cherry' | split(',') }}", '["apple","banana","cherry"]'),
    ("{{ 'apple,banana,cherry,grape' | split(',', 2) }}", '["apple","banana,cherry,grape"]'),
    ("{{ 'a,b,,' | split(',') }}", '["a","b"]'),          # limit 0 drops trailing empty strings
    ("{{ 'a,b,,' | split(',', -1) }}", '["a","b","",""]'),
    ("{{ 'a.b.c' | split('\\.') }}", '["a","b","c"]'),    # the delimiter is a regular expression
    ("{{ 'a1b22c' | split('[0-9]+') }}", '["a","b","c"]'),
    ("{{ 'abc' | split('') }}", '["a","b","c"]'),
    ("{{ 'abc' | split(';') }}", '["abc"]'),
    ("{{ '' | split(',') }}", '[""]'),
])
def test_split(template, expected):
    assert r(template) == expected


def test_split_with_an_invalid_regular_expression():
    fails("{{ 'a' | split('[') }}", "Invalid regular expression '[' in 'split'")


@pytest.mark.parametrize("template,expected", [
    ("{{ 'I like %this% and %that%.' | replace({'%this%': 'foo', '%that%': 'bar'}) }}", "I like foo and bar."),
    ("{{ 'john doe is john doe' | replace({'john': 'jane'}) }}", "jane doe is jane doe"),
    ("{{ 'aa1bb2cc3dd4ee5' | replace({'(\\d)': '-$1-'}, regexp=true) }}", "aa-1-bb-2-cc-3-dd-4-ee-5-"),
    ("{{ 'x-y' | replace({'(?<first>\\w)-(\\w)': '${first}+$2'}, regexp=true) }}", "x+y"),
    ("{{ 'a.b' | replace({'.': '!'}) }}", "a!b"),                  # literal without regexp
    ("{{ 'a.b' | replace({'.': '!'}, regexp=true) }}", "!!!"),
    ("{{ 'cost' | replace({'cost': '\\$5'}, regexp=true) }}", "$5"),
    ("{{ 'banana' | replace('an', 'AN') }}", "bANANa"),            # the two-argument form
    ("{{ ['ab', {'k': 'ab'}, 3] | replace({'a': 'x'}) }}", '["xb",{"k":"xb"},"3"]'),
    ("{{ 12 | replace({'1': 'one'}) }}", "one2"),
])
def test_replace(template, expected):
    assert r(template) == expected


def test_replace_errors():
    fails("{{ 'x' | replace(5) }}", "The argument 'replace_pairs' is required.")
    fails("{{ 'x' | replace('x') }}", "replace('search', 'replacement') expects the replacement string")
    fails("{{ 'x' | replace({'(': 'y'}, regexp=true) }}", "Invalid regular expression '('")


# -- collections --------------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ ['apple', 'banana'] | first }}", "apple"),
    ("{{ 'Mitch' | first }}", "M"),
    ("{{ ['apple', 'banana'] | last }}", "banana"),
    ("{{ 'Mitch' | last }}", "h"),
    ("[{{ [] | first }}]", "[]"),
    ("{{ 'Mitch' | length }} {{ [1, 2] | length }} {{ {'a': 1} | length }} {{ none | length }} {{ 5 | length }}",
     "5 2 1 0 0"),
    ("{{ ['apple', 'banana'] | join(', ') }}", "apple, banana"),
    ("{{ [1, null, true, [2]] | join('-') }}", "1-null-true-[2]"),
    ("{{ ['a', 'b'] | join }}", "ab"),
    ("{{ {'foo': 'bar', 'baz': 'qux'} | keys }}", '["foo","baz"]'),
    ("{{ vars.second.list | keys }}", "[0,1,2]"),
    ("{{ {'foo': 'bar', 'baz': 'qux'} | values }}", '["bar","qux"]'),
    ("{{ [3, 1, 2] | sort }}", "[1,2,3]"),
    ("{{ ['b', 'a'] | sort }}", '["a","b"]'),
    ("{{ [3, 1, 2.5] | rsort }}", "[3,2.5,1]"),
    ("{{ ['apple', 'banana'] | reverse }}", '["banana","apple"]'),
    ("{{ 'abc' | reverse }}", "cba"),
    ("{{ vars.list | chunk(2) }}", "[[1,2],[3,4],[5,6],[7,8],[9]]"),
    ("{{ ['1', '1', '2', '3'] | distinct }}", '["1","2","3"]'),
    ("{{ [{'a': 1}, {'a': 1}, 1, 1.0] | distinct }}", '[{"a":1},1]'),
    ("{{ [[1, 2], 3, [4]] | flatten }}", "[1,2,3,4]"),
    ("{{ [1, 2] | merge([3, 4]) }}", "[1,2,3,4]"),
    ("{{ {'a': 1, 'b': 1} | merge({'b': 2}) }}", '{"a":1,"b":2}'),
    ("{{ none | merge([1]) }}", "[1]"),
    ("{{ ['apple', 'banana', 'cherry'] | slice(1, 2) }}", '["banana"]'),
    ("{{ 'Mitch' | slice(1, 3) }}", "it"),
    ("{{ [1, 2, 3] | slice(1) }}", "[2,3]"),
])
def test_collection_filters(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,message", [
    ("{{ 1 | chunk(2) }}", "'chunk' filter can only be applied to List. Actual type was: integer"),
    ("{{ [1] | chunk(0) }}", "'chunk' filter expects a positive integer 'size'."),
    ("{{ 'x' | keys }}", "'keys' filter can only be applied to List, Map, Array. Actual type was: string"),
    ("{{ 'x' | values }}", "'values' filter can only be applied to a Map"),
    ("{{ [1, 'a'] | sort }}", "can only sort a list of numbers or a list of strings"),
    ("{{ 'x' | join(',') }}", "The 'join' filter expects that the input is either a collection or an array."),
    ("{{ {'a': 1} | first }}", "The 'first' filter expects a list or a string, not a map"),
    ("{{ '' | first }}", "The 'first' filter got an empty string"),
    ("{{ 'x' | flatten }}", "The 'flatten' filter can only be applied to lists."),
    ("{{ none | merge(none) }}", "The two arguments to be merged are null"),
    ("{{ 5 | merge([1]) }}", "The object being filtered is not a Map/List/Array"),
    ("{{ [1, 2] | slice(1, 5) }}", "toIndex must be smaller than input size: 2"),
    ("{{ [1, 2] | slice(1, 1) }}", "toIndex must be greater than fromIndex"),
    ("{{ [1, 2] | slice('a') }}", "Argument fromIndex must be a number. Actual type: string"),
    ("{{ 5 | slice(1) }}", "Slice filter can only be applied to String, List and array inputs"),
])
def test_collection_filter_errors(template, message):
    fails(template, message)


@pytest.mark.parametrize("template,expected", [
    ("{{ none | default('No phone number') }}", "No phone number"),
    ("{{ missing.phone | default('none') }}", "none"),
    ("{{ [] | default([1]) }}", "[1]"),
    ("{{ 0 | default(5) }}", "0"),
    ("{{ false | default(true) }}", "false"),
])
def test_default(template, expected):
    assert r(template) == expected


# -- JSON, YAML, Ion, jq -------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ vars.second.string | toJson }}", '"string"'),
    ("{{ vars.second.int | toJson }}", "1"),
    ("{{ vars.second.float | toJson }}", "1.123"),
    ("{{ vars.second.list | toJson }}", '["string",1,1.123]'),
    ("{{ vars.second.bool | json }}", "true"),
    ("{{ {'empty_object': {}} | toJson }}", '{"empty_object":{}}'),
    ("{{ null | toJson }}", "null"),
    ("{{ 'a\"b\\nc' | jsonEncode }}", '"a\\"b\\\\nc"'),
    ("{{ ('{\"a\": [1]}' | fromJson).a[0] }}", "1"),
    ("{{ ('[1, 2]' | jsonDecode)[1] }}", "2"),
])
def test_json(template, expected):
    assert r(template) == expected


def test_from_json_rejects_invalid_json():
    fails("{{ 'nope' | fromJson }}", "Invalid json: Expecting value")


@pytest.mark.parametrize("template,expected", [
    ("{{ {'key': 'value'} | yaml }}", "key: value\n"),
    ("{{ {'a': [1, 'x'], 'b': {'c': true, 'd': null}} | toYaml }}", "a:\n  - 1\n  - x\nb:\n  c: true\n  d: null\n"),
    ("{{ 'foo' | yaml }}", "foo\n"),
    ("{{ 'true' | yaml }}", "'true'\n"),
    ("{{ null | yaml }}", "null"),
    ("{{ [1, 2] | yaml }}", "- 1\n- 2\n"),
])
def test_yaml_filter_writes_yaml(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ vars.second.string | toIon }}", '"string"'),
    ("{{ vars.second.int | toIon }}", "1"),
    ("{{ vars.second.float | toIon }}", "1.123e0"),
    ("{{ vars.second.list | toIon }}", '["string",1,1.123e0]'),
    ("{{ vars.second.bool | toIon }}", "true"),
    ("{{ {'empty_object': {}} | toIon }}", "{empty_object:{}}"),
    ("{{ {'with space': 1, 'null': 2} | toIon }}", "{'with space':1,'null':2}"),
    ("{{ null | toIon }}", "null"),
    ("{{ vars.big | toIon }} {{ 0.0 | toIon }} {{ vars.big + 0.0 | toIon }}", "1e20 0e0 1.0E200e0"),
])
def test_to_ion(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ [1, 2, 3] | jq('.') }}", "[[1,2,3]]"),
    ("{{ [1, 2, 3] | jq('.[0]') | first }}", "1"),
    ("{{ vars | jq('.second.string') }}", '["string"]'),
    ("{{ vars | jq('.second.float') | first }}", "1.123"),
    ("{{ vars | jq('.second.map') | first }}", '{"string":"string","int":1,"float":1.123}'),
    ("{{ {'second': [1, 2, 3]} | jq('.second[]') }}", "[1,2,3]"),
    ("{{ vars.second.map | values | jq('reduce .[] as $n (0; . + ($n | numbers))') | first }}", "2.123"),
    ("{{ '{\"a\": 5}' | jq('.a * 2') | first }}", "10"),  # a string input is read as JSON
    ("{% set o = {'object': {'key': 'value'}} | jq('.object') %}{{ o[0].key }}", "value"),
])
@needs_jq
def test_jq(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,message", [
    ("{{ [1] | jq('.[') }}", "Failed to resolve JQ expression '.['"),
    ("{{ 'not json' | jq('.') }}", "Unable to parse jq value 'not json': it is not JSON"),
    ("{{ {} | jq('$ENV | keys') | first }}", ""),
    ("{{ {} | jq('env | length') | first }}", ""),
])
@needs_jq
def test_jq_errors_and_isolation(template, message):
    if message:
        fails(template, message)
    else:
        assert r(template) in ("[]", "0")  # no environment variable (and so no secret) is visible to jq


# -- numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ -7 | abs }} {{ -1.5 | abs }}", "7 1.5"),
    ("{{ '12.3' | number }}", "12.3"),
    ("{{ '2147483647' | number }}", "2147483647"),
    ("{{ '9223372036854775807' | number('BIGINTEGER') }}", "9223372036854775807"),
    ("{{ '42' | number('INT') + 1 }}", "43"),
    ("{{ '42' | number('DOUBLE') }}", "42.0"),
    ("{{ '0x1F' | number }}", "31"),
    ("{{ '10L' | number }}", "10"),
    ("{{ '1.50' | number('BIGDECIMAL') }}", "1.5"),
    ("{{ 3.141592653 | numberFormat('#.##') }}", "3.14"),
    ("{{ 1.232654 | numberFormat('#.##') }}", "1.23"),
    ("{{ 1234567.891 | numberFormat('#,##0.00') }}", "1,234,567.89"),
    ("{{ 5 | numberFormat('000') }}", "005"),
    ("{{ 0.5 | numberFormat('#.##') }}", ".5"),
    ("{{ 0.125 | numberFormat('0.00') }}", "0.12"),   # half-even, as DecimalFormat
    ("{{ 0.256 | numberformat('0.0%') }}", "25.6%"),
    ("{{ -1234.5 | numberFormat('#,##0.0') }}", "-1,234.5"),
    ("{{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(0, 'floor') }}",
     "3 3.14 3 2"),
])
def test_number_filters(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,message", [
    ("{{ 'abc' | number }}", "abc is not a valid number."),
    ("{{ '1.5' | number('INT') }}", "not an integer"),
    ("{{ '9999999999' | number('INT') }}", "out of range for INT"),
    ("{{ [1] | number }}", "'number' filter can only be applied to String. Actual type was: list"),
    ("{{ '1' | number('WORD') }}", "Unknown number type 'WORD'"),
    ("{{ 'x' | abs }}", "Cannot convert to Number: x"),
    ("{{ 1 | numberFormat('0.0E0') }}", "Unsupported number format pattern '0.0E0'"),
])
def test_number_filter_errors(template, message):
    fails(template, message)


# -- encodings and hashes ------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    ("{{ 'test' | base64encode }}", "dGVzdA=="),
    ("{{ 'dGVzdA==' | base64decode }}", "test"),
    ("{{ 'é' | base64encode | base64decode }}", "é"),
    ("{{ 'The string ü@foo-bar' | urlencode }}", "The+string+%C3%BC%40foo-bar"),
    ("{{ 'a~b*c' | urlencode }}", "a%7Eb*c"),
    ("{{ 'The+string+%C3%BC%40foo-bar' | urldecode }}", "The string ü@foo-bar"),
    ("{{ 'test' | md5 }}", "098f6bcd4621d373cade4e832627b4f6"),
    ("{{ 'test' | sha1 }}", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"),
    ("{{ 'test' | sha256 }}", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("{{ 'test' | sha512 | length }}", "128"),
])
def test_encodings_and_hashes(template, expected):
    assert r(template) == expected


def test_base64decode_rejects_invalid_input():
    fails("{{ 'not base64!' | base64decode }}", "The 'base64decode' filter got an invalid base64 string")


def test_filters_keep_types_for_evaluate():
    assert evaluate("[3, 1] | sort", CONTEXT) == [1, 3]
    assert evaluate("'1.5' | number", CONTEXT) == 1.5
    assert evaluate("{'a': 1} | keys", CONTEXT) == ["a"]

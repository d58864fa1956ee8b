"""docs/expressions.md documents every filter, function and test, and its examples are true."""

import re
from pathlib import Path

import pytest

from orchestrator.templating import registry, render

DOC = (Path(__file__).resolve().parents[2] / "docs" / "expressions.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"`(\{\{[^`]*?\}\})` → `([^`]*)`", DOC)
CONTEXT = {
    "execution": {"startDate": "2024-03-15T08:30:00.000Z"},
    "inputs": {"name": "ada", "n": 3, "optional": None},
    "outputs": {"download": {"uri": "kestra:///file"}},
}
# Examples whose result is illustrative: the time, random values, a failure, a trailing newline.
ILLUSTRATIVE = {"{{ now() }}", "{{ uuid() }}", "{{ foo ?? bar ?? raise }}", "{{ 'key: value' | nindent(2) }}",
                "{{ {'key': 'value'} | yaml }}", "{{ fileExists(outputs.download.uri) }}",
                "{{ fileEmpty(outputs.download.uri) }}"}


@pytest.mark.parametrize("kind", ["filter", "function", "test"])
def test_every_name_is_documented(kind):
    undocumented = [name for name in registry._TABLES[kind] if f"`{name}" not in DOC and f"# {name}" not in DOC]
    assert not undocumented


def test_the_documentation_has_examples():
    assert len(EXAMPLES) > 60


@pytest.mark.parametrize("template,expected", [pair for pair in EXAMPLES if pair[0] not in ILLUSTRATIVE])
def test_documented_examples_render_as_documented(template, expected):
    assert render(template, CONTEXT) == expected

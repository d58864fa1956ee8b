"""The namespace rules of orchestrator/permissions.py, without a database."""

import pytest

from orchestrator.permissions import NamespaceRights, Right, covers, rights_from_grants


@pytest.mark.parametrize(("prefix", "namespace", "expected"), [
    ("company", "company", True),
    ("company", "company.team", True),
    ("company", "company.team.sub", True),
    ("company", "companyx", False),
    ("company", "company_team", False),
    ("company.team", "company", False),
])
def test_a_grant_covers_its_namespace_and_those_under_it(prefix, namespace, expected):
    assert covers(prefix, namespace) is expected


def test_write_and_execute_include_read_and_nothing_else():
    rights = rights_from_grants([("a", False, True, False), ("b", False, False, True), ("c", True, False, False)])
    assert [rights.allows(Right.READ, ns) for ns in ("a", "b", "c", "d")] == [True, True, True, False]
    assert [rights.allows(Right.WRITE, ns) for ns in ("a", "b", "c")] == [True, False, False]
    assert [rights.allows(Right.EXECUTE, ns) for ns in ("a", "b", "c")] == [False, True, False]


def test_a_grant_with_no_right_gives_nothing_and_nested_grants_merge():
    rights = rights_from_grants([("a", False, False, False), ("b", True, False, False), ("b.c", True, False, False)])
    assert not rights.allows(Right.READ, "a")
    assert rights.granted[Right.READ] == frozenset({"b"})
    assert not rights.allows_any(Right.WRITE)


def test_staff_rights_allow_everything():
    everything = NamespaceRights(everything=True)
    assert all(everything.allows(right, "any.where") for right in Right)
    assert not NamespaceRights().allows(Right.READ, "any.where")

"""Who may do what in which namespace: staff users everything, other users what the namespace
grants of their groups allow (orchestrator.models.NamespaceGrant, edited in the admin).

A grant on `company` covers `company` and every namespace under it (`company.team`), never
`companyx`. Write and execute include read. The API applies these rules through
orchestrator/api/auth.py; this module knows nothing of HTTP.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterable

from django.db.models import Q, QuerySet


class Right(str, enum.Enum):
    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"


# What a refusal says the user may not do.
ACTIONS = {Right.READ: "read", Right.WRITE: "change flows or namespace data",
           Right.EXECUTE: "run or act on executions"}


def covers(prefix: str, namespace: str) -> bool:
    """Whether a grant on `prefix` applies to `namespace`: the same, or one under it."""
    return namespace == prefix or namespace.startswith(prefix + ".")


def under(namespace: str, field_name: str = "namespace") -> Q:
    """The rows whose `field_name` is `namespace` or one under it: `covers` as a query."""
    return Q(**{field_name: namespace}) | Q(**{f"{field_name}__startswith": namespace + "."})


@dataclass(frozen=True)
class NamespaceRights:
    """What one user may do: everything (staff), or the namespaces granted for each right."""

    everything: bool = False
    granted: dict[Right, frozenset[str]] = field(default_factory=dict)

    def allows(self, right: Right, namespace: str) -> bool:
        return self.everything or any(covers(prefix, namespace) for prefix in self.granted.get(right, ()))

    def allows_any(self, right: Right) -> bool:
        return self.everything or bool(self.granted.get(right))

    def within(self, rows: QuerySet, right: Right = Right.READ, field_name: str = "namespace") -> QuerySet:
        """The rows whose namespace this right covers (all of them for staff)."""
        if self.everything:
            return rows
        condition = Q(pk__in=[])
        for prefix in self.granted.get(right, ()):
            condition |= under(prefix, field_name)
        return rows.filter(condition)


def rights_from_grants(grants: Iterable[tuple[str, bool, bool, bool]]) -> NamespaceRights:
    """Rights from (namespace, read, write, execute) rows; write and execute include read."""
    granted: dict[Right, set[str]] = {right: set() for right in Right}
    for namespace, read, write, execute in grants:
        if write:
            granted[Right.WRITE].add(namespace)
        if execute:
            granted[Right.EXECUTE].add(namespace)
        if read or write or execute:
            granted[Right.READ].add(namespace)
    return NamespaceRights(granted={right: frozenset(_outermost(names)) for right, names in granted.items()})


def _outermost(namespaces: set[str]) -> set[str]:
    """Leave out a namespace another one already covers: fewer conditions in every query."""
    return {name for name in namespaces if not any(other != name and covers(other, name) for other in namespaces)}


def rights_of(user) -> NamespaceRights:
    """The rights of a user: everything for an active staff user, nothing for an anonymous or
    inactive one, else the grants of their groups (one query)."""
    from orchestrator.models import NamespaceGrant

    if not (user and user.is_authenticated and user.is_active):
        return NamespaceRights()
    if user.is_staff:
        return NamespaceRights(everything=True)
    rows = NamespaceGrant.objects.filter(group__user=user).values_list("namespace", "read", "write", "execute")
    return rights_from_grants(rows)

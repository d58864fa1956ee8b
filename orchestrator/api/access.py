"""What a caller may do in the API: the namespace rights of orchestrator/permissions.py applied
to every view (docs/api.md, Permissions). Views call `require` and `readable`; nothing else
decides access."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from orchestrator.api.errors import not_found
from orchestrator.permissions import ACTIONS, NamespaceRights, Right, rights_of


def namespace_rights(request) -> NamespaceRights:
    """The user's namespace rights, read once per request."""
    rights = getattr(request, "_namespace_rights", None)
    if rights is None:
        rights = rights_of(request.user)
        request._namespace_rights = rights
    return rights


def require(request, right: Right, namespace: str, *, hidden: str | None = None) -> None:
    """Refuse with 403, naming the namespace and the right, unless the user has `right` there.

    `hidden` is the "does not exist" message of something found by its id: a user who may not
    even read its namespace gets that 404 instead, and learns nothing of it."""
    rights = namespace_rights(request)
    if rights.allows(right, namespace):
        return
    if hidden is not None and not rights.allows(Right.READ, namespace):
        raise not_found(hidden)
    raise PermissionDenied(f"{request.user.get_username()} may not {ACTIONS[right]} in namespace '{namespace}': "
                           f"no namespace grant of their groups gives {right.value} there")


def readable(request, rows: QuerySet, field_name: str = "namespace") -> QuerySet:
    """The rows of the namespaces the user may read: every list and search goes through this."""
    return namespace_rights(request).within(rows, Right.READ, field_name)


class NamespacePermission(permissions.BasePermission):
    """The API's one access rule (every ApiView has it). An anonymous user is refused (401);
    staff users may do everything. For anyone else:

    - a view whose URL names a `namespace` is checked here: reading needs read there, any other
      method needs the view's `unsafe_right` (write unless it says otherwise);
    - a view with `checks_namespaces = True` learns the namespace from what it reads (an
      execution, a flow's YAML) and calls `require` and `readable` itself;
    - any other view serves what belongs to no namespace: everyone reads it, only staff change it.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if user.is_staff:
            return True
        safe = request.method in permissions.SAFE_METHODS
        namespace = getattr(view, "kwargs", {}).get("namespace")
        if namespace is not None:
            require(request, Right.READ if safe else getattr(view, "unsafe_right", Right.WRITE), namespace)
            return True
        if safe or getattr(view, "checks_namespaces", False):
            return True
        raise PermissionDenied("Only staff users may change this")

"""Who may call the API: tokens as Kestra's clients send them, and the staff/read-only rule."""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's tokens (rest_framework.authtoken), read from `Authorization: Bearer <key>` as Kestra's
    API clients send them, and from DRF's own `Authorization: Token <key>`."""

    keyword = "Bearer"
    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid token header: give one token after the keyword")
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise AuthenticationFailed("Invalid token header: the token holds invalid characters") from None
        return self.authenticate_credentials(key)


class StaffOrReadOnly(permissions.BasePermission):
    """Staff users may do everything; other authenticated users may only read. (Namespace-scoped
    permissions through Django groups would refine this rule, not replace it.)"""

    message = "Only staff users may change flows and executions"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or bool(user.is_staff)

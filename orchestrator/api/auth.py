"""Who is calling the API: tokens as Kestra's clients send them. (What they may do there:
orchestrator/api/access.py.)"""

from __future__ import annotations

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

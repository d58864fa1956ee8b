"""`manage.py token create USER [--rotate]`: print an API token of a user (docs/api.md).

Tokens are DRF's (rest_framework.authtoken), one per user, sent as `Authorization: Bearer <key>`.
`create` prints the user's token, making it when there is none; `--rotate` replaces it, so the
old key stops working. `delete` removes it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Create, rotate or delete a user's API token."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="print the user's token, made if needed")
        create.add_argument("username")
        create.add_argument("--rotate", action="store_true", help="replace an existing token by a new one")
        delete = actions.add_parser("delete", help="delete the user's token")
        delete.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        from rest_framework.authtoken.models import Token

        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: options["username"]}).first()
        if user is None:
            raise CommandError(f"user {options['username']} does not exist (create it with `manage.py createsuperuser`)")
        if options["action"] == "delete":
            deleted, _ = Token.objects.filter(user=user).delete()
            self.stdout.write(f"Deleted the token of {options['username']}" if deleted
                              else f"{options['username']} has no token")
            return
        if options["rotate"]:
            Token.objects.filter(user=user).delete()
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)

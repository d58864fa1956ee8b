"""Ids made outside the repository (log lines, worker ids), of the same shape as its own."""

import uuid

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A random 22-character base62 id, the shape of Kestra's ids."""
    number = uuid.uuid4().int
    chars = []
    while number:
        number, rest = divmod(number, 62)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars)).rjust(22, "0")

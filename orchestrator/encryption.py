"""Encryption of values kept at rest: SECRET inputs are stored encrypted in execution.inputs and
travel encrypted in worker jobs; only the worker that runs a task decrypts them.

Fernet (AES-128-CBC with an HMAC-SHA256, from the `cryptography` package) with a key derived by
HKDF from HARRIER_ENCRYPTION_KEY, or from Django's SECRET_KEY when that is not set. Every
process that creates executions or runs tasks must share the key. The setting is read when a
value is first encrypted or decrypted, never at import, so workers may import this module
before Django is configured.

An encrypted value is stored as {"type": ENCRYPTED_TYPE, "value": <token>}, the shape of
Kestra's encrypted strings, so that it is told apart from any value a user could give.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any, Mapping

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENCRYPTED_TYPE = "io.harrier.datatype:encrypted"
_KEY_INFO = b"harrier secret inputs v1"


class DecryptionError(ValueError):
    pass


def _key_material() -> str:
    from django.conf import settings

    return getattr(settings, "HARRIER_ENCRYPTION_KEY", None) or settings.SECRET_KEY


@lru_cache(maxsize=4)
def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(material.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(text: str) -> dict[str, str]:
    token = _fernet(_key_material()).encrypt(text.encode("utf-8"))
    return {"type": ENCRYPTED_TYPE, "value": token.decode("ascii")}


def is_encrypted(value: Any) -> bool:
    return (
        isinstance(value, Mapping) and value.get("type") == ENCRYPTED_TYPE and isinstance(value.get("value"), str)
        and len(value) == 2
    )


def decrypt(value: Mapping[str, Any]) -> str:
    try:
        return _fernet(_key_material()).decrypt(value["value"].encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, KeyError, AttributeError):
        raise DecryptionError(
            "an encrypted value cannot be decrypted: HARRIER_ENCRYPTION_KEY (or HARRIER_SECRET_KEY) "
            "differs from the one it was encrypted with"
        ) from None

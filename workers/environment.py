"""What expressions may read of the process's environment: `envs`, `globals` and `secret()`.

Kestra's conventions: environment variables named with a prefix (`ENV_` by default) appear as
`envs.<name>` in lower case; secrets are environment variables `SECRET_<NAME>` holding base64.
Read lazily from the environment, never at import.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from functools import lru_cache
from typing import Any

from orchestrator import encryption
from orchestrator.templating import TemplateError, TemplateHooks, current_context

SECRET_PREFIX = "SECRET_"
MASK = "********"


@lru_cache(maxsize=1)
def envs() -> dict[str, str]:
    prefix = os.environ.get("HARRIER_ENVS_PREFIX", "ENV_")
    return {name[len(prefix):].lower(): value for name, value in os.environ.items() if name.startswith(prefix)}


@lru_cache(maxsize=1)
def global_variables() -> dict[str, Any]:
    """`globals`: a JSON object from HARRIER_GLOBALS (operator-wide constants)."""
    text = os.environ.get("HARRIER_GLOBALS", "")
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("HARRIER_GLOBALS must be a JSON object")
    return value


def ambient() -> dict[str, Any]:
    return {"envs": dict(envs()), "globals": dict(global_variables())}


def read_secret(name: str) -> str:
    raw = os.environ.get(f"{SECRET_PREFIX}{name}")
    if raw is None:
        raise TemplateError(f"Unable to find secret '{name}' (set the environment variable {SECRET_PREFIX}{name})")
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TemplateError(f"secret '{name}' is not valid base64 text ({SECRET_PREFIX}{name})") from None


def _variants(secret: str) -> set[str]:
    """The forms a secret commonly takes after a filter, so that a log line shows none of them."""
    forms = {secret, secret.upper(), secret.lower(), secret.title(), secret.capitalize(), secret.strip(),
             base64.b64encode(secret.encode()).decode(), json.dumps(secret)[1:-1]}
    return {form for form in forms if len(form) >= 3}


class SecretHooks(TemplateHooks):
    """A worker's hooks: `secret('NAME')`, remembering every value it revealed so it can be
    masked, and `errorLogs()` from what the executor put in the job."""

    def __init__(self, error_logs: list | None = None) -> None:
        self.revealed: set[str] = set()
        self._error_logs = error_logs or []

    def error_logs(self) -> list:
        return list(self._error_logs)

    def secret(self, name: str) -> str:
        value = read_secret(name)
        self.revealed |= _variants(value)
        return value

    def kv(self, key: str, namespace: str | None = None, error_on_missing: bool = True) -> Any:
        """`kv(key, namespace, errorOnMissing)`, from the KV store in the internal storage. The flow's
        namespace is the rendering context's, as Kestra's function takes it."""
        from orchestrator import kv

        flow = current_context().get("flow") or {}
        try:
            return kv.find(key, flow.get("namespace"), namespace).value
        except kv.KVNotFound as error:
            if error_on_missing:
                raise TemplateError(str(error)) from None
            return None
        except kv.KVError as error:
            raise TemplateError(str(error)) from None

    def reveal(self, value: Any) -> Any:
        """`value` with its encrypted parts (SECRET inputs) decrypted, each remembered like a
        `secret()` value so that logs and outputs mask it."""
        if encryption.is_encrypted(value):
            try:
                plain = encryption.decrypt(value)
            except encryption.DecryptionError as error:
                raise TemplateError(f"a SECRET input cannot be read: {error}") from None
            self.revealed |= _variants(plain)
            return plain
        if isinstance(value, dict):
            return {key: self.reveal(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.reveal(item) for item in value]
        return value

    def mask(self, value: Any) -> Any:
        if not self.revealed:
            return value
        if isinstance(value, str):
            for form in sorted(self.revealed, key=len, reverse=True):
                value = value.replace(form, MASK)
            return value
        if isinstance(value, list):
            return [self.mask(item) for item in value]
        if isinstance(value, dict):
            return {key: self.mask(item) for key, item in value.items()}
        return value

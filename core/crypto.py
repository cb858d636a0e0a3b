"""Secrets at rest (HTTP tool credentials, upstream server tokens): encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

Keys come from `SECRETS_ENCRYPTION_KEYS` (comma-separated Fernet keys; the first encrypts, all decrypt, so a key can
be rotated by putting the new one first and re-saving). Without it, local and test settings derive one key from
`SECRET_KEY`; production requires the setting. `EncryptedTextField` stores a value encrypted and gives it back in
clear to the code that reads the model, never to a form, page, API or log by itself.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

from core.errors import ToolportError

PREFIX = "fernet:"


class SecretUnreadable(ToolportError):
    code = "secret_unreadable"


def derived_key(secret: str, purpose: str = "toolport secrets at rest") -> str:
    """A Fernet key derived from another secret (local and test settings use SECRET_KEY)."""
    digest = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise SecretUnreadable("SECRETS_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _keys() -> tuple[str, ...]:
    return tuple(settings.SECRETS_ENCRYPTION_KEYS)


def encrypt(plaintext: str) -> str:
    return PREFIX + _fernet(_keys()).encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise SecretUnreadable("This value was not stored encrypted.")
    try:
        return _fernet(_keys()).decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken as error:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the configured SECRETS_ENCRYPTION_KEYS: was a key removed?"
        ) from error


class EncryptedTextField(models.TextField):
    """A text column holding `fernet:<token>`; Python code sees the clear value. Empty stays empty."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        return value if value in (None, "") else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value if value in (None, "") else encrypt(str(value))

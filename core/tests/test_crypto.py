"""Secrets at rest: encrypted, readable back, rotatable, and a clear error when a key is missing."""

import pytest
from cryptography.fernet import Fernet

from core import crypto
from core.crypto import EncryptedTextField, SecretUnreadable, decrypt, encrypt


def test_a_secret_is_stored_encrypted_and_read_back():
    stored = encrypt("Bearer upstream-token-123")
    assert stored.startswith("fernet:")
    assert "upstream-token-123" not in stored
    assert decrypt(stored) == "Bearer upstream-token-123"
    assert encrypt("same") != encrypt("same")  # random IV: equal secrets do not look equal


def test_keys_rotate_without_losing_old_secrets(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEYS = [old_key]
    stored_with_old = encrypt("s3cret")

    settings.SECRETS_ENCRYPTION_KEYS = [new_key, old_key]
    assert decrypt(stored_with_old) == "s3cret"
    stored_with_new = encrypt("s3cret")

    settings.SECRETS_ENCRYPTION_KEYS = [new_key]
    assert decrypt(stored_with_new) == "s3cret"
    with pytest.raises(SecretUnreadable, match="was a key removed"):
        decrypt(stored_with_old)


def test_the_model_field_encrypts_on_the_way_in_and_decrypts_on_the_way_out():
    field = EncryptedTextField()
    stored = field.get_prep_value("api-token")
    assert stored.startswith(crypto.PREFIX)
    assert field.from_db_value(stored, None, None) == "api-token"
    assert field.get_prep_value("") == ""
    assert field.from_db_value(None, None, None) is None

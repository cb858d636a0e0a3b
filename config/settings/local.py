"""Local development: `make run`. Debug on, a secret key generated once and kept in var/, static files served
straight from the source folders."""

import secrets

from config.env import VAR_DIR, env
from config.settings.base import *  # noqa: F403
from core.crypto import derived_key

DEBUG = env.bool("DJANGO_DEBUG", default=True)


def _local_secret_key() -> str:
    """A random key made on first run and kept in var/secret_key, so sessions survive restarts."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _local_secret_key()
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Derived from the secret key so a local install needs no extra secret; production sets its own.
API_KEY_PEPPER = env.str("API_KEY_PEPPER", default="") or f"local-pepper:{SECRET_KEY}"
SECRETS_ENCRYPTION_KEYS = env.list("SECRETS_ENCRYPTION_KEYS", default=[]) or [derived_key(SECRET_KEY)]

"""The test suite: the same real PostgreSQL + pgvector, and real Redis for cache, channel layer and broker
(`REDIS_URL`, else a private server the suite starts on a socket under var/run; see conftest.py)."""

import os

from core.embedded import redis as embedded_redis

os.environ.setdefault("REDIS_URL", embedded_redis.url())

from config.settings.base import *  # noqa: F403
from core.crypto import derived_key

SECRET_KEY = "test-only-secret-key-not-for-production"  # noqa: S105
API_KEY_PEPPER = "test-only-pepper"
SECRETS_ENCRYPTION_KEYS = [derived_key(SECRET_KEY)]
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Test keys carry their own prefix so the suite can clear them between tests without touching anything else
# in a shared Redis (see conftest.py).
CACHES["default"]["KEY_PREFIX"] = "toolport-test"  # noqa: F405
QUOTA_REDIS_PREFIX = "toolport-test:quota"
MCP_REDIS_PREFIX = "toolport-test:mcp"

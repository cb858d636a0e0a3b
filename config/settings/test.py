"""The test suite: the same real PostgreSQL + pgvector, and real Redis for cache, channel layer and broker
(`REDIS_URL`, else a private server the suite starts on a socket under var/run; see conftest.py)."""

import os

from core.embedded import redis as embedded_redis
from core.embedded.paths import var_dir

# TOOLPORT_TEST_RUN=<1-15> lets several runs of the suite share this machine's servers at once (several checkouts,
# or agents working side by side): each takes its own test database, Redis database and key prefixes.
TEST_RUN = os.environ.get("TOOLPORT_TEST_RUN", "")
if TEST_RUN and not (TEST_RUN.isdigit() and 1 <= int(TEST_RUN) <= 15):
    raise ValueError("TOOLPORT_TEST_RUN is a number from 1 to 15.")
os.environ.setdefault("REDIS_URL", embedded_redis.url() + (f"?db={TEST_RUN}" if TEST_RUN else ""))
# Metric samples of this run's processes (the suite and the servers it starts), apart from other runs' and make run's.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir() / "prometheus" / f"test{TEST_RUN or 0}"))

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import CELERY_BROKER_URL  # noqa: E402
from core.crypto import derived_key  # noqa: E402

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
CACHES["default"]["KEY_PREFIX"] = f"toolport-test{TEST_RUN}"  # noqa: F405
QUOTA_REDIS_PREFIX = f"toolport-test{TEST_RUN}:quota"
MCP_REDIS_PREFIX = f"toolport-test{TEST_RUN}:mcp"
if TEST_RUN:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{TEST_RUN}"}  # noqa: F405
    if CELERY_BROKER_URL.startswith("redis+socket://"):
        CELERY_BROKER_URL = CELERY_BROKER_URL.replace(f"?db={TEST_RUN}", f"?virtual_host={TEST_RUN}")

# Usage events are written when a test flushes them (monitoring.usage.usage_events_flush), not by the background
# writer at a moment a test cannot predict; a server the suite starts may set its own interval in its environment.
USAGE_EVENTS_FLUSH_SECONDS = env.float("USAGE_EVENTS_FLUSH_SECONDS", default=3600.0)  # noqa: F405
USAGE_EVENTS_BATCH = env.int("USAGE_EVENTS_BATCH", default=1_000_000)  # noqa: F405

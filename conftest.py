"""Start the embedded services the suite needs (PostgreSQL + pgvector, a private Redis) unless the environment
points at real ones (DATABASE_URL, REDIS_URL); stop at the end only what this run started."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.embedded import redis as embedded_redis
from core.embedded.postgres import EmbeddedPostgres

pytest_plugins = ["billing.tests.fixtures"]

_started: list[EmbeddedPostgres | embedded_redis.EmbeddedRedis] = []


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DATABASE_URL"):
        database = EmbeddedPostgres()
        if database.start():
            _started.append(database)
    if os.environ.get("REDIS_URL", "").split("?")[0] == embedded_redis.url():
        redis = embedded_redis.EmbeddedRedis()
        if redis.start():
            _started.append(redis)


def pytest_unconfigure(config: pytest.Config) -> None:
    from django.db import connections

    from monitoring.usage import usage_events_discard

    usage_events_discard()  # calls the tests made and never flushed: nothing to write them to at exit
    connections.close_all()
    if os.environ.get("TOOLPORT_TEST_RUN"):  # parallel runs share the servers: the first to finish must not stop them
        return
    while _started:
        _started.pop().stop()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with an empty cache (rate limits, cached keys) in a Redis the suite may share."""
    from django.conf import settings
    from django.core.cache import cache

    client = cache._cache.get_client()  # type: ignore[attr-defined]
    keys = list(client.scan_iter(f"{settings.CACHES['default']['KEY_PREFIX']}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _seed_data(request: pytest.FixtureRequest) -> None:
    """Plans and built-in tools are seed data that a flush (after any test on committed data) removes: ensure them
    per DB test."""
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or bool({"db", "transactional_db", "live_server"} & set(request.fixturenames))
    if not uses_db:
        return
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    from billing.plans import plans_seed
    from tools.services import builtin_tools_sync

    plans_seed()
    builtin_tools_sync()


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Files a test stores (documents) go to a folder of its own (local disk storage)."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def celery_worker() -> Iterator[object]:
    """A real Celery worker in this process, consuming the suite's Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker

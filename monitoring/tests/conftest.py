from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app


@pytest.fixture
def celery_worker() -> Iterator[object]:
    """A real Celery worker in this process, consuming the suite's Redis broker."""
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Documents of a test go to a folder of its own (local disk storage)."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path

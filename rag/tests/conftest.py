from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from tests.mcp.conftest import mcp_server  # noqa: F401 - the ASGI server fixture, for the MCP client tests


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """Each test stores its documents in a folder of its own (local disk storage)."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def celery_worker():
    """A real Celery worker in this process, consuming the suite's Redis broker."""
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker

"""/readyz on a real server process turns 503, naming the database, when PostgreSQL stops."""

import os
import signal
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from core.embedded.paths import BASE_DIR
from core.embedded.postgres import EmbeddedPostgres
from tests.integration.conftest import free_port, product_environment

pytestmark = pytest.mark.slow


def _serve(environment: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """daphne alone (no migrations needed: /readyz reads only the server and the pgvector extension)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=BASE_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("daphne did not start")


def test_readyz_turns_503_when_the_database_stops(private_var_dir):
    database = EmbeddedPostgres(data_dir=private_var_dir / "postgres", sockets=private_var_dir / "run")
    database.start()
    with psycopg.connect(database.connection.url, autocommit=True) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS vector")
    environment = product_environment(private_var_dir, DATABASE_URL=database.connection.url)
    environment["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1"
    port = free_port()
    server = _serve({**os.environ, **environment}, port)
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200, ready.text

        database.stop()

        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=15)
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["database"]["ok"] is False
        assert "OperationalError" in checks["database"]["detail"]
        assert checks["pgvector"]["ok"] is False
        assert checks["cache"]["ok"] is True
        assert checks["storage"]["ok"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # alive, just not ready
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
        database.stop()

"""/readyz on a real server process turns 503, naming the database, when PostgreSQL stops."""

import signal

import httpx
import pytest

from core.embedded.postgres import EmbeddedPostgres
from tests.integration.conftest import ProductProcess, free_port, product_environment

pytestmark = pytest.mark.slow


def test_readyz_turns_503_when_the_database_stops(private_var_dir):
    database = EmbeddedPostgres(data_dir=private_var_dir / "postgres", sockets=private_var_dir / "run")
    database.start()
    environment = product_environment(private_var_dir, DATABASE_URL=database.connection.url)
    port = free_port()
    server = ProductProcess(["runstack", "--no-worker", f"--port={port}"], environment)
    try:
        server.wait_for("Toolport is running", 120)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200

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
        server.process.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0, server.read()
    finally:
        server.kill()
        database.stop()

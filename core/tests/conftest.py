import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.embedded.postgres import EmbeddedPostgres


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A throwaway embedded server in its own folder (reachable by 'nobody' when the suite runs as root)."""
    root = Path(tempfile.mkdtemp(prefix="tp-pg-"))
    root.chmod(0o711)
    server = EmbeddedPostgres(data_dir=root / "data", sockets=root / "run")
    yield server
    server.stop()
    os.system(f"rm -rf {root}")  # noqa: S605 - files may belong to 'nobody'; root removes them either way

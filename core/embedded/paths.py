"""Where the embedded services keep their data and sockets."""

import hashlib
import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS), NUL included.
_MAX_SOCKET_PATH = 100


def var_dir() -> Path:
    """The folder for everything the project writes at run time (`TOOLPORT_VAR_DIR`, default `<repo>/var`)."""
    return Path(os.environ.get("TOOLPORT_VAR_DIR") or BASE_DIR / "var").resolve()


def socket_dir(name: str) -> Path:
    """A folder for unix sockets: `var/run/<name>`, or a short one under the temp dir when that path is too long."""
    preferred = var_dir() / "run" / name
    if len(str(preferred / ".s.PGSQL.5432.lock")) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"toolport-{digest}" / name

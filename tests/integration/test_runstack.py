"""`make run` end to end: a fresh var/, the whole stack as real processes, then Ctrl-C stops every one of them."""

import re
import signal
import socket

import httpx
import psutil
import pytest

from tests.integration.conftest import ProductProcess, free_port, product_environment

pytestmark = pytest.mark.slow

START_TIMEOUT = 180


def _processes_using(folder: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "environ"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            environment = process.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if folder in cmdline or environment.get("TOOLPORT_VAR_DIR") == folder:
            found.append(f"{process.info['pid']} {cmdline}")
    return found


def _sign_in_to_admin(base: str, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as browser:
        browser.get("/admin/login/")
        response = browser.post(
            "/admin/login/",
            data={
                "username": email,
                "password": password,
                "next": "/admin/",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text
        return browser.get(response.headers["location"])


def test_run_serves_the_product_and_ctrl_c_stops_everything(private_var_dir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = product_environment(private_var_dir, TOOLPORT_PORT=str(port))

    first = ProductProcess(["runstack"], environment)
    try:
        output = first.wait_for("Toolport is running", START_TIMEOUT)
        first.wait_for("ready.", 60)  # the Celery worker reports ready
        printed = re.search(r"password: (\S+)", output)
        assert printed is not None, output
        password = printed.group(1)

        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        assert all(check["ok"] for check in ready.json()["checks"].values())
        landing = httpx.get(f"{base}/")
        assert landing.status_code == 200
        assert "Toolport" in landing.text
        assert httpx.get(f"{base}/static/vendor/htmx/htmx.min.js").status_code == 200
        assert httpx.post(f"{base}/mcp", json={}).status_code == 401  # the MCP path asks for an API key

        admin = _sign_in_to_admin(base, "admin@toolport.localhost", password)
        assert admin.status_code == 200
        assert "Site administration" in admin.text or "Toolport" in admin.text

        first.process.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 0, first.read()
    finally:
        first.kill()

    assert "Stopped. Data is kept in var/." in first.read()
    assert _processes_using(str(private_var_dir)) == []
    assert (private_var_dir / "postgres" / "PG_VERSION").exists()

    # Re-running is safe: same data, the staff user is kept and its password is not printed again.
    second = ProductProcess(["runstack", "--no-worker"], environment)
    try:
        output = second.wait_for("Toolport is running", START_TIMEOUT)
        assert "password:" not in output
        assert "exists" in output
        assert _sign_in_to_admin(base, "admin@toolport.localhost", password).status_code == 200
        second.process.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, second.read()
    finally:
        second.kill()
    assert _processes_using(str(private_var_dir)) == []


def test_run_refuses_a_port_in_use_with_a_clear_message(private_var_dir):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        run = ProductProcess(["runstack"], product_environment(private_var_dir, TOOLPORT_PORT=str(port)))
        try:
            assert run.wait(timeout=60) != 0
        finally:
            run.kill()
    assert f"Port {port} on 127.0.0.1 is already in use" in run.read()
    assert not (private_var_dir / "postgres").exists()  # failed before starting anything

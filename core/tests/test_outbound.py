"""The SSRF guard: every private, local or metadata destination is refused, before and after redirects; a public
or explicitly allowed host is reached. No request is ever sent to a refused address."""

import http.server
import threading

import pytest

from core.outbound import OutboundRefused, ResponseTooLarge, address_refusal, check_url, fetch, resolve_public


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8080/x", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://172.31.255.254/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://169.254.10.10/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[fc00::1]/", "private"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://localhost/", "loopback"),  # a name that resolves to a private address
    ],
)
def test_private_and_local_destinations_are_refused(url, reason, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(OutboundRefused, match=reason):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/", "//example.com"]
)
def test_only_http_and_https(url):
    with pytest.raises(OutboundRefused, match="Only http and https"):
        check_url(url)


def test_public_addresses_pass():
    for address in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"):
        assert address_refusal(address) is None


def test_an_allow_listed_internal_host_passes(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:9999"]
    assert resolve_public("127.0.0.1", 9999) == ["127.0.0.1"]
    with pytest.raises(OutboundRefused):
        resolve_public("127.0.0.1", 9998)  # same host, another port: not allowed


class _Handler(http.server.BaseHTTPRequestHandler):
    redirect_to = ""
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to)
            self.end_headers()
            return
        body = b"x" * (2000 if self.path == "/big" else 5)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server(settings):
    """A test server on 127.0.0.1, allow-listed by port (as an operator would allow a trusted internal host)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    _Handler.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def test_an_allowed_host_is_reached_and_the_body_is_capped(local_server):
    response, body = fetch("GET", f"{local_server}/ok")
    assert response.status_code == 200
    assert body == b"xxxxx"
    with pytest.raises(ResponseTooLarge):
        fetch("GET", f"{local_server}/big", max_bytes=1000)


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/admin", "http://localhost:1/", "file:///etc/passwd"],
)
def test_a_redirect_to_a_refused_destination_is_refused(local_server, target):
    _Handler.redirect_to = target
    with pytest.raises(OutboundRefused):
        fetch("GET", f"{local_server}/redirect")
    assert _Handler.hits == ["/redirect"]


def test_dns_rebinding_between_check_and_connect_is_caught(local_server, monkeypatch, settings):
    """The name passes the first check, then resolves to a private address when the socket connects."""
    import core.outbound as outbound

    settings.OUTBOUND_ALLOWED_HOSTS = []
    answers = iter([[(2, 1, 6, "", ("93.184.216.34", 80))], [(2, 1, 6, "", ("10.0.0.7", 80))]])
    monkeypatch.setattr(outbound.socket, "getaddrinfo", lambda *args, **kwargs: next(answers))
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.7, a private address"):
        fetch("GET", "http://rebinding.example/")

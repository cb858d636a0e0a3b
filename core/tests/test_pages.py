"""The public landing page and the console shell a signed-in user sees."""

import pytest
from django.urls import reverse

from core.views import CONSOLE_SECTIONS


def test_landing_page_says_what_toolport_is(client):
    response = client.get("/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Model Context Protocol" in content
    for plan in ("Free", "Starter", "Professional", "Enterprise"):
        assert plan in content
    assert "/static/vendor/htmx/htmx.min.js" in content


@pytest.mark.django_db
def test_console_asks_anonymous_visitors_to_sign_in(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_console_shell_shows_every_section(admin_client):
    response = admin_client.get("/console/")
    assert response.status_code == 200
    content = response.content.decode()
    for _slug, label, _description in CONSOLE_SECTIONS:
        assert label in content
    assert 'aria-current="page"' in content

    section = admin_client.get("/console/api-keys/")
    assert section.status_code == 200
    assert "Coming soon" in section.content.decode()
    assert admin_client.get("/console/no-such-thing/").status_code == 404


def test_vendored_scripts_are_served_with_their_licences(client):
    for path in (
        "vendor/htmx/htmx.min.js",
        "vendor/alpinejs/alpine.min.js",
        "vendor/chartjs/chart.umd.min.js",
    ):
        response = client.get(f"/static/{path}")
        assert response.status_code == 200, path
        b"".join(response.streaming_content)

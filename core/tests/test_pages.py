"""The public landing page and the static files every page needs."""


def test_landing_page_says_what_toolport_is(client):
    response = client.get("/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Model Context Protocol" in content
    for plan in ("Free", "Starter", "Professional", "Enterprise"):
        assert plan in content
    assert "/static/vendor/htmx/htmx.min.js" in content
    assert 'href="/accounts/signup/"' in content
    assert 'href="/accounts/login/"' in content


def test_vendored_scripts_are_served(client):
    for path in ("vendor/htmx/htmx.min.js", "vendor/alpinejs/alpine.min.js", "vendor/chartjs/chart.umd.min.js"):
        response = client.get(f"/static/{path}")
        assert response.status_code == 200, path
        b"".join(response.streaming_content)

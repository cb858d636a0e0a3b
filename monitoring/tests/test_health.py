"""Liveness and readiness probes, against the real database, Redis and storage."""

import pytest


def test_healthz_answers_without_touching_anything(client):
    # No django_db mark: pytest-django fails the test if the view touches the database.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_reports_every_check_ok(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "pgvector", "cache", "broker", "storage"}
    assert all(check["ok"] for check in body["checks"].values()), body
    assert body["checks"]["database"]["detail"].startswith("PostgreSQL")
    assert body["checks"]["pgvector"]["detail"].startswith("vector 0.8")
    assert body["checks"]["cache"]["detail"] == "RedisCache"
    assert "redis" in body["checks"]["broker"]["detail"]


@pytest.mark.django_db
def test_readyz_turns_503_when_the_cache_is_unreachable(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "unix:///nonexistent/redis.sock",
        }
    }

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["cache"]["ok"] is False
    assert "ConnectionError" in body["checks"]["cache"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_probes_refuse_writes(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405

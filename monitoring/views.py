"""Liveness and readiness probes for load balancers and orchestrators; the Prometheus exposition, the deployment's
counts and versions for operators; the public description of the MCP endpoint."""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from monitoring.health import readiness_run
from monitoring.inventory import capabilities as capabilities_describe
from monitoring.inventory import deployment_stats
from monitoring.metrics import metrics_exposition, readiness_record


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: database, pgvector, cache, broker and storage all answer. 503 if any does not."""
    results = readiness_run()
    readiness_record(results)
    ready = all(result.ok for result in results)
    return JsonResponse(
        {
            "status": "ok" if ready else "fail",
            "checks": {result.name: result.as_dict() for result in results},
        },
        status=200 if ready else 503,
    )


def _operator_refusal(request: HttpRequest, *, staff_allowed: bool) -> HttpResponse | None:
    """None if the request may read operator data: `Authorization: Bearer <METRICS_TOKEN>` (or, where allowed, a
    signed-in staff user). Without a token configured the endpoint does not exist (404) for anyone else."""
    if staff_allowed and getattr(request.user, "is_staff", False):
        return None
    token: str = settings.METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
        return None
    response = JsonResponse(
        {"code": "unauthenticated", "message": "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>."},
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of every process on this host (multiprocess mode), for the metrics token only."""
    refusal = _operator_refusal(request, staff_allowed=False)
    if refusal is not None:
        return refusal
    body, content_type = metrics_exposition()
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    """Counts (tenants, keys, catalogue, knowledge) and versions: business data, for the metrics token or staff."""
    refusal = _operator_refusal(request, staff_allowed=True)
    if refusal is not None:
        return refusal
    return JsonResponse(deployment_stats())


@require_GET
def capabilities(request: HttpRequest) -> JsonResponse:
    """Transports, protocol versions and the global catalogue's size: public, as an MCP client may ask first."""
    response = JsonResponse(capabilities_describe())
    response["Cache-Control"] = "public, max-age=60"
    return response

"""Liveness and readiness probes for load balancers and orchestrators."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from monitoring.health import readiness_run


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
    ready = all(result.ok for result in results)
    return JsonResponse(
        {
            "status": "ok" if ready else "fail",
            "checks": {result.name: result.as_dict() for result in results},
        },
        status=200 if ready else 503,
    )

from django.urls import path

from monitoring import console

usage = "w/<uuid:workspace_id>/usage"

console_patterns = [
    path(f"{usage}/", console.usage_page, name="usage"),
    path(f"{usage}/quotas/", console.usage_quotas, name="usage_quotas"),
    path(f"{usage}/charts/", console.usage_charts, name="usage_charts"),
    path(f"{usage}/summary/", console.usage_summary, name="usage_summary"),
    path(f"{usage}/calls/", console.usage_calls, name="usage_calls"),
    path(f"{usage}/calls.csv", console.usage_calls_csv, name="usage_calls_csv"),
]

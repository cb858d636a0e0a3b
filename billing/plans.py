"""The four tiers as the pricing page shows them; seeded by a migration, then edited by staff in the admin."""

from typing import Any

MB = 1024 * 1024
GB = 1024 * MB

PLANS = [
    {
        "tier": "free",
        "name": "Free",
        "sort_order": 0,
        "price_cents": 0,
        "description": "Try Toolport with a small monthly quota.",
        "api_calls_per_month": 1_000,
        "ai_operations_per_month": 500,
        "storage_bytes": 100 * MB,
        "max_active_api_keys": 2,
        "max_concurrent_sessions": 2,
        "requests_per_minute_per_key": 30,
        "max_security_level": 2,
        "custom_tools_allowed": False,
        "max_upload_bytes": 10 * MB,
    },
    {
        "tier": "starter",
        "name": "Starter",
        "sort_order": 1,
        "price_cents": 2_900,
        "description": "For a person or a small project.",
        "api_calls_per_month": 10_000,
        "ai_operations_per_month": 5_000,
        "storage_bytes": 1 * GB,
        "max_active_api_keys": 10,
        "max_concurrent_sessions": 10,
        "requests_per_minute_per_key": 120,
        "max_security_level": 3,
        "custom_tools_allowed": False,
        "max_upload_bytes": 25 * MB,
    },
    {
        "tier": "professional",
        "name": "Professional",
        "sort_order": 2,
        "price_cents": 9_900,
        "description": "For teams that run on it.",
        "api_calls_per_month": 100_000,
        "ai_operations_per_month": 50_000,
        "storage_bytes": 10 * GB,
        "max_active_api_keys": 50,
        "max_concurrent_sessions": 50,
        "requests_per_minute_per_key": 600,
        "max_security_level": 4,
        "custom_tools_allowed": True,
        "max_upload_bytes": 100 * MB,
    },
    {
        "tier": "enterprise",
        "name": "Enterprise",
        "sort_order": 3,
        "price_cents": None,
        "description": "Unlimited use, support and terms to fit. Contact us.",
        "api_calls_per_month": None,
        "ai_operations_per_month": None,
        "storage_bytes": None,
        "max_active_api_keys": None,
        "max_concurrent_sessions": None,
        "requests_per_minute_per_key": None,
        "max_security_level": 4,
        "custom_tools_allowed": True,
        "max_upload_bytes": 500 * MB,
    },
]


def plans_seed(plan_model: Any = None) -> None:
    """Create the tiers that do not exist yet; never overwrite what staff have edited."""
    if plan_model is None:
        from billing.models import Plan as plan_model
    for plan in PLANS:
        plan_model.objects.get_or_create(tier=plan["tier"], defaults=plan)

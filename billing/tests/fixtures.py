"""Stripe at the HTTP boundary, as pytest fixtures (registered for every suite in the root conftest)."""

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from billing.models import Plan, Tier
from billing.tests.stripe_boundary import FakeStripe


@pytest.fixture
def stripe_api(settings) -> Iterator[FakeStripe]:
    """Stripe test mode with the HTTP boundary replaced; Starter and Professional are for sale."""
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_51ToolportTestKey0000000000000000"
    settings.STRIPE_LIVE_MODE = False
    fake = FakeStripe()
    previous, stripe.default_http_client = stripe.default_http_client, fake
    for tier, amount in ((Tier.STARTER, 2900), (Tier.PROFESSIONAL, 9900)):
        price = fake.product_and_price(name=tier.label, unit_amount=amount, lookup_key=f"toolport_{tier}_monthly")
        Plan.objects.filter(tier=tier).update(stripe_product_id=price["product"], stripe_price_id=price["id"])
    yield fake
    stripe.default_http_client = previous


@pytest.fixture
def webhook(stripe_api, client):
    """A dj-stripe WebhookEndpoint row with its secret, and a function that posts a signed event to it."""
    from djstripe.models import WebhookEndpoint

    endpoint = WebhookEndpoint.sync_from_stripe_data(
        stripe_api.webhook_endpoint("https://toolport.example.com/stripe/webhook/"),
        api_key="sk_test_51ToolportTestKey0000000000000000",
    )
    secret = stripe_api.objects[endpoint.id]["secret"]
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=secret)

    def post(event: dict[str, Any], *, signing_secret: str | None = None):
        body, signature = FakeStripe.signed(event, signing_secret or secret)
        return client.post(
            f"/stripe/webhook/{endpoint.djstripe_uuid}/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
        )

    return post

"""An owner picks Starter on the pricing page, goes through (boundary-stubbed) Stripe Checkout, the signed webhooks
arrive, and the Billing page shows Starter with its quotas."""

import time

import httpx
import pytest
from djstripe.models import WebhookEndpoint

from accounts.models import Role
from accounts.tests.factories import PASSWORD, workspace_with
from billing.models import BillingAccount, Plan, Tier
from billing.tests.stripe_boundary import FakeStripe

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_owner_upgrades_to_starter(page, live_server, stripe_api):
    workspace, (owner,) = workspace_with(Role.OWNER)
    endpoint = WebhookEndpoint.sync_from_stripe_data(
        stripe_api.webhook_endpoint(f"{live_server.url}/stripe/webhook/"),
        api_key="sk_test_51ToolportTestKey0000000000000000",
    )
    secret = stripe_api.objects[endpoint.id]["secret"]
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=secret)
    page.route(
        "https://checkout.stripe.com/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>Stripe Checkout (test)</h1>"),
    )

    page.goto("/accounts/login/")
    page.get_by_label("Email:").fill(owner.user.email)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Dashboard").wait_for()

    page.goto("/pricing/")
    page.get_by_role("button", name="Choose Starter").click()
    page.get_by_role("heading", name="Stripe Checkout (test)").wait_for()
    assert page.url.startswith("https://checkout.stripe.com/c/pay/cs_test_")

    # Stripe's side: the customer paid; Checkout created the subscription and Stripe sends the webhooks.
    account = BillingAccount.objects.get(workspace=workspace)
    session_id = page.url.rsplit("/", 1)[1]
    session = stripe_api.update(session_id, status="complete", payment_status="paid")
    price = stripe_api.objects[Plan.objects.get(tier=Tier.STARTER).stripe_price_id]
    subscription = stripe_api.subscription(customer=account.stripe_customer_id, price=price)
    for kind, obj in (("checkout.session.completed", session), ("customer.subscription.created", subscription)):
        body, signature = FakeStripe.signed(stripe_api.event(kind, obj, created=int(time.time())), secret)
        delivered = httpx.post(
            f"{live_server.url}/stripe/webhook/{endpoint.djstripe_uuid}/",
            content=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )
        assert delivered.status_code == 200, delivered.text

    page.goto(f"/console/w/{workspace.pk}/billing/?checkout=success")
    page.get_by_role("heading", name="Starter plan").wait_for()
    assert "0 of 10,000" in page.locator("#quota-api_calls").inner_text()
    assert "0 of 5,000" in page.locator("#quota-ai_operations").inner_text()
    assert "Your plan" in page.locator("#plan-starter").inner_text()

"""Upgrading through Stripe Checkout, managing in the portal, syncing plans: Stripe replaced at the HTTP boundary."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Role
from accounts.tests.factories import workspace_with
from billing.models import BillingAccount, Plan, Tier

pytestmark = pytest.mark.django_db


def test_an_owner_upgrades_through_checkout(stripe_api, client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    client.force_login(owner.user)
    page = client.get(reverse("console:billing", args=[workspace.pk])).content.decode()
    assert "Upgrade to Starter" in page

    response = client.post(reverse("console:billing_checkout", args=[workspace.pk, "starter"]))

    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    _method, _path, session = next(r for r in stripe_api.requests if r[1] == "/v1/checkout/sessions")
    account = BillingAccount.objects.get(workspace=workspace)
    assert session["customer"] == account.stripe_customer_id
    assert session["client_reference_id"] == str(workspace.pk)
    assert session["line_items"] == [{"price": Plan.objects.get(tier=Tier.STARTER).stripe_price_id, "quantity": "1"}]
    assert session["success_url"].endswith(f"/console/w/{workspace.pk}/billing/?checkout=success")
    customer = stripe_api.objects[account.stripe_customer_id]
    assert customer["metadata"] == {"toolport_workspace_id": str(workspace.pk)}


def test_only_owners_change_the_plan(stripe_api, client):
    workspace, (_owner, admin) = workspace_with(Role.OWNER, Role.ADMIN)
    client.force_login(admin.user)
    assert "Upgrade to" not in client.get(reverse("console:billing", args=[workspace.pk])).content.decode()
    response = client.post(reverse("console:billing_checkout", args=[workspace.pk, "starter"]), follow=True)
    assert "Only workspace owners can change the plan" in response.content.decode()
    assert not [r for r in stripe_api.requests if r[1] == "/v1/checkout/sessions"]


def test_free_and_custom_plans_are_not_sold_online(stripe_api, client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    client.force_login(owner.user)
    for tier in ("free", "enterprise", "nonsense"):
        response = client.post(reverse("console:billing_checkout", args=[workspace.pk, tier]), follow=True)
        assert response.redirect_chain[-1][0] == reverse("console:billing", args=[workspace.pk])
    assert not [r for r in stripe_api.requests if r[1] == "/v1/checkout/sessions"]


def test_the_portal_opens_for_a_customer(stripe_api, client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    client.force_login(owner.user)
    client.post(reverse("console:billing_checkout", args=[workspace.pk, "professional"]))
    response = client.post(reverse("console:billing_portal", args=[workspace.pk]))
    assert response["Location"].startswith("https://billing.stripe.com/p/session/")


def test_without_stripe_keys_the_page_explains_how_to_configure_them(client, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    workspace, (owner,) = workspace_with(Role.OWNER)
    client.force_login(owner.user)
    page = client.get(reverse("console:billing", args=[workspace.pk])).content.decode()
    assert "Online payments are not configured on this server" in page
    response = client.post(reverse("console:billing_checkout", args=[workspace.pk, "starter"]), follow=True)
    assert "Payments are not configured on this server" in response.content.decode()


def test_syncing_plans_to_stripe_is_idempotent(stripe_api):
    Plan.objects.update(stripe_product_id="", stripe_price_id="")
    stripe_api.objects.clear()

    call_command("billing_sync_plans", verbosity=0)
    first = dict(Plan.objects.values_list("tier", "stripe_price_id"))
    call_command("billing_sync_plans", verbosity=0)
    second = dict(Plan.objects.values_list("tier", "stripe_price_id"))

    assert first == second
    assert first["free"] == ""
    assert first["enterprise"] == ""
    assert first["starter"].startswith("price_")
    prices = [o for o in stripe_api.objects.values() if o["object"] == "price"]
    assert sorted(p["unit_amount"] for p in prices) == [2900, 9900]
    assert {p["lookup_key"] for p in prices} == {"toolport_starter_monthly", "toolport_professional_monthly"}

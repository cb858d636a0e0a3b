"""Stripe's API replaced at the HTTP boundary, for tests.

The official `stripe` library and dj-stripe run unchanged; only the HTTP client underneath answers from this
in-memory account instead of api.stripe.com. Objects follow the shapes of Stripe's API reference (customer,
product, price, subscription with items, checkout session, billing portal session, webhook endpoint, event), and
webhooks are signed with the real scheme (`stripe.WebhookSignature`), which dj-stripe verifies.
"""

import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_VERSION = "2025-03-31.basil"


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][0][c]=v` form fields (how the library encodes parameters) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(container)
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return root


class FakeStripe(stripe.HTTPClient):
    """An in-memory Stripe account answering the library's HTTP requests."""

    name = "toolport-fake-stripe"

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.account = {
            "id": "acct_1ToolportTest000",
            "object": "account",
            "type": "standard",
            "country": "US",
            "default_currency": "usd",
            "email": "billing@toolport.example.com",
            "charges_enabled": True,
            "payouts_enabled": True,
            "details_submitted": True,
            "created": int(time.time()),
            "metadata": {},
            "business_profile": {
                "name": "Toolport",
                "url": None,
                "support_email": None,
                "support_phone": None,
                "support_url": None,
                "product_description": None,
                "mcc": None,
            },
            "business_type": "company",
            "capabilities": {},
            "settings": {
                "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
                "dashboard": {"display_name": "Toolport", "timezone": "Etc/UTC"},
                "payments": {"statement_descriptor": "TOOLPORT"},
            },
            "tos_acceptance": {},
            "external_accounts": {"object": "list", "data": [], "has_more": False},
            "requirements": {},
            "future_requirements": {},
        }

    # --- what tests set up -----------------------------------------------------------------------------------

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def product_and_price(self, *, name: str, unit_amount: int, lookup_key: str) -> dict[str, Any]:
        product = self.add(
            {
                "id": _id("prod"),
                "object": "product",
                "name": name,
                "active": True,
                "livemode": False,
                "created": int(time.time()),
                "metadata": {},
                "description": None,
                "images": [],
                "type": "service",
                "default_price": None,
                "url": None,
                "unit_label": None,
                "statement_descriptor": None,
                "shippable": None,
                "package_dimensions": None,
                "attributes": [],
                "updated": int(time.time()),
            }
        )
        return self.add(
            {
                "id": _id("price"),
                "object": "price",
                "active": True,
                "currency": "usd",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
                "billing_scheme": "per_unit",
                "lookup_key": lookup_key,
                "nickname": None,
                "product": product["id"],
                "livemode": False,
                "created": int(time.time()),
                "metadata": {},
                "type": "recurring",
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "custom_unit_amount": None,
                "recurring": {
                    "interval": "month",
                    "interval_count": 1,
                    "usage_type": "licensed",
                    "aggregate_usage": None,
                    "trial_period_days": None,
                    "meter": None,
                },
            }
        )

    def subscription(
        self,
        *,
        customer: str,
        price: dict[str, Any],
        status: str = "active",
        period_start: int | None = None,
        period_end: int | None = None,
        cancel_at_period_end: bool = False,
    ) -> dict[str, Any]:
        start = period_start or int(time.time())
        end = period_end or start + 30 * 24 * 3600
        subscription_id = _id("sub")
        item = {
            "id": _id("si"),
            "object": "subscription_item",
            "price": price,
            "quantity": 1,
            "subscription": subscription_id,
            "created": start,
            "metadata": {},
            "tax_rates": [],
            "billing_thresholds": None,
            "current_period_start": start,
            "current_period_end": end,
            "discounts": [],
        }
        return self.add(
            {
                "id": subscription_id,
                "object": "subscription",
                "customer": customer,
                "status": status,
                "livemode": False,
                "created": start,
                "start_date": start,
                "billing_cycle_anchor": start,
                "cancel_at_period_end": cancel_at_period_end,
                "cancel_at": end if cancel_at_period_end else None,
                "canceled_at": None,
                "ended_at": None,
                "collection_method": "charge_automatically",
                "currency": "usd",
                "metadata": {},
                "days_until_due": None,
                "default_payment_method": None,
                "default_source": None,
                "latest_invoice": None,
                "pending_setup_intent": None,
                "pending_update": None,
                "schedule": None,
                "trial_start": None,
                "trial_end": None,
                "discount": None,
                "discounts": [],
                "application_fee_percent": None,
                "billing_thresholds": None,
                "items": {
                    "object": "list",
                    "data": [item],
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription={subscription_id}",
                },
            }
        )

    def update(self, object_id: str, **changes: Any) -> dict[str, Any]:
        self.objects[object_id].update(changes)
        return self.objects[object_id]

    def webhook_endpoint(self, url: str) -> dict[str, Any]:
        return self.add(
            {
                "id": _id("we"),
                "object": "webhook_endpoint",
                "url": url,
                "api_version": API_VERSION,
                "application": None,
                "created": int(time.time()),
                "description": "Toolport",
                "enabled_events": ["*"],
                "livemode": False,
                "metadata": {},
                "status": "enabled",
                "secret": "whsec_" + secrets.token_hex(16),
            }
        )

    def event(self, kind: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
        return {
            "id": _id("evt"),
            "object": "event",
            "type": kind,
            "api_version": API_VERSION,
            "created": created or int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": json.loads(json.dumps(obj))},
        }

    @staticmethod
    def signed(event: dict[str, Any], secret: str) -> tuple[str, str]:
        """The body and `Stripe-Signature` header Stripe would send for this event."""
        payload = json.dumps(event)
        timestamp = int(time.time())
        signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
        return payload, f"t={timestamp},v1={signature}"

    # --- the HTTP boundary -----------------------------------------------------------------------------------

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage: Any = None):
        parts = urlsplit(url)
        params = _nest(parse_qsl(post_data.decode() if isinstance(post_data, bytes) else (post_data or parts.query)))
        self.requests.append((method.upper(), parts.path, params))
        status, body = self._route(method.upper(), parts.path.removeprefix("/v1/"), params)
        return json.dumps(body), status, {"request-id": _id("req")}

    def request_stream(self, *args: Any, **kwargs: Any):
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        segments = path.split("/")
        if method == "GET" and segments == ["account"]:
            return 200, self.account
        if method == "GET" and len(segments) == 2 and segments[1] in self.objects:
            return 200, self.objects[segments[1]]
        if method == "GET" and segments == ["prices"]:
            keys = params.get("lookup_keys", [])
            found = [o for o in self.objects.values() if o["object"] == "price" and o.get("lookup_key") in keys]
            return 200, {"object": "list", "data": found, "has_more": False, "url": "/v1/prices"}
        if method == "GET" and segments[0] in ("invoices", "subscriptions", "payment_methods", "charges"):
            return 200, {"object": "list", "data": [], "has_more": False, "url": f"/v1/{segments[0]}"}
        if method == "POST" and segments == ["customers"]:
            return 200, self.add(
                {
                    "id": _id("cus"),
                    "object": "customer",
                    "email": params.get("email"),
                    "name": params.get("name"),
                    "metadata": params.get("metadata", {}),
                    "livemode": False,
                    "created": int(time.time()),
                    "balance": 0,
                    "currency": None,
                    "delinquent": False,
                    "description": None,
                    "discount": None,
                    "invoice_prefix": secrets.token_hex(4).upper(),
                    "default_source": None,
                    "address": None,
                    "invoice_settings": {
                        "custom_fields": None,
                        "default_payment_method": None,
                        "footer": None,
                        "rendering_options": None,
                    },
                    "preferred_locales": [],
                    "shipping": None,
                    "tax_exempt": "none",
                    "phone": None,
                    "test_clock": None,
                    "next_invoice_sequence": 1,
                }
            )
        if method == "POST" and segments == ["checkout", "sessions"]:
            session_id = _id("cs_test")
            return 200, self.add(
                {
                    "id": session_id,
                    "object": "checkout.session",
                    "mode": params.get("mode"),
                    "customer": params.get("customer"),
                    "client_reference_id": params.get("client_reference_id"),
                    "line_items": params.get("line_items"),
                    "success_url": params.get("success_url"),
                    "cancel_url": params.get("cancel_url"),
                    "status": "open",
                    "payment_status": "unpaid",
                    "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                    "livemode": False,
                    "metadata": params.get("metadata", {}),
                    "subscription": None,
                    "created": int(time.time()),
                }
            )
        if method == "POST" and segments == ["billing_portal", "sessions"]:
            return 200, {
                "id": _id("bps"),
                "object": "billing_portal.session",
                "customer": params.get("customer"),
                "return_url": params.get("return_url"),
                "livemode": False,
                "url": f"https://billing.stripe.com/p/session/test_{secrets.token_hex(8)}",
            }
        if method == "POST" and segments == ["products"]:
            return 200, self.add(
                {
                    "id": _id("prod"),
                    "object": "product",
                    "active": True,
                    "livemode": False,
                    "name": params.get("name"),
                    "metadata": params.get("metadata", {}),
                    "created": int(time.time()),
                    "description": params.get("description"),
                }
            )
        if method == "POST" and segments == ["prices"]:
            return 200, self.add(
                {
                    "id": _id("price"),
                    "object": "price",
                    "active": True,
                    "currency": params.get("currency"),
                    "unit_amount": int(params["unit_amount"]),
                    "product": params.get("product"),
                    "lookup_key": params.get("lookup_key"),
                    "livemode": False,
                    "created": int(time.time()),
                    "metadata": params.get("metadata", {}),
                    "type": "recurring",
                    "recurring": {
                        "interval": params.get("recurring", {}).get("interval", "month"),
                        "interval_count": 1,
                        "usage_type": "licensed",
                    },
                }
            )
        return 404, {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": f"No such resource: {method} /v1/{path}",
            }
        }

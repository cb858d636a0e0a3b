"""Adapters from dj-stripe's webhook signals (sent after it has verified and mirrored an event) to billing services."""

from typing import Any

from django.dispatch import receiver
from djstripe.signals import WEBHOOK_SIGNALS

from billing import payments

SUBSCRIPTION_EVENTS = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
]


def _on_subscription_event(sender: Any, event: Any, **kwargs: Any) -> None:
    payments.subscription_apply(subscription=event.data["object"], event_created=event.created)


for _event_type in SUBSCRIPTION_EVENTS:
    WEBHOOK_SIGNALS[_event_type].connect(_on_subscription_event, dispatch_uid=f"billing.{_event_type}")


@receiver(WEBHOOK_SIGNALS["checkout.session.completed"], dispatch_uid="billing.checkout.session.completed")
def _on_checkout_completed(sender: Any, event: Any, **kwargs: Any) -> None:
    payments.checkout_completed(session=event.data["object"])

"""Create or update the paid plans' Products and Prices on Stripe and store their ids (safe to re-run)."""

from django.core.management.base import BaseCommand, CommandError

from billing.payments import plans_sync_to_stripe
from core.errors import ToolportError


class Command(BaseCommand):
    help = "Sync the paid plans to Stripe Products/Prices (idempotent) and store the price ids."

    def handle(self, *args, **options):
        try:
            results = plans_sync_to_stripe()
        except ToolportError as error:
            raise CommandError(error.message) from error
        for plan, outcome in results:
            self.stdout.write(
                f"{plan.name}: {outcome} (price {plan.__class__.objects.get(pk=plan.pk).stripe_price_id})"
            )

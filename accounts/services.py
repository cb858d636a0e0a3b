"""Writes on accounts. Every function is keyword-only and owns its transaction."""

import secrets
from dataclasses import dataclass

from django.db import transaction

from accounts.models import User


@dataclass(frozen=True)
class DemoStaffUser:
    email: str
    password: str | None  # set only when this call created the user: it is shown once and never stored


@transaction.atomic
def demo_staff_user_ensure(*, email: str) -> DemoStaffUser:
    """Create the local demo staff user with a random password on first run; later runs leave it alone."""
    if User.objects.filter(email__iexact=email).exists():
        return DemoStaffUser(email=email, password=None)
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(email=email, password=password)
    return DemoStaffUser(email=email, password=password)

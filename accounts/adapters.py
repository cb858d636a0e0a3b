"""django-allauth hooks: signals from allauth and Django's auth become calls to accounts services."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.signals import user_signed_up
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from accounts import services


class AccountAdapter(DefaultAccountAdapter):
    """Toolport's account adapter (a hook point for sign-up rules; defaults otherwise)."""


@receiver(user_signed_up, dispatch_uid="accounts.user_signed_up")
def _on_user_signed_up(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    services.user_signed_up(user=user, request=request)


@receiver(user_login_failed, dispatch_uid="accounts.user_login_failed")
def _on_user_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    email = str(credentials.get("email") or credentials.get("username") or "")
    services.login_failed_record(email=email, request=request)

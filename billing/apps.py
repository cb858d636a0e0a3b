from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from accounts.limits import active_key_limit_register
        from accounts.navigation import Section, banner_register, section_register
        from billing import receivers  # noqa: F401 - connects the dj-stripe webhook signal receivers
        from billing.selectors import plan_active_key_limit, quota_banner

        active_key_limit_register(plan_active_key_limit)
        section_register(Section("billing", "Billing", "console:billing", 50))
        banner_register(quota_banner)

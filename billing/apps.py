from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from accounts.limits import active_key_limit_register
        from accounts.navigation import Section, section_register
        from billing.selectors import plan_active_key_limit

        active_key_limit_register(plan_active_key_limit)
        section_register(Section("billing", "Billing", "console:billing", 50))

"""Template filters for prices and limits."""

from django import template

register = template.Library()


@register.filter
def dollars(cents: int | None) -> str:
    """2900 → "29", 2950 → "29.50"; None → "Custom"."""
    if cents is None:
        return "Custom"
    whole, part = divmod(int(cents), 100)
    return f"${whole:,}" if part == 0 else f"${whole:,}.{part:02d}"


@register.filter
def limit(value: int | None) -> str:
    """A count limit for people: 10000 → "10,000"; None → "Unlimited"."""
    return "Unlimited" if value is None else f"{value:,}"

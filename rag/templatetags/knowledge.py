"""Template filters of the Knowledge pages."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_MARKED = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


@register.filter
def marked(snippet: str) -> SafeString:
    """A search snippet (the matched words between ** **, as ts_headline marks them) as HTML: the text escaped, the
    matched words in <mark>."""
    return mark_safe(_MARKED.sub(r"<mark>\1</mark>", str(escape(snippet))))  # noqa: S308 - escaped just before


@register.filter
def megabytes(size: int | None) -> str:
    size = int(size or 0)
    if size < 1024:
        return f"{size} B"
    if size < 1_048_576:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1_048_576:.1f} MB"

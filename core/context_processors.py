"""Template context every console page needs."""

from django.http import HttpRequest

from core.views import CONSOLE_SECTIONS


def console(request: HttpRequest) -> dict[str, object]:
    return {"console_sections": CONSOLE_SECTIONS}

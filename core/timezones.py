"""Times are stored in UTC and shown in the viewer's time zone: the browser names it in a `tz` cookie (set by
base.html), and this middleware activates it for the request (templates, forms and dashboards use it)."""

from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE = "tz"
_known = frozenset(available_timezones())


def zone_of(request: HttpRequest) -> ZoneInfo:
    """The viewer's time zone (the cookie's, when it names a real zone), else UTC."""
    name = request.COOKIES.get(COOKIE, "")
    if name in _known:
        try:
            return ZoneInfo(name)
        except ZoneInfoNotFoundError:
            pass
    return ZoneInfo("UTC")


class TimezoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timezone.activate(zone_of(request))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

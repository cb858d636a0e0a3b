"""The REST API's one mapping from errors to the wire: JSON `{"code", "message", "details"}` with the status that
the error's family implies (see core.errors)."""

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import (
    Conflict,
    InvalidInput,
    LimitReached,
    NotAllowed,
    NotFound,
    TooLarge,
    ToolportError,
    Unauthenticated,
    Unavailable,
    error_body,
)

FAMILY_STATUS: list[tuple[type[ToolportError], int]] = [
    (NotFound, status.HTTP_404_NOT_FOUND),
    (NotAllowed, status.HTTP_403_FORBIDDEN),
    (TooLarge, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    (InvalidInput, status.HTTP_400_BAD_REQUEST),
    (Conflict, status.HTTP_409_CONFLICT),
    (Unauthenticated, status.HTTP_401_UNAUTHORIZED),
    (LimitReached, status.HTTP_429_TOO_MANY_REQUESTS),
    (Unavailable, status.HTTP_502_BAD_GATEWAY),
]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ToolportError):
        code = next((code for family, code in FAMILY_STATUS if isinstance(exc, family)), 400)
        response = Response(exc.as_body(), status=code)
        if isinstance(exc, Unauthenticated):
            response["WWW-Authenticate"] = exc.challenge
        if isinstance(exc, LimitReached) and exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", "Some fields are not valid; see details.", response.data)
    elif isinstance(exc, exceptions.APIException):
        response.data = error_body(str(exc.default_code), str(exc.detail))
    else:
        response.data = error_body("error", str(response.data.get("detail", exc)))
    return response

"""A request id on every log line of a web request, and of the Celery tasks that request queued.

The middleware takes the caller's `X-Request-ID` when it is a sane token (a proxy or client may set one to follow a
request across systems) or makes one, binds it in structlog's context variables (which every record rendered by
core.logging merges, the standard library's included) and returns it in the response header. A task published while
an id is bound carries it in a message header; the worker binds it for the task's run and unbinds it afterwards.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import Token
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

HEADER = "X-Request-ID"
CONTEXT_KEY = "request_id"
TASK_HEADER = "toolport_request_id"
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def request_id_from(value: str | None) -> str:
    """The caller's id if it is 1-128 safe characters (nothing that could forge a log line), else a new one."""
    if value and _VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def request_id_current() -> str | None:
    value = structlog.contextvars.get_contextvars().get(CONTEXT_KEY)
    return str(value) if value else None


@sync_and_async_middleware
def RequestIdMiddleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            request_id = request_id_from(request.headers.get(HEADER))
            with structlog.contextvars.bound_contextvars(**{CONTEXT_KEY: request_id}):
                response: HttpResponse = await get_response(request)
            response[HEADER] = request_id
            return response

        return middleware

    def sync_middleware(request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(HEADER))
        with structlog.contextvars.bound_contextvars(**{CONTEXT_KEY: request_id}):
            response: HttpResponse = get_response(request)
        response[HEADER] = request_id
        return response

    return sync_middleware


# --- Celery: the id travels in a message header ----------------------------------------------------------------------

_task_tokens: dict[str, dict[str, Token[Any]]] = {}


def task_publishing(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """before_task_publish: stamp the message with the id bound where it is sent (a web request, another task)."""
    request_id = request_id_current()
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


def task_starting(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """task_prerun: bind the task's name and id, and the request id it was queued under, for the run's log lines."""
    context: dict[str, Any] = {"task": getattr(task, "name", None), "task_id": task_id}
    request_id = getattr(getattr(task, "request", None), TASK_HEADER, None)
    if request_id:
        context[CONTEXT_KEY] = request_id_from(str(request_id))
    if task_id:
        _task_tokens[task_id] = dict(structlog.contextvars.bind_contextvars(**context))


def task_finished(task_id: str | None = None, **kwargs: Any) -> None:
    """task_postrun: restore what was bound before the run (a worker thread runs task after task)."""
    tokens = _task_tokens.pop(task_id or "", None)
    if tokens:
        structlog.contextvars.reset_contextvars(**tokens)


def celery_signals_connect() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(task_publishing, dispatch_uid="core.request_id.publish", weak=False)
    task_prerun.connect(task_starting, dispatch_uid="core.request_id.prerun", weak=False)
    task_postrun.connect(task_finished, dispatch_uid="core.request_id.postrun", weak=False)

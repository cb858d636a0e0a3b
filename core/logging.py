"""Structured logging: structlog for our code, the same renderer for the standard library's records."""

import logging
import re
from typing import Any

import structlog
from structlog.typing import Processor

SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

CONSOLE_RENDERER = structlog.dev.ConsoleRenderer(colors=False)
JSON_RENDERER = structlog.processors.JSONRenderer()


def configure() -> None:
    """Route structlog through the standard library, whose handlers (settings.LOGGING) render every record."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_settings(*, level: str, renderer: str) -> dict[str, Any]:
    """The `LOGGING` setting: every record to stderr, rendered by structlog as "console" text or "json"."""
    if renderer not in ("console", "json"):
        raise ValueError(f'LOG_FORMAT must be "console" or "json", not {renderer!r}.')
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": "structlog.stdlib.ProcessorFormatter",
                "processor": f"ext://core.logging.{renderer.upper()}_RENDERER",
                "foreign_pre_chain": "ext://core.logging.SHARED_PROCESSORS",
            }
        },
        "filters": {"secrets": {"()": "core.logging.SecretRedactor"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "structured", "filters": ["secrets"]},
        },
        "root": {"handlers": ["stderr"], "level": level},
        # One line per outgoing request is noise at INFO.
        "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpcore", "httpx2", "httpcore2", "mcp.client")},
    }


# A credential in a URL (`/mcp/ws?api_key=…`, for WebSocket clients that cannot set headers) never reaches a log line.
_SECRET_QUERY = re.compile(r"(?i)\b(api_key|access_token)=[^&\s\"']*")
# The loggers that write request lines with their query string, whatever handlers they have.
REQUEST_LINE_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "daphne", "daphne.server", "django.request")


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1=[redacted]", text)


class SecretRedactor(logging.Filter):
    """Replaces the value of credential query parameters in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                key: redact(value) if isinstance(value, str) else value for key, value in record.args.items()
            }
        return True


def secret_redaction_install() -> None:
    """Add the redactor to the loggers ASGI servers write request lines to (they configure their own handlers)."""
    redactor = SecretRedactor()
    for name in REQUEST_LINE_LOGGERS:
        logging.getLogger(name).addFilter(redactor)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)

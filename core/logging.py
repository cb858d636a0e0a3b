"""Structured logging: structlog for our code, the same renderer for the standard library's records."""

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
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["stderr"], "level": level},
        # One line per outgoing request is noise at INFO.
        "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpcore", "httpx2", "httpcore2", "mcp.client")},
    }

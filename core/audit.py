"""The audit trail's entry point for every app.

Apps below `monitoring` cannot import it, so they call `audit_record` here and `monitoring` registers the function
that stores events when it loads (the upper app registers itself with the lower one).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestOrigin:
    """Where an action came from: taken from the HTTP request, or empty for background work."""

    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: Any) -> "RequestOrigin":
        if request is None:
            return cls()
        meta = getattr(request, "META", {})
        return cls(ip=meta.get("REMOTE_ADDR") or None, user_agent=meta.get("HTTP_USER_AGENT", "")[:512])


@dataclass(frozen=True)
class AuditEntry:
    action: str
    actor: Any = None  # a User, or None for the system / an API key
    workspace: Any = None
    target: Any = None  # any model instance
    origin: RequestOrigin = field(default_factory=RequestOrigin)
    detail: dict[str, Any] = field(default_factory=dict)


AuditRecorder = Callable[[AuditEntry], object]

_recorder: AuditRecorder | None = None


def audit_recorder_register(recorder: AuditRecorder) -> None:
    global _recorder
    _recorder = recorder


def audit_record(
    *,
    action: str,
    actor: Any = None,
    workspace: Any = None,
    target: Any = None,
    request: Any = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit event in the caller's transaction (so a rolled-back action leaves no event)."""
    if _recorder is None:
        raise RuntimeError("No audit recorder is registered: is the 'monitoring' app installed?")
    _recorder(
        AuditEntry(
            action=action,
            actor=actor,
            workspace=workspace,
            target=target,
            origin=RequestOrigin.from_request(request),
            detail=detail or {},
        )
    )

"""Observations that apps below `monitoring` report without importing it (billing's quota refusals): they call the
function here, and monitoring registers what turns them into metrics when it loads, as it does for core.audit."""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

QuotaDenialObserver = Callable[[str], None]
_quota_denial_observers: list[QuotaDenialObserver] = []


def quota_denial_observer_register(observer: QuotaDenialObserver) -> None:
    _quota_denial_observers.append(observer)


def quota_denial_observe(*, metric: str) -> None:
    """A request was refused because `metric`'s quota is used up. Never raises into the refusal."""
    for observer in _quota_denial_observers:
        try:
            observer(metric)
        except Exception:
            logger.exception("A quota denial observer failed.")

"""Admit one message: billing's one round trip (epoch, the key's rate, the quota of what it costs, the usage entry,
the session touch), and, when the epoch moved, the caller read again before trying once more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from billing.admission import AdmissionUnavailable, EpochMoved, TouchedKeyGone, usage_admit
from tools.mcp_server.pipeline.auth import Credential, active_check, reauthenticate
from tools.mcp_server.sessions import SessionRecord, session_touch, session_touch_local


class SessionGone(Exception):
    """The message's session was closed, evicted or expired (on any replica) since this process read it."""


async def admit(
    credential: Credential,
    session: SessionRecord | None = None,
    charges: Sequence[tuple[str, int]] = (),
    *,
    resolve: Callable[[Credential], Awaitable[Sequence[tuple[str, int]]]] | None = None,
) -> Credential:
    """The caller, admitted (possibly read again under a new epoch); raises InvalidApiKey when the key was revoked
    meanwhile, RateLimited, QuotaExceeded or AdmissionUnavailable.

    `resolve` works out the charges from the caller's cached view (which tool, what it costs) at each attempt, so a
    tool disabled or hidden since the caches were filled is never run under the new epoch."""
    touch = session_touch(session) if session is not None else None
    for _attempt in range(3):
        active_check(credential)
        if resolve is not None:
            charges = await resolve(credential)
        try:
            await usage_admit(
                policy=credential.policy, key_id=credential.key_id, epoch=credential.epoch, charges=charges, touch=touch
            )
        except EpochMoved as moved:
            credential = await reauthenticate(credential, moved.epoch)
            continue
        except TouchedKeyGone as error:
            raise SessionGone() from error
        if session is not None:
            await session_touch_local(session)
        return credential
    raise AdmissionUnavailable()

"""API keys: issue, rotate, revoke and authenticate.

A key looks like `tp_live_<12 hex>_<43 url-safe chars>`: the first part (the prefix) is public and indexed, the
last carries 256 random bits. The database keeps the prefix and HMAC-SHA256(pepper, key) only; the full key is
returned once, by `api_key_issue`, and never stored or logged.

Authentication caches what it needs per prefix in the shared cache; revoking deletes that entry, so every process
sees a revocation on its next request.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.errors import ApiKeyLimitReached, ApiKeyNotActive, InvalidApiKey
from accounts.limits import active_key_limit
from accounts.models import ApiKey, Membership, Role, SecurityLevel, Workspace
from core.audit import audit_record
from core.epoch import access_epoch_bump_on_commit
from core.errors import InvalidInput

KEY_PREFIX = "tp_live_"
_KEY_PATTERN = re.compile(r"^(tp_live_[0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
CACHE_SECONDS = 300
LAST_USED_RESOLUTION_SECONDS = 60
MAX_GRACE = timedelta(days=30)


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the full key: show it once, then drop it


@dataclass(frozen=True)
class AuthenticatedKey:
    """What a request authenticated with a key may do; cached per prefix (no secret in it)."""

    id: UUID
    workspace_id: UUID
    prefix: str
    name: str
    secret_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None
    tools: tuple[str, ...]
    knowledge_bases: tuple[str, ...]
    max_security_level: int
    read_only: bool


def _digest(raw_key: str) -> str:
    return hmac.new(settings.API_KEY_PEPPER.encode(), raw_key.encode(), hashlib.sha256).hexdigest()


def _cache_key(prefix: str) -> str:
    return f"accounts:apikey:{prefix}"


def active_keys(queryset: QuerySet[ApiKey], moment: datetime | None = None) -> QuerySet[ApiKey]:
    moment = moment or timezone.now()
    return queryset.filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=moment)).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=moment)
    )


def _clean_scope(values: Any, field: str) -> list[str]:
    if values in (None, "", []):
        return []
    if isinstance(values, str):
        values = values.split(",")
    cleaned = sorted({str(value).strip() for value in values if str(value).strip()})
    if any(len(value) > 100 for value in cleaned):
        raise InvalidInput("Each scope entry is at most 100 characters.", details={"field": field})
    return cleaned


def _scope_detail(key: ApiKey) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "name": key.name,
        "tools": key.tools or "all",
        "knowledge_bases": key.knowledge_bases or "all",
        "max_security_level": key.max_security_level,
        "read_only": key.read_only,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
    }


def _new_key(**fields: Any) -> IssuedKey:
    prefix = KEY_PREFIX + secrets.token_hex(6)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(prefix=prefix, secret_hash=_digest(secret), **fields)
    return IssuedKey(key=key, secret=secret)


@transaction.atomic
def api_key_issue(
    *,
    actor: Membership,
    name: str,
    expires_at: datetime | None = None,
    tools: Any = None,
    knowledge_bases: Any = None,
    max_security_level: int = SecurityLevel.STANDARD,
    read_only: bool = False,
    request: Any = None,
) -> IssuedKey:
    """Create a key for the actor's workspace; the result holds the full key, which is never shown again."""
    actor.require_role(Role.ADMIN, "create API keys")
    workspace = actor.workspace
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput(
            "Give the key a name, e.g. the client or machine that will use it.", details={"field": "name"}
        )
    if len(name) > 80:
        raise InvalidInput("Key names are at most 80 characters.", details={"field": "name"})
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry date must be in the future.", details={"field": "expires_at"})
    if max_security_level not in SecurityLevel.values:
        raise InvalidInput(
            "The highest security level must be 1 (public) to 4 (critical).", details={"field": "max_security_level"}
        )
    Workspace.objects.select_for_update().filter(pk=workspace.pk).first()  # serialise the limit check
    limit = active_key_limit(workspace)
    if limit is not None and active_keys(ApiKey.objects.filter(workspace=workspace)).count() >= limit:
        raise ApiKeyLimitReached(
            f"{workspace.name} already has {limit} active keys, the most its plan allows. "
            "Revoke one you no longer use, or upgrade the plan."
        )
    issued = _new_key(
        workspace=workspace,
        name=name,
        created_by=actor.user,
        expires_at=expires_at,
        tools=_clean_scope(tools, "tools"),
        knowledge_bases=_clean_scope(knowledge_bases, "knowledge_bases"),
        max_security_level=max_security_level,
        read_only=read_only,
    )
    audit_record(
        action="api_key.create",
        actor=actor.user,
        workspace=workspace,
        target=issued.key,
        request=request,
        detail=_scope_detail(issued.key),
    )
    return issued


def _forget_on_commit(prefix: str) -> None:
    transaction.on_commit(lambda: cache.delete(_cache_key(prefix)))
    access_epoch_bump_on_commit()  # processes that keep keys in memory (the MCP fast path) read them again


@transaction.atomic
def api_key_revoke(*, actor: Membership, key: ApiKey, request: Any = None) -> ApiKey:
    """Revoke now: every process refuses the key from its next request on."""
    actor.require_role(Role.ADMIN, "revoke API keys")
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    now = timezone.now()
    if key.revoked_at is not None and key.revoked_at <= now:
        raise ApiKeyNotActive(f"The key {key.name} is already revoked.")
    key.revoked_at = now
    key.save(update_fields=["revoked_at", "updated_at"])
    _forget_on_commit(key.prefix)
    audit_record(
        action="api_key.revoke",
        actor=actor.user,
        workspace=key.workspace,
        target=key,
        request=request,
        detail={"prefix": key.prefix, "name": key.name},
    )
    return key


@transaction.atomic
def api_key_rotate(
    *, actor: Membership, key: ApiKey, grace: timedelta = timedelta(0), request: Any = None
) -> IssuedKey:
    """Issue a replacement with the same name and scopes; the old key stops working after `grace`."""
    actor.require_role(Role.ADMIN, "rotate API keys")
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise InvalidInput(
            "The grace period must be between 0 seconds and 30 days.", details={"field": "grace_seconds"}
        )
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    now = timezone.now()
    if not key.is_active_at(now):
        raise ApiKeyNotActive(f"The key {key.name} is revoked or expired; create a new key instead.")
    if ApiKey.objects.filter(rotated_from=key).exists():
        raise ApiKeyNotActive(f"The key {key.name} has already been rotated; rotate its replacement instead.")
    issued = _new_key(
        workspace=key.workspace,
        name=key.name,
        created_by=actor.user,
        expires_at=key.expires_at,
        tools=key.tools,
        knowledge_bases=key.knowledge_bases,
        max_security_level=key.max_security_level,
        read_only=key.read_only,
        rotated_from=key,
    )
    key.revoked_at = now + grace
    key.save(update_fields=["revoked_at", "updated_at"])
    _forget_on_commit(key.prefix)
    audit_record(
        action="api_key.rotate",
        actor=actor.user,
        workspace=key.workspace,
        target=issued.key,
        request=request,
        detail={"old_prefix": key.prefix, "new_prefix": issued.key.prefix, "grace_seconds": int(grace.total_seconds())},
    )
    return issued


def api_key_cache_forget_workspace(*, workspace: Workspace) -> None:
    """Drop cached entries of every key of a workspace about to be deleted."""
    prefixes = list(ApiKey.objects.filter(workspace=workspace).values_list("prefix", flat=True))
    transaction.on_commit(lambda: cache.delete_many([_cache_key(prefix) for prefix in prefixes]))
    access_epoch_bump_on_commit()


def _load(prefix: str) -> AuthenticatedKey | None:
    cached = cache.get(_cache_key(prefix))
    if cached is not None:
        return cached
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None:
        return None
    record = AuthenticatedKey(
        id=key.pk,
        workspace_id=key.workspace_id,
        prefix=key.prefix,
        name=key.name,
        secret_hash=key.secret_hash,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        tools=tuple(key.tools),
        knowledge_bases=tuple(key.knowledge_bases),
        max_security_level=key.max_security_level,
        read_only=key.read_only,
    )
    cache.set(_cache_key(prefix), record, CACHE_SECONDS)
    return record


def api_key_authenticate(*, raw_key: str) -> AuthenticatedKey:
    """The key's record if `raw_key` is a valid, active key; raises InvalidApiKey (401) otherwise."""
    match = _KEY_PATTERN.match(raw_key or "")
    if match is None:
        raise InvalidApiKey("That is not a Toolport API key. Keys start with 'tp_live_'; copy the whole key.")
    record = _load(match.group(1))
    # Compare in constant time even when the prefix is unknown, so timing does not reveal which prefixes exist.
    expected = record.secret_hash if record is not None else _digest("unknown")
    if not hmac.compare_digest(expected, _digest(raw_key)) or record is None:
        raise InvalidApiKey("This API key is not valid. It may have been deleted, or mistyped.")
    now = timezone.now()
    if record.revoked_at is not None and record.revoked_at <= now:
        raise InvalidApiKey("This API key has been revoked. Create a new key in the console.")
    if record.expires_at is not None and record.expires_at <= now:
        raise InvalidApiKey("This API key has expired. Create a new key in the console.")
    _touch(record, now)
    return record


def api_key_touch(record: AuthenticatedKey) -> None:
    """Record a use of the key (for callers that authenticate from their own memory, like the MCP fast path)."""
    _touch(record, timezone.now())


def _touch(record: AuthenticatedKey, now: datetime) -> None:
    """Write last_used_at at most once a minute per key, across all processes."""
    if cache.add(f"accounts:apikey-used:{record.id}", 1, LAST_USED_RESOLUTION_SECONDS):
        ApiKey.objects.filter(pk=record.id).update(last_used_at=now)

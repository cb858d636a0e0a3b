"""API keys: format and entropy, hashing at rest, verification, revocation, rotation, limits, last use."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts import api_keys, services
from accounts.errors import ApiKeyLimitReached, ApiKeyNotActive, InvalidApiKey, RoleRequired
from accounts.models import ApiKey, Role
from accounts.tests.factories import issue_key, workspace_with
from billing.models import BillingAccount, Plan, Tier
from core.errors import InvalidInput

pytestmark = pytest.mark.django_db


def test_a_key_has_a_recognisable_prefix_and_256_bits_of_secret():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner)
    assert issued.secret.startswith(issued.key.prefix + "_")
    assert issued.key.prefix.startswith("tp_live_")
    secret = issued.secret.removeprefix(issued.key.prefix + "_")
    assert len(secret) == 43  # 32 random bytes, base64url
    assert issue_key(owner).secret != issued.secret


def test_the_full_key_is_stored_nowhere():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner, name="laptop")
    secret_part = issued.secret.removeprefix(issued.key.prefix + "_")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'ARRAY')"
        )
        columns = cursor.fetchall()
        for table, column in columns:
            query = f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s'  # noqa: S608 - names from the catalogue
            cursor.execute(query, [f"%{secret_part}%"])
            assert cursor.fetchone()[0] == 0, f"the key's secret is stored in {table}.{column}"
    key = ApiKey.objects.get(pk=issued.key.pk)
    assert len(key.secret_hash) == 64
    assert secret_part not in repr(key.__dict__)


def test_authenticate_accepts_the_key_and_refuses_any_other():
    workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner, tools=["search", "fetch"], max_security_level=3, read_only=True)

    record = api_keys.api_key_authenticate(raw_key=issued.secret)
    assert record.workspace_id == workspace.pk
    assert record.tools == ("fetch", "search")
    assert record.max_security_level == 3
    assert record.read_only is True

    tampered = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    for wrong in (tampered, "tp_live_000000000000_" + "x" * 43, "", "Bearer " + issued.secret, issued.secret + "x"):
        with pytest.raises(InvalidApiKey):
            api_keys.api_key_authenticate(raw_key=wrong)


def test_revoking_is_immediate_even_for_a_cached_key():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner)
    api_keys.api_key_authenticate(raw_key=issued.secret)  # now cached

    with_commit(lambda: api_keys.api_key_revoke(actor=owner, key=issued.key))

    with pytest.raises(InvalidApiKey, match="revoked"):
        api_keys.api_key_authenticate(raw_key=issued.secret)
    with pytest.raises(ApiKeyNotActive):
        api_keys.api_key_revoke(actor=owner, key=issued.key)


def with_commit(action):
    """Run a service whose cache invalidation waits for the commit (tests run inside a transaction)."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        return action()


def test_an_expired_key_is_refused():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner, expires_at=timezone.now() + timedelta(seconds=1))
    api_keys.api_key_authenticate(raw_key=issued.secret)
    time.sleep(1.1)
    with pytest.raises(InvalidApiKey, match="expired"):
        api_keys.api_key_authenticate(raw_key=issued.secret)


def test_a_key_cannot_be_created_already_expired():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    with pytest.raises(InvalidInput, match="future"):
        issue_key(owner, expires_at=timezone.now() - timedelta(minutes=1))


def test_rotation_keeps_the_old_key_for_the_grace_period_only():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    old = issue_key(owner, name="ci", tools=["search"])

    new = with_commit(lambda: api_keys.api_key_rotate(actor=owner, key=old.key, grace=timedelta(seconds=1)))

    assert new.key.name == "ci"
    assert new.key.tools == ["search"]
    assert new.key.rotated_from_id == old.key.pk
    api_keys.api_key_authenticate(raw_key=old.secret)  # still in its grace period
    api_keys.api_key_authenticate(raw_key=new.secret)
    time.sleep(1.1)
    with pytest.raises(InvalidApiKey, match="revoked"):
        api_keys.api_key_authenticate(raw_key=old.secret)
    api_keys.api_key_authenticate(raw_key=new.secret)
    with pytest.raises(ApiKeyNotActive):
        api_keys.api_key_rotate(actor=owner, key=old.key)


def test_rotation_without_grace_revokes_at_once():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    old = issue_key(owner)
    with_commit(lambda: api_keys.api_key_rotate(actor=owner, key=old.key))
    with pytest.raises(InvalidApiKey):
        api_keys.api_key_authenticate(raw_key=old.secret)


def test_active_keys_per_workspace_are_limited_by_the_plan():
    Plan.objects.filter(tier=Tier.FREE).update(max_active_api_keys=2)
    _workspace, (owner,) = workspace_with(Role.OWNER)
    first = issue_key(owner)
    issue_key(owner)
    with pytest.raises(ApiKeyLimitReached, match="2 active keys, the most its plan allows"):
        issue_key(owner)
    api_keys.api_key_revoke(actor=owner, key=first.key)
    issue_key(owner)  # a revoked key frees its place


def test_only_admins_and_owners_manage_keys():
    _workspace, (owner, member) = workspace_with(Role.OWNER, Role.MEMBER)
    with pytest.raises(RoleRequired):
        issue_key(member)
    issued = issue_key(owner)
    with pytest.raises(RoleRequired):
        api_keys.api_key_revoke(actor=member, key=issued.key)
    with pytest.raises(RoleRequired):
        api_keys.api_key_rotate(actor=member, key=issued.key)


def test_last_used_is_written_at_most_once_a_minute():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner)
    api_keys.api_key_authenticate(raw_key=issued.secret)
    first_use = ApiKey.objects.get(pk=issued.key.pk).last_used_at
    assert first_use is not None

    api_keys.api_key_authenticate(raw_key=issued.secret)
    assert ApiKey.objects.get(pk=issued.key.pk).last_used_at == first_use


def test_a_key_of_a_deleted_workspace_stops_working():
    workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner)
    api_keys.api_key_authenticate(raw_key=issued.secret)
    with_commit(lambda: services.workspace_delete(actor=owner, confirm_name=workspace.name))
    with pytest.raises(InvalidApiKey):
        api_keys.api_key_authenticate(raw_key=issued.secret)


def test_an_enterprise_workspace_has_no_key_limit():
    workspace, (owner,) = workspace_with(Role.OWNER)
    BillingAccount.objects.create(workspace=workspace, plan=Plan.objects.get(tier=Tier.ENTERPRISE))
    for number in range(30):
        issue_key(owner, name=f"key {number}")

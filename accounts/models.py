"""Accounts: users (email login, no username), workspaces (the tenant), memberships, invitations and API keys."""

import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.models import TimeStampedModel


class UserManager(DjangoUserManager["User"]):
    """Creates users keyed by email (Django's manager expects a username)."""

    use_in_migrations = True

    def _create_user_object(self, email: str, password: str | None, **extra_fields: Any) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields: Any) -> "User":  # type: ignore[override]
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        user = self._create_user_object(email, password, **extra_fields)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra_fields: Any) -> "User":  # type: ignore[override]
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not (extra_fields["is_staff"] and extra_fields["is_superuser"]):
            raise ValueError("A superuser must have is_staff=True and is_superuser=True.")
        return self.create_user(email, password, **extra_fields)


class User(AbstractUser):
    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ("email",)

    def __str__(self) -> str:
        return self.email


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"

    @property
    def rank(self) -> int:
        return {"member": 1, "admin": 2, "owner": 3}[self.value]


class Workspace(TimeStampedModel):
    """The tenant: every tenant-owned row points at one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=80)
    is_personal = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Membership(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ordering = ("created_at",)
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user_per_workspace"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def role_rank(self) -> int:
        return Role(self.role).rank

    def require_role(self, role: "Role", doing: str) -> None:
        """Raise RoleRequired (403) unless this member's role is at least `role`; `doing` completes the message."""
        from accounts.errors import RoleRequired

        if self.role_rank < role.rank:
            allowed = "admins and owners" if role == Role.ADMIN else f"{role.label.lower()}s"
            raise RoleRequired(
                f"Only workspace {allowed} can {doing}. Your role in {self.workspace.name} is "
                f"{self.get_role_display().lower()}."
            )


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"


class Invitation(TimeStampedModel):
    """An invitation by email; the link carries a signed, expiring token naming this row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "workspace",
                condition=models.Q(status="pending"),
                name="invitation_one_pending_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.workspace}"


class SecurityLevel(models.IntegerChoices):
    PUBLIC = 1, "1 · public"
    STANDARD = 2, "2 · standard"
    SENSITIVE = 3, "3 · sensitive"
    CRITICAL = 4, "4 · critical"


class ApiKey(TimeStampedModel):
    """A workspace's key for programs. Only the prefix and an HMAC of the full key are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=32, unique=True)  # "tp_live_" + public id; shown in lists and logs
    secret_hash = models.CharField(max_length=64)  # hex HMAC-SHA256(pepper, full key)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)  # may lie in the future: a rotation's grace period
    last_used_at = models.DateTimeField(null=True, blank=True)
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to"
    )
    # Scopes. An empty list means "all" for tools and knowledge bases.
    tools = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    knowledge_bases = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    max_security_level = models.PositiveSmallIntegerField(choices=SecurityLevel.choices, default=SecurityLevel.STANDARD)
    read_only = models.BooleanField(default=False)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_security_level__gte=1, max_security_level__lte=4),
                name="api_key_security_level_1_to_4",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active_at(self, moment: datetime) -> bool:
        return self.status_at(moment) in ("active", "rotating")

    def status_at(self, moment: datetime) -> str:
        """active, rotating (revoked at a future moment: a rotation's grace period), revoked or expired."""
        if self.expires_at is not None and self.expires_at <= moment:
            return "expired"
        if self.revoked_at is not None:
            return "revoked" if self.revoked_at <= moment else "rotating"
        return "active"

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

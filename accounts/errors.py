"""Domain errors of accounts, each in one of core's families (which decide the HTTP status)."""

from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, Unauthenticated


class WorkspaceNotFound(NotFound):
    code = "workspace_not_found"


class MemberNotFound(NotFound):
    code = "member_not_found"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class RoleRequired(NotAllowed):
    code = "role_required"


class LastOwner(Conflict):
    code = "last_owner"


class AlreadyMember(Conflict):
    code = "already_member"


class AlreadyInvited(Conflict):
    code = "already_invited"


class ApiKeyLimitReached(Conflict):
    code = "api_key_limit_reached"


class ApiKeyNotActive(Conflict):
    code = "api_key_not_active"


class InvitationInvalid(InvalidInput):
    code = "invitation_invalid"


class ConfirmationMismatch(InvalidInput):
    code = "confirmation_mismatch"


class InvalidApiKey(Unauthenticated):
    code = "invalid_api_key"

"""The base of every domain exception. Each surface (REST API, MCP, HTML forms) maps these families to its wire
format in one place: the family says what kind of failure it is, `code` names it for programs, and `message`
tells a person what went wrong and what to do next."""


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    """The JSON every HTTP surface answers an error with."""
    return {"code": code, "message": message, "details": details or {}}


class ToolportError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def as_body(self) -> dict[str, object]:
        return error_body(self.code, self.message, self.details)


class NotFound(ToolportError):
    """The thing does not exist, or the caller may not know that it does (tenant isolation): answer 404."""

    code = "not_found"


class NotAllowed(ToolportError):
    """The caller is known but their role or scope does not allow this: answer 403."""

    code = "not_allowed"


class InvalidInput(ToolportError):
    """The request is understood but its content is wrong: answer 400."""

    code = "invalid"


class TooLarge(InvalidInput):
    """The request or a file in it is bigger than the limit that applies: answer 413."""

    code = "too_large"


class Conflict(ToolportError):
    """The request clashes with the current state (a duplicate, a limit, a last owner): answer 409."""

    code = "conflict"


class LimitReached(ToolportError):
    """A quota or rate limit is used up: answer 429 (with Retry-After when the reset time is known)."""

    code = "limit_reached"
    retry_after: int | None = None  # seconds until the limit resets, when known


class Unavailable(ToolportError):
    """A service we depend on (an upstream server, an API) could not be used: answer 502."""

    code = "unavailable"


class Unauthenticated(ToolportError):
    """No valid credentials: answer 401 with a WWW-Authenticate challenge."""

    code = "unauthenticated"
    challenge = 'Bearer realm="toolport"'

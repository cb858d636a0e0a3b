"""The base of every domain exception: each surface (API, MCP, forms) maps these to its own wire format."""


class ToolportError(Exception):
    """A failure the user can act on: `code` is stable for programs, `message` says what to do next."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

from pathlib import Path

import pytest

from tests.mcp.conftest import mcp_server  # noqa: F401 - the ASGI server fixture, for the MCP client tests


@pytest.fixture(autouse=True)
def _media(media) -> Path:
    """Every RAG test stores its documents in a folder of its own (the root conftest's `media`)."""
    return media

"""Every error the MCP endpoint answers, built in one place.

Two families, as the spec separates them:
- `HttpError`: the HTTP request itself is refused (401 with the RFC 9728 challenge, 403 origin, 404 session, 413
  body, 429 rate). Transports answer it as an HTTP status with a JSON body, or, on a WebSocket, as a close code; a
  few carry a JSON-RPC error body instead (`rpc`), where the Streamable HTTP spec asks for one (parse errors,
  envelope errors, modern-era ladder rejections).
- JSON-RPC errors answering a request (`rpc_error`): method not found, invalid params, quota, a handler's failure.
  A failure we did not foresee is logged with its traceback and answered "Internal error" — never its text.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS
from pydantic import ValidationError

from core.errors import LimitReached, error_body

logger = logging.getLogger(__name__)

QUOTA_EXCEEDED = -32029  # application-defined (JSON-RPC reserves -32000..-32099 for the server)
RESOURCE_NOT_FOUND = -32002


class HttpError(Exception):
    """Answer the HTTP request (or refuse the WebSocket) with this status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        rpc: int | None = None,
        request_id: Any = None,
        data: Any = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        self.rpc, self.request_id, self.data = rpc, request_id, data

    def body(self) -> bytes:
        if self.rpc is not None:
            error: dict[str, Any] = {"code": self.rpc, "message": self.message}
            if self.data is not None:
                error["data"] = self.data
            return _dumps({"jsonrpc": "2.0", "id": self.request_id, "error": error})
        return _dumps(error_body(self.code, self.message))


def envelope_error(status: int, rpc: int, message: str, request_id: Any = None, data: Any = None) -> HttpError:
    """A JSON-RPC error that refuses the HTTP request (the body is the error, the status says why)."""
    code = "parse_error" if rpc == types.PARSE_ERROR else "invalid_request"
    return HttpError(status, code, message, rpc=rpc, request_id=request_id, data=data)


def limit_http_error(error: LimitReached) -> HttpError:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    return HttpError(429, error.code, error.message, headers=headers)


def limit_error(error: LimitReached) -> MCPError:
    """A spent quota or limit as a JSON-RPC error: the message names the limit, the facts go in `data`."""
    data: dict[str, Any] = {"code": error.code, **error.details}
    if error.retry_after is not None:
        data["retryAfter"] = error.retry_after
    return MCPError(code=QUOTA_EXCEEDED, message=error.message, data=data)


def error_data(error: BaseException) -> types.ErrorData:
    """The wire error of a handler's exception: its own for MCPError, INVALID_PARAMS for invalid params (no
    pydantic text on the wire), else a logged "Internal error"."""
    if isinstance(error, MCPError):
        return error.error
    if isinstance(error, ValidationError):
        return types.ErrorData(code=types.INVALID_PARAMS, message="Invalid request parameters", data="")
    logger.error("mcp.handler_failed", exc_info=error)
    return types.ErrorData(code=types.INTERNAL_ERROR, message="Internal error: the server could not answer this.")


def rpc_error(request_id: Any, error: types.ErrorData) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def rpc_error_status(message: dict[str, Any]) -> int:
    """The HTTP status a 2026-07-28 response goes out with (the spec maps some error codes to 4xx)."""
    error = message.get("error")
    return ERROR_CODE_HTTP_STATUS.get(error["code"], 200) if error else 200


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()

"""The exception tree of pyodide_transport.

Every error this package raises derives from :class:`TransportError`, so one
``except TransportError`` catches them all. Foreign exceptions (JavaScript
``TypeError`` from ``fetch``, ``OSError``, ``asyncio.TimeoutError``) are
translated once, at the adapter boundary, and never escape raw.

::

    TransportError
    ├── ConnectionClosedError      the connection is gone; pending requests fail with it
    ├── SessionExpiredError        HTTP 404 on a request carrying a session id
    ├── RequestTimeoutError        no response (or progress) within the timeout
    ├── HTTPStatusError            unexpected HTTP status; carries ``status`` and ``body``
    │   └── LegacyServerError      the 2026-07-28 probe was answered the way an older server does
    ├── NetworkError               the request never got a response (DNS, refused, reset)
    │   └── CORSError              the browser's opaque "Failed to fetch": most likely CORS
    ├── ProtocolError              a message or stream broke the rules
    │   ├── LocalProtocolError     we were asked to do something invalid (our fault)
    │   └── RemoteProtocolError    the peer sent something invalid (their fault)
    │       └── MessageTooLargeError  an SSE event or frame over the size limit
    └── MCPError                   the peer answered with a JSON-RPC error; carries ``code``, ``data``
        └── UnsupportedProtocolVersionError  no protocol version both sides speak

Errors say whose fault they are (the h11 convention): a ``LocalProtocolError``
means fix the calling code, a ``RemoteProtocolError`` means the server is wrong.

How transports report failures: ``send`` raises about the message it was given. A failure
that shows later (a response stream broke, the socket dropped) is raised from ``receive``
with :attr:`TransportError.request_ids` naming the requests it loses; the session fails
exactly those with that very exception (type and attributes such as a close code intact)
and goes on. Raised from ``receive`` without ``request_ids``, a
:class:`ConnectionClosedError` means the connection is gone for good; any other error is
reported and reading goes on. Transports never disguise a failure as a JSON-RPC error.
"""

from __future__ import annotations

from typing import Any, Self

__all__ = [
    "CORS_HELP",
    "CORSError",
    "ConnectionClosedError",
    "HTTPStatusError",
    "LegacyServerError",
    "LocalProtocolError",
    "MCPError",
    "MessageTooLargeError",
    "NetworkError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "SessionExpiredError",
    "TransportError",
    "UnsupportedProtocolVersionError",
]

CORS_HELP = (
    "The server must answer the CORS preflight (OPTIONS) and send "
    "Access-Control-Allow-Origin for this page's origin, "
    "Access-Control-Allow-Headers: content-type, accept, authorization, mcp-session-id, "
    "mcp-protocol-version, last-event-id, mcp-method, mcp-name, and "
    "Access-Control-Expose-Headers: Mcp-Session-Id, MCP-Protocol-Version."
)
"""What a server must send so that a browser page on another origin can use it."""


class TransportError(Exception):
    """Root of every error raised by pyodide_transport.

    Attributes:
        request_ids: The requests this failure loses, when a transport raises it from
            ``receive`` (empty: it concerns the connection, not particular requests).
    """

    request_ids: tuple[str | int, ...] = ()

    def losing(self, request_ids: tuple[str | int, ...]) -> Self:
        """Name the requests this failure loses (see the module docstring); returns ``self``."""
        self.request_ids = request_ids
        return self


class ConnectionClosedError(TransportError):
    """The connection closed; no response will arrive.

    Attributes:
        code: The WebSocket close code, when there was one.
        reason: The close reason the peer gave, if any.
    """

    def __init__(self, message: str = "connection closed", *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class SessionExpiredError(TransportError):
    """The server no longer knows our session (HTTP 404 with a session id).

    The request that got the 404 was never processed, so re-sending it on a
    new session is safe; requests already in flight on the old session may or
    may not have run.
    """


class RequestTimeoutError(TransportError, TimeoutError):
    """A request got no response (or progress) before its timeout."""


class HTTPStatusError(TransportError):
    """The server answered with an HTTP status the protocol does not allow here.

    Attributes:
        status: The HTTP status code.
        body: The response body as text (truncated), for diagnostics.
    """

    def __init__(self, status: int, message: str = "", *, body: str = "") -> None:
        self.status = status
        self.body = body
        text = message or f"unexpected HTTP status {status}"
        if body:
            text = f"{text}: {body[:200]}"
        super().__init__(text)


class LegacyServerError(HTTPStatusError):
    """The server answered ``server/discover`` (2026-07-28) the way a handshake-era server does.

    A Streamable HTTP server from before 2026-07-28 refuses the modern probe with HTTP 400,
    404 or 405 and no modern error code; the client then falls back to ``initialize``.
    """


class NetworkError(TransportError):
    """The request failed before any HTTP response (refused, reset, DNS, offline)."""


class CORSError(NetworkError):
    """A cross-origin request failed in the browser, most likely because of CORS.

    Browsers report CORS failures as an opaque ``TypeError: Failed to fetch``
    with no detail; this error names the likely cause and the fix.
    """

    def __init__(self, url: str, detail: str = "") -> None:
        self.url = url
        msg = f"request to {url} failed; the browser hid the reason, most likely CORS. {CORS_HELP}"
        if detail:
            msg = f"{msg} (browser said: {detail})"
        super().__init__(msg)


class ProtocolError(TransportError):
    """A message or stream broke the protocol rules."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (the caller's fault)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids (the peer's fault)."""


class MessageTooLargeError(RemoteProtocolError):
    """An incoming event or frame is larger than the configured limit."""


class MCPError(TransportError):
    """The peer answered a request with a JSON-RPC error.

    Attributes:
        code: The JSON-RPC error code.
        data: The error's ``data`` member, if any.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.error_message = message
        self.data = data


class UnsupportedProtocolVersionError(MCPError):
    """Client and server share no protocol version.

    Attributes:
        supported: The versions the server said it supports, if it said.
    """

    def __init__(self, code: int, message: str, data: Any = None, supported: tuple[str, ...] = ()) -> None:
        super().__init__(code, message, data)
        self.supported = supported

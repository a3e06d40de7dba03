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
    │   ├── LegacyServerError      the 2026-07-28 probe was answered the way an older server does
    │   └── AuthorizationRequiredError  401, or 403 insufficient_scope: sign in (also an AuthorizationError)
    ├── NetworkError               the request never got a response (DNS, refused, reset)
    │   └── CORSError              the browser's opaque "Failed to fetch": most likely CORS
    ├── ProtocolError              a message or stream broke the rules
    │   ├── LocalProtocolError     we were asked to do something invalid (our fault)
    │   └── RemoteProtocolError    the peer sent something invalid (their fault)
    │       ├── MessageTooLargeError  an SSE event or frame over the size limit
    │       └── EnvelopeError      an encrypted envelope tampered with, replayed, truncated or under another key
    ├── MCPError                   the peer answered with a JSON-RPC error; carries ``code``, ``data``
    │   └── UnsupportedProtocolVersionError  no protocol version both sides speak
    ├── AuthorizationError         OAuth could not get a usable token; the message says who must change what
    │   ├── DiscoveryError         no protected-resource or authorization-server metadata (``attempts``)
    │   │   ├── DiscoveryCORSError         a metadata URL was blocked by CORS in the browser
    │   │   └── ChallengeNotExposedError   a 401 without a readable WWW-Authenticate, and no well-known metadata
    │   ├── MetadataError          a metadata document is unusable (missing fields, no PKCE S256, plain http)
    │   │   ├── ResourceMismatchError      the metadata names another resource than the server we called
    │   │   └── IssuerMismatchError        metadata ``issuer`` or the redirect's ``iss`` is not the server's
    │   ├── RegistrationError      no usable client registration method, or registration was refused
    │   ├── AuthorizationDeniedError   the user or the server refused (``error=access_denied``, ...)
    │   ├── AuthorizationResponseError a malformed or hostile redirect (wrong ``state``, foreign URL, no code)
    │   ├── AuthorizationCancelledError the sign-in window closed, or nothing can ask the user
    │   ├── TokenError             the token endpoint refused; carries ``error`` and ``description``
    │   └── InsufficientScopeError the server still refuses after the step-up limit
    ├── PolicyError                a PolicyTransport rule refused a message (method, size, rate, inspection)
    ├── CircuitOpenError           a CircuitBreakerTransport fails fast while its circuit is open
    ├── PyodideError (check)       Pyodide did not boot or answer in Node or a page, or code raised there
    │   └── BrowserCodeError (browser_testing.session)  a test's code raised in the page; ``type_name``, ``code``
    └── RuntimeSetupError (browser_testing.runtime)    the offline Pyodide runtime or a browser could not be had

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
    "AuthorizationCancelledError",
    "AuthorizationDeniedError",
    "AuthorizationError",
    "AuthorizationRequiredError",
    "AuthorizationResponseError",
    "CORSError",
    "ChallengeNotExposedError",
    "CircuitOpenError",
    "ConnectionClosedError",
    "DiscoveryCORSError",
    "DiscoveryError",
    "EnvelopeError",
    "HTTPStatusError",
    "InsufficientScopeError",
    "IssuerMismatchError",
    "LegacyServerError",
    "LocalProtocolError",
    "MCPError",
    "MessageTooLargeError",
    "MetadataError",
    "NetworkError",
    "PolicyError",
    "ProtocolError",
    "RegistrationError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResourceMismatchError",
    "SessionExpiredError",
    "TokenError",
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


# --- authorization (OAuth 2.1 as MCP uses it; see pyodide_transport.oauth_core) --------------------


class AuthorizationError(TransportError):
    """OAuth could not produce a usable access token; the message names what must change, and where."""


class AuthorizationRequiredError(HTTPStatusError, AuthorizationError):
    """The server answered 401 (no or a bad token) or 403 ``insufficient_scope`` (a bigger scope needed).

    Raised only when the transport has no :class:`~pyodide_transport.oauth.OAuth` to handle it, or
    after the handler gave up.

    Attributes:
        www_authenticate: The raw ``WWW-Authenticate`` header ("" when the response had none readable:
            a browser hides it unless ``Access-Control-Expose-Headers`` lists it).
    """

    def __init__(self, status: int, message: str = "", *, body: str = "", www_authenticate: str = "") -> None:
        super().__init__(status, message, body=body)
        self.www_authenticate = www_authenticate


class DiscoveryError(AuthorizationError):
    """No protected-resource or authorization-server metadata answered.

    Attributes:
        attempts: Each URL tried and what happened, in order.
    """

    def __init__(self, message: str, attempts: tuple[tuple[str, str], ...] = ()) -> None:
        tried = "; ".join(f"{url}: {outcome}" for url, outcome in attempts)
        super().__init__(f"{message} (tried {tried})" if tried else message)
        self.attempts = attempts


class DiscoveryCORSError(DiscoveryError):
    """A discovery URL was blocked by the browser: the server must send CORS headers on its metadata."""


class ChallengeNotExposedError(DiscoveryError):
    """A 401 carried no readable ``WWW-Authenticate``, and no metadata was found at the well-known URLs."""


class MetadataError(AuthorizationError):
    """A metadata document is malformed or unusable (missing fields, no PKCE S256, a plain-http endpoint)."""


class ResourceMismatchError(MetadataError):
    """The protected-resource metadata names a resource other than the server being called (RFC 9728 §3.3)."""


class IssuerMismatchError(MetadataError):
    """The metadata's ``issuer`` or the redirect's ``iss`` is not the authorization server's (RFC 8414, RFC 9207)."""


class RegistrationError(AuthorizationError):
    """The client cannot register: no pre-registration, metadata document or dynamic registration works."""


class AuthorizationDeniedError(AuthorizationError):
    """The authorization server redirected back with an error (``access_denied``: the user refused).

    Attributes:
        error: The OAuth error code.
        description: The server's ``error_description``, if any.
    """

    def __init__(self, error: str, description: str = "") -> None:
        text = "the sign-in was refused" if error == "access_denied" else f"the authorization server said {error!r}"
        super().__init__(f"{text}: {description}" if description else text)
        self.error = error
        self.description = description


class AuthorizationResponseError(AuthorizationError):
    """The authorization redirect is malformed or hostile (wrong ``state``, a foreign URL, no ``code``)."""


class AuthorizationCancelledError(AuthorizationError):
    """The sign-in did not complete: its window closed, or no redirect handler can ask the user."""


class TokenError(AuthorizationError):
    """The token endpoint refused a request.

    Attributes:
        error: The OAuth error code (RFC 6749 §5.2), or ``""`` when the answer was not one.
        description: The server's ``error_description``, if any.
        status: The HTTP status.
    """

    def __init__(self, status: int, error: str, description: str = "") -> None:
        what = f"the token endpoint answered HTTP {status}" + (f" {error!r}" if error else "")
        super().__init__(f"{what}: {description}" if description else what)
        self.status = status
        self.error = error
        self.description = description


class InsufficientScopeError(AuthorizationError):
    """The server still refuses with ``insufficient_scope`` after the step-up limit (or for a scope already held)."""


class PolicyError(TransportError):
    """A :class:`~pyodide_transport.middleware.PolicyTransport` rule refused a message.

    Attributes:
        rule: Which rule: ``"method"``, ``"size"``, ``"rate"`` or ``"inspection"``.
        direction: ``"out"`` (we were sending it) or ``"in"`` (the server sent it).
    """

    def __init__(self, message: str, *, rule: str, direction: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.direction = direction


class CircuitOpenError(TransportError):
    """A :class:`~pyodide_transport.middleware.CircuitBreakerTransport` is open: failing fast until its cool-down ends.

    Attributes:
        retry_after: Seconds until the breaker lets one trial message through.
    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EnvelopeError(RemoteProtocolError):
    """An encrypted envelope was refused: tampered with, replayed, truncated, malformed or sealed with another key."""

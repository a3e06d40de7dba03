"""Pure HTTP decisions for the Streamable HTTP endpoints: no ASGI, no I/O.

Each check takes header values and configuration and returns either
``None`` (fine) or a :class:`Rejection` saying which status to answer and
why. The ASGI adapter in :mod:`server_demo.http` only applies them, so every
status rule here is unit-testable on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from mcp_types.jsonrpc import INVALID_REQUEST
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from pyodide_transport.messages import JSONRPCError, RequestId, encode_message, error_response
from pyodide_transport.wire import BROWSER_REQUEST_HEADERS, EXPOSED_RESPONSE_HEADERS

from .config import SecurityConfig
from .modern import unsupported_version_error

__all__ = [
    "ALLOWED_METHODS",
    "CORS_ALLOW_HEADERS",
    "CORS_EXPOSE_HEADERS",
    "Rejection",
    "accepted_types",
    "check_accept",
    "check_content_type",
    "check_handshake_version",
    "check_security",
    "cors_headers",
    "host_allowed",
    "is_json_content_type",
    "origin_allowed",
    "preflight_headers",
]

CORS_ALLOW_HEADERS: tuple[str, ...] = BROWSER_REQUEST_HEADERS
"""Request headers a browser page may send (answered in every preflight)."""

CORS_EXPOSE_HEADERS = ", ".join(
    {name.lower(): name for name in (*EXPOSED_RESPONSE_HEADERS, "WWW-Authenticate")}.values()
)
"""Response headers a browser page may read; without this the session id (and an OAuth challenge) stays hidden."""

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"


@dataclass(frozen=True)
class Rejection:
    """An HTTP error answer.

    Attributes:
        status: The HTTP status.
        message: Why, in one sentence.
        code: A JSON-RPC error code for a JSON-RPC error body (id null); None for a plain-text body.
        data: The JSON-RPC error's ``data``.
        headers: Extra response headers (e.g. ``Allow`` with 405).
    """

    status: int
    message: str
    code: int | None = INVALID_REQUEST
    data: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        """The response body: a JSON-RPC error with ``id: null``, or the message as text."""
        if self.code is None:
            return self.message.encode()
        return encode_message(self.error(None)).encode()

    def error(self, request_id: RequestId | None) -> JSONRPCError:
        """The JSON-RPC error response for this rejection (``request_id`` null unless the request is known).

        Raises:
            ValueError: The rejection has a plain-text body (no ``code``).
        """
        if self.code is None:
            raise ValueError(f"a {self.status} rejection has a plain-text body, not a JSON-RPC error")
        return error_response(request_id, self.code, self.message, self.data)

    @property
    def media_type(self) -> str:
        """The body's content type."""
        return "text/plain; charset=utf-8" if self.code is None else "application/json"


def _split_pattern(pattern: str) -> tuple[str, bool]:
    """Strip a trailing ``:*`` port wildcard."""
    return (pattern[:-2], True) if pattern.endswith(":*") else (pattern, False)


def origin_allowed(origin: str, patterns: Iterable[str]) -> bool:
    """Whether a browser ``Origin`` matches one of ``scheme://host[:port|:*]`` (or ``*``)."""
    return _origin_allowed(origin, tuple(patterns))


# The three checks below run on every request with the same few header values: their answers are
# remembered (a bounded LRU, so odd values a client makes up cannot grow it), the checks are unchanged.


@lru_cache(maxsize=256)
def _origin_allowed(origin: str, patterns: tuple[str, ...]) -> bool:
    try:
        got = urlsplit(origin)
        got_port = got.port
    except ValueError:
        return False
    if not got.scheme or not got.hostname:
        return False
    for pattern in patterns:
        if pattern == "*":
            return True
        base, any_port = _split_pattern(pattern)
        try:
            want = urlsplit(base)
            want_port = want.port
        except ValueError:
            continue
        if (want.scheme, want.hostname) == (got.scheme, got.hostname) and (any_port or want_port == got_port):
            return True
    return False


def host_allowed(host: str | None, patterns: Iterable[str]) -> bool:
    """Whether a ``Host`` header matches one of ``host[:port|:*]``; no patterns allow all."""
    return _host_allowed(host, tuple(patterns))


@lru_cache(maxsize=256)
def _host_allowed(host: str | None, patterns: tuple[str, ...]) -> bool:
    if not patterns:
        return True
    if not host:
        return False
    try:
        got = urlsplit(f"//{host}")
        got_port = got.port
    except ValueError:
        return False
    for pattern in patterns:
        if pattern == "*":
            return True
        base, any_port = _split_pattern(pattern)
        try:
            want = urlsplit(f"//{base}")
            want_port = want.port
        except ValueError:
            continue
        if want.hostname == got.hostname and (any_port or want_port == got_port):
            return True
    return False


def check_security(host: str | None, origin: str | None, security: SecurityConfig) -> Rejection | None:
    """The DNS-rebinding and Origin guard: 403 for a foreign Host or a disallowed Origin."""
    if not host_allowed(host, security.allowed_hosts):
        return Rejection(403, f"Host {host!r} is not allowed", code=None)
    if origin is not None and not origin_allowed(origin, security.allowed_origins):
        return Rejection(403, f"Origin {origin!r} is not allowed", code=None)
    return None


def cors_headers(origin: str | None, security: SecurityConfig) -> dict[str, str]:
    """CORS headers for an actual response to an allowed origin (none for no/foreign origin)."""
    if origin is None or not origin_allowed(origin, security.allowed_origins):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
        "Vary": "Origin",
    }


def preflight_headers(origin: str, requested_headers: str | None, security: SecurityConfig) -> dict[str, str]:
    """Headers answering an ``OPTIONS`` preflight from an allowed origin.

    Besides the fixed list, any requested ``Mcp-Param-*`` header is allowed
    (2026-07-28 tools may mirror arguments into such headers).
    """
    allow = list(CORS_ALLOW_HEADERS)
    for name in (requested_headers or "").split(","):
        name = name.strip().lower()
        if name.startswith("mcp-param-") and name not in allow:
            allow.append(name)
    return {
        **cors_headers(origin, security),
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ", ".join(allow),
        "Access-Control-Max-Age": "600",
    }


@lru_cache(maxsize=256)
def accepted_types(accept: str | None) -> tuple[bool, bool]:
    """Whether ``Accept`` admits ``application/json`` and ``text/event-stream`` (wildcards count, q=0 does not)."""
    json_ok = sse_ok = False
    for item in (accept or "").split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        if media in ("application/json", "application/*", "*/*"):
            json_ok = True
        if media in ("text/event-stream", "text/*", "*/*"):
            sse_ok = True
    return json_ok, sse_ok


def check_accept(accept: str | None, *, need_json: bool, need_sse: bool) -> Rejection | None:
    """406 unless ``Accept`` admits every needed type."""
    json_ok, sse_ok = accepted_types(accept)
    missing = [
        t
        for t, need, ok in (("application/json", need_json, json_ok), ("text/event-stream", need_sse, sse_ok))
        if need and not ok
    ]
    if missing:
        return Rejection(406, f"Not Acceptable: the Accept header must include {' and '.join(missing)}")
    return None


def is_json_content_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` is ``application/json`` (parameters such as charset allowed)."""
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def check_content_type(content_type: str | None) -> Rejection | None:
    """415 unless the POST body is declared as JSON."""
    if is_json_content_type(content_type):
        return None
    return Rejection(415, "Unsupported Media Type: Content-Type must be application/json")


def check_handshake_version(header: str | None) -> Rejection | None:
    """400 for an ``MCP-Protocol-Version`` this server does not speak (absent means 2025-03-26)."""
    if header is None or header in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    error = unsupported_version_error(header)
    return Rejection(400, f"Bad Request: unsupported MCP-Protocol-Version {header!r}", code=error.code, data=error.data)

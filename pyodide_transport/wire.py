"""MCP wire rules shared by the client and the demo server: one place for each constant and format.

Pure (no I/O, no browser code). The JSON-RPC codec itself is :mod:`pyodide_transport.messages`;
the SSE codec is :mod:`pyodide_transport.sse`. What lives here is what both ends of a
Streamable HTTP connection must agree on:

* the protocol versions we speak (:data:`SUPPORTED_PROTOCOL_VERSIONS`);
* the default size limit of one message (:data:`DEFAULT_MAX_MESSAGE_SIZE`);
* the HTTP header names a browser client sends and must be able to read
  (:data:`BROWSER_REQUEST_HEADERS`, :data:`EXPOSED_RESPONSE_HEADERS`), the ``Accept`` values;
* the ``Mcp-Name`` table (:data:`NAME_PARAMS`) and its header-value encoding
  (:func:`encode_header_value`, :func:`decode_header_value`);
* the error codes a 2026-07-28 server answers with HTTP 400 (:data:`MODERN_ERROR_CODES`);
* how a pydantic validation failure reads in an error message (:func:`validation_message`).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from mcp_types.jsonrpc import HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

__all__ = [
    "ACCEPT_POST",
    "ACCEPT_SSE",
    "BROWSER_REQUEST_HEADERS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "EXPOSED_RESPONSE_HEADERS",
    "MODERN_ERROR_CODES",
    "NAME_PARAMS",
    "PROTOCOL_HEADERS",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "decode_header_value",
    "encode_header_value",
    "header_safe",
    "param_header_form",
    "param_headers",
    "tool_header_problem",
    "validation_message",
]

SUPPORTED_PROTOCOL_VERSIONS: Final[tuple[str, ...]] = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
"""Every protocol version we speak, oldest first: the handshake era, then 2026-07-28."""

DEFAULT_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
"""Default limit for one JSON body, SSE event or WebSocket frame (4 MiB, the official SDKs' limit)."""

BROWSER_REQUEST_HEADERS: Final[tuple[str, ...]] = (
    "content-type",
    "accept",
    "authorization",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
)
"""Request headers a browser MCP client sends; a server's CORS preflight must allow them all."""

EXPOSED_RESPONSE_HEADERS: Final[tuple[str, ...]] = ("Mcp-Session-Id", "MCP-Protocol-Version")
"""Response headers a browser client must be able to read; a server must list them in Expose-Headers."""

PROTOCOL_HEADERS: Final = frozenset(
    {"accept", "content-type", "last-event-id", "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name"}
)
"""Headers the Streamable HTTP rules set (lower-case): a client's custom headers may not override them."""

ACCEPT_POST: Final = "application/json, text/event-stream"
"""The ``Accept`` of every POST: both types spelled out (strict servers refuse ``*/*``)."""

ACCEPT_SSE: Final = "text/event-stream"
"""The ``Accept`` of the GET stream."""

NAME_PARAMS: Final[dict[str, str]] = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
"""Methods whose ``Mcp-Name`` header (2026-07-28) mirrors a body parameter, and which parameter."""

MODERN_ERROR_CODES: Final = frozenset(
    {HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION}
)
"""JSON-RPC error codes a 2026-07-28 server answers with HTTP 400 (and id null when it has none)."""

_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
_BASE64_PREFIX, _BASE64_SUFFIX = "=?base64?", "?="


def header_safe(value: str) -> bool:
    """Whether ``value`` is printable ASCII, the only thing an HTTP header carries as is."""
    return _HEADER_SAFE.fullmatch(value) is not None


def encode_header_value(value: str) -> str:
    """Make a value safe for an HTTP header, as the 2026-07-28 spec does for ``Mcp-Name``.

    Printable ASCII without edge whitespace passes as is; anything else (and anything that
    would read as the wrapping itself) becomes ``=?base64?<UTF-8 bytes in base64>?=``.
    """
    wrapped_lookalike = value.startswith(_BASE64_PREFIX) and value.endswith(_BASE64_SUFFIX)
    if header_safe(value) and value == value.strip() and not wrapped_lookalike:
        return value
    return f"{_BASE64_PREFIX}{base64.b64encode(value.encode()).decode('ascii')}{_BASE64_SUFFIX}"


def decode_header_value(value: str | None) -> str | None:
    """Undo :func:`encode_header_value`; ``None`` for a malformed base64 wrapping.

    Surrounding whitespace is not part of a header value (RFC 9110 §5.5), so it is stripped.
    """
    if value is None:
        return None
    value = value.strip()
    if not (value.startswith(_BASE64_PREFIX) and value.endswith(_BASE64_SUFFIX)):
        return value
    try:
        return base64.b64decode(value[len(_BASE64_PREFIX) : -len(_BASE64_SUFFIX)], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


PARAM_HEADER_PREFIX: Final = "Mcp-Param-"
"""Prefix of the headers that mirror ``x-mcp-header`` tool arguments (SEP-2243)."""

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


_HEADER_TYPES = frozenset({"string", "integer", "boolean"})


def tool_header_problem(input_schema: object) -> str | None:
    """Why a tool's ``x-mcp-header`` annotations are invalid (SEP-2243), or None when they are fine.

    An annotation names a header: a non-empty HTTP token (no spaces, colons, control or non-ASCII
    characters), unique among the tool's annotations regardless of case, on a top-level property of
    type string, integer or boolean. A client must not use a tool that breaks these rules.
    """
    properties = input_schema.get("properties") if isinstance(input_schema, dict) else None
    seen: set[str] = set()
    for argument, spec in (properties or {}).items() if isinstance(properties, dict) else ():
        if not isinstance(spec, dict) or "x-mcp-header" not in spec:
            continue
        name = spec["x-mcp-header"]
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            return f"argument {argument!r}: x-mcp-header {name!r} is not a valid header name"
        if name.lower() in seen:
            return f"argument {argument!r}: x-mcp-header {name!r} is declared twice"
        seen.add(name.lower())
        if spec.get("type") not in _HEADER_TYPES:
            return f"argument {argument!r}: x-mcp-header needs a string, integer or boolean, not {spec.get('type')!r}"
    return None


def param_headers(input_schema: object) -> dict[str, str]:
    """The tool arguments a 2026-07-28 request mirrors into headers: ``{argument: header name}`` (SEP-2243).

    A top-level property annotated ``"x-mcp-header": "Name"`` is sent as ``Mcp-Param-Name`` too. Check
    the tool with :func:`tool_header_problem` first: invalid annotations are skipped here.
    """
    properties = input_schema.get("properties") if isinstance(input_schema, dict) else None
    found: dict[str, str] = {}
    for argument, spec in (properties or {}).items() if isinstance(properties, dict) else ():
        name = spec.get("x-mcp-header") if isinstance(spec, dict) else None
        if isinstance(name, str) and _TOKEN.fullmatch(name):
            found[argument] = f"{PARAM_HEADER_PREFIX}{name}"
    return found


def param_header_form(value: object) -> str | None:
    """How an argument's value reads in its ``Mcp-Param-*`` header, or None for a value headers cannot carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def validation_message(exc: ValidationError, what: str) -> str:
    """One line naming the first thing wrong: ``"<what>: <where>: <why>"``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "value"
    return f"{what}: {where}: {first['msg']}"

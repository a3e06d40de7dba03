"""The 2026-07-28 per-request envelope: pure validation, no I/O.

A modern request carries its protocol version, client capabilities and
(optionally) client info in ``params._meta``. Over HTTP the
``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers must agree
with the body. These checks run in a fixed order and the first failure wins:
envelope shape (-32602), header consistency (-32020), supported version
(-32022).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    ClientCapabilities,
)
from mcp_types.jsonrpc import HEADER_MISMATCH, INVALID_PARAMS, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from pyodide_transport.wire import (
    NAME_PARAMS,
    SUPPORTED_PROTOCOL_VERSIONS,
    decode_header_value,
    param_header_form,
    param_headers,
)

from .errors import RequestError

__all__ = [
    "ModernEnvelope",
    "check_param_headers",
    "check_routing_headers",
    "is_modern_request",
    "parse_envelope",
    "unsupported_version_error",
]


@dataclass(frozen=True)
class ModernEnvelope:
    """The per-request protocol fields of a 2026-07-28 request."""

    protocol_version: str
    client_capabilities: ClientCapabilities
    client_info: Any = None
    log_level: str | None = None


def _meta_of(params: Mapping[str, Any] | None) -> Any:
    return None if params is None else params.get("_meta")


def is_modern_request(method: str, params: Mapping[str, Any] | None) -> bool:
    """Whether a request speaks the 2026-07-28 envelope (by its body alone)."""
    meta = _meta_of(params)
    if isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta:
        return True
    return method == "server/discover"


def unsupported_version_error(requested: str) -> RequestError:
    """The -32022 error naming every version this server speaks."""
    return RequestError(
        UNSUPPORTED_PROTOCOL_VERSION,
        f"unsupported protocol version {requested!r}",
        {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": requested},
    )


def parse_envelope(params: Mapping[str, Any] | None) -> ModernEnvelope:
    """Read and check the envelope in ``params._meta``.

    Raises:
        RequestError: -32602 for a missing or malformed envelope, -32022 for an
            unsupported version.
    """
    meta = _meta_of(params)
    if not isinstance(meta, Mapping):
        raise RequestError(
            INVALID_PARAMS,
            f"params._meta must carry {PROTOCOL_VERSION_META_KEY!r} and {CLIENT_CAPABILITIES_META_KEY!r}",
        )
    missing = [k for k in (PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY) if k not in meta]
    if missing:
        raise RequestError(INVALID_PARAMS, f"params._meta lacks {', '.join(missing)}")
    version = meta[PROTOCOL_VERSION_META_KEY]
    if not isinstance(version, str):
        raise RequestError(INVALID_PARAMS, "the protocol version in params._meta must be a string")
    if version not in MODERN_PROTOCOL_VERSIONS:
        raise unsupported_version_error(version)
    try:
        caps = ClientCapabilities.model_validate(meta[CLIENT_CAPABILITIES_META_KEY])
    except ValidationError:
        raise RequestError(INVALID_PARAMS, "client capabilities in params._meta are malformed") from None
    level = meta.get(LOG_LEVEL_META_KEY)
    return ModernEnvelope(
        protocol_version=version,
        client_capabilities=caps,
        client_info=meta.get(CLIENT_INFO_META_KEY),
        log_level=level if isinstance(level, str) else None,
    )


def check_routing_headers(method: str, params: Mapping[str, Any] | None, headers: Mapping[str, str]) -> None:
    """Check ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` against the body.

    ``Mcp-Name`` is compared after :func:`~pyodide_transport.wire.decode_header_value`, so
    whitespace around it does not count (SEP-2243: a server must accept it) and a
    base64-wrapped value is compared by what it wraps.

    Args:
        method: The JSON-RPC method in the body.
        params: The body's params.
        headers: Request headers with lower-case names.

    Raises:
        RequestError: -32020 (header mismatch) on the first disagreement.
    """
    meta = _meta_of(params)
    body_version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, Mapping) else None
    if headers.get("mcp-protocol-version") != body_version:
        raise RequestError(HEADER_MISMATCH, "MCP-Protocol-Version header does not match params._meta")
    if headers.get("mcp-method") != method:
        raise RequestError(HEADER_MISMATCH, "Mcp-Method header does not match the body's method")
    key = NAME_PARAMS.get(method)
    if key is not None and params is not None:
        body_value = params.get(key)
        if body_value is not None and decode_header_value(headers.get("mcp-name")) != body_value:
            raise RequestError(HEADER_MISMATCH, f"Mcp-Name header does not match the body's {key!r}")


def check_param_headers(
    input_schema: Mapping[str, Any], params: Mapping[str, Any] | None, headers: Mapping[str, str]
) -> None:
    """Check the ``Mcp-Param-*`` headers of a ``tools/call`` against its arguments (SEP-2243).

    Every argument the tool annotates with ``x-mcp-header`` that the body carries must arrive in its
    header too, with the same value: as is, or wrapped as ``=?base64?...?=`` (strict Base64: bad
    padding or characters are refused; a value missing either half of the wrapper is literal).

    Raises:
        RequestError: -32020 (header mismatch) on the first disagreement.
    """
    arguments = (params or {}).get("arguments")
    if not isinstance(arguments, Mapping):
        return
    for argument, header in param_headers(dict(input_schema)).items():
        if argument not in arguments:
            continue
        expected = param_header_form(arguments[argument])
        got = headers.get(header.lower())
        if got is None:
            raise RequestError(HEADER_MISMATCH, f"{header} header is missing for argument {argument!r}")
        decoded = decode_header_value(got)
        if decoded is None:
            raise RequestError(HEADER_MISMATCH, f"{header} header is not valid Base64")
        if expected is not None and decoded != expected:
            raise RequestError(HEADER_MISMATCH, f"{header} header does not match the argument {argument!r}")

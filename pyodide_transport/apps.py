"""MCP Apps (SEP-1865, extension ``io.modelcontextprotocol/ui``, revision 2026-01-26): what hosts share.

Pure (no I/O): the extension's names, the client capability that declares it, and the Content
Security Policy a host builds from a UI resource's ``_meta.ui.csp`` (:func:`validate_csp`, then
:func:`build_csp`). The explorer shows the policy it applies, the demo server's sandbox proxy sends
it as a header: both from here, so what the user reads is what the browser enforces.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import RemoteProtocolError

__all__ = [
    "APP_MIME_TYPE",
    "CSP_KEYS",
    "DEFAULT_CSP",
    "UI_EXTENSION",
    "build_csp",
    "ui_extension_capability",
    "validate_csp",
]

UI_EXTENSION = "io.modelcontextprotocol/ui"
"""The extension's identifier in ``capabilities.extensions``."""

APP_MIME_TYPE = "text/html;profile=mcp-app"
"""The MIME type of an app's ``ui://`` resource."""


def ui_extension_capability() -> dict[str, Any]:
    """``capabilities.extensions`` of a client that hosts HTML apps."""
    return {UI_EXTENSION: {"mimeTypes": [APP_MIME_TYPE]}}


CSP_KEYS = ("connectDomains", "resourceDomains", "frameDomains", "baseUriDomains")
"""The domain lists of ``_meta.ui.csp``; other keys are ignored (never a loosening)."""

DEFAULT_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "media-src 'self' data:",
        "connect-src 'none'",
        "frame-src 'none'",
        "object-src 'none'",
        "base-uri 'self'",
    ]
)
"""The spec's restrictive default (an app without ``ui.csp``), plus ``frame-src``, ``object-src`` and ``base-uri``."""

MAX_DOMAINS = 32
"""At most this many origins per list."""

_SOURCE_RE = re.compile(
    r"^(?P<scheme>https?|wss?)://"
    r"(?P<host>(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>\d{1,5}|\*))?/?$"
)


def _source(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{key}: every entry must be a string, not {type(value).__name__}")
    match = _SOURCE_RE.match(value)
    if match is None or len(value) > 260:
        raise RemoteProtocolError(
            f"{key}: {value!r} is not an origin: use scheme://host[:port] with http, https, ws or wss "
            "(a leading *. wildcard subdomain is allowed; no paths, quotes, spaces or semicolons)"
        )
    port = match.group("port")
    if port is not None and port != "*" and not 0 < int(port) < 65536:
        raise RemoteProtocolError(f"{key}: {value!r} has no valid port")
    return value.rstrip("/")


def validate_csp(raw: Any) -> dict[str, list[str]] | None:
    """The checked domain lists of ``_meta.ui.csp`` (``None`` stays ``None``: the restrictive default).

    Raises:
        RemoteProtocolError: Not an object, a list that is not a list of origins, or too many entries.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RemoteProtocolError(f"the CSP must be a JSON object of domain lists, not {type(raw).__name__}")
    checked: dict[str, list[str]] = {}
    for key in CSP_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise RemoteProtocolError(f"{key} must be a list of origins")
        if len(value) > MAX_DOMAINS:
            raise RemoteProtocolError(f"{key}: at most {MAX_DOMAINS} origins")
        checked[key] = [_source(item, key) for item in value]
    return checked


def build_csp(csp: dict[str, list[str]] | None) -> str:
    """The policy of the spec's "CSP construction from metadata" (``None``: :data:`DEFAULT_CSP`).

    ``csp`` must come from :func:`validate_csp`.
    """
    if csp is None:
        return DEFAULT_CSP

    def extra(key: str) -> str:
        return "".join(f" {source}" for source in csp.get(key, []))

    resources = extra("resourceDomains")
    frames = csp.get("frameDomains") or []
    bases = csp.get("baseUriDomains") or []
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'unsafe-inline'{resources}",
            f"style-src 'self' 'unsafe-inline'{resources}",
            f"connect-src 'self'{extra('connectDomains')}",
            f"img-src 'self' data:{resources}",
            f"font-src 'self'{resources}",
            f"media-src 'self' data:{resources}",
            f"frame-src {' '.join(frames)}" if frames else "frame-src 'none'",
            "object-src 'none'",
            f"base-uri {' '.join(bases)}" if bases else "base-uri 'self'",
        ]
    )

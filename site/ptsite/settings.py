"""Connection settings: transports and their endpoints, deep links, and error text for humans.

Pure Python (no ``js``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from pyodide_transport.errors import (
    AuthorizationCancelledError,
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationRequiredError,
    ConnectionClosedError,
    CORSError,
    HTTPStatusError,
    MCPError,
    NetworkError,
    RequestTimeoutError,
    TransportError,
    UnsupportedProtocolVersionError,
)

__all__ = [
    "DEFAULT_TRANSPORT",
    "IN_BROWSER",
    "IN_BROWSER_ENDPOINT",
    "TRANSPORTS",
    "Settings",
    "TransportChoice",
    "deep_link",
    "describe_error",
    "endpoint_url",
    "expand_uri_template",
    "parse_deep_link",
    "template_variables",
]


@dataclass(frozen=True)
class TransportChoice:
    """One entry of the transport selector."""

    key: str
    label: str
    path: str
    websocket: bool
    blurb: str
    in_browser: bool = False  # no URL: the demo server's core in a Web Worker of this page


IN_BROWSER = "in-browser"
"""The transport key of the in-browser demo server (the explorer's fallback when no server answers)."""

TRANSPORTS: dict[str, TransportChoice] = {
    c.key: c
    for c in (
        TransportChoice(
            "http-sse", "HTTP stateful + SSE", "/mcp", False, "Session id, responses streamed as SSE, resumable"
        ),
        TransportChoice(
            "http-json", "HTTP stateful + JSON", "/mcp/json", False, "Session id, one JSON body per request"
        ),
        TransportChoice(
            "http-stateless", "HTTP stateless", "/mcp/stateless", False, "No session, JSON responses, no GET stream"
        ),
        TransportChoice(
            "http-oauth",
            "HTTP + OAuth sign-in",
            "/mcp/protected",
            False,
            "The demo's protected endpoint: 401 until you sign in (OAuth 2.1, PKCE, a popup)",
        ),
        TransportChoice("websocket", "WebSocket", "/ws", True, "One socket, subprotocol mcp, one message per frame"),
        TransportChoice(
            "in-browser",
            "In-browser demo server",
            "",
            False,
            "The demo server's core in a Web Worker of this page, over a MessagePort: no server needed",
            in_browser=True,
        ),
    )
}
"""The transports the explorer offers, keyed by their deep-link name."""

DEFAULT_TRANSPORT = "http-sse"

_ALIASES = {
    "sse": "http-sse",
    "http": "http-sse",
    "mcp": "http-sse",
    "json": "http-json",
    "stateless": "http-stateless",
    "oauth": "http-oauth",
    "protected": "http-oauth",
    "ws": "websocket",
    "worker": "in-browser",
    "browser": "in-browser",
}

IN_BROWSER_ENDPOINT = "worker:./server-worker.js"
"""The in-browser demo server's address as ``connect`` takes it: a module worker of this site (``worker:`` scheme)."""


@dataclass
class Settings:
    """What the connection panel holds.

    Attributes:
        server: The server URL (an origin, or a full endpoint URL).
        transport: A key of :data:`TRANSPORTS`.
        header_name: An optional extra request header (HTTP transports only).
        header_value: Its value (e.g. ``Bearer abc``).
        autoconnect: Connect as soon as the page is ready.
        implied: ``autoconnect`` was not asked for but implied (no ``server`` given: try the page's
            own origin, which is the demo server when it serves the page); a failure is then no error.
        gateway_auto: When a direct connection fails with a CORS error and this page's server has a
            gateway upstream configured with that URL, go through it without asking (``gateway=auto``).
    """

    server: str
    transport: str = DEFAULT_TRANSPORT
    header_name: str = ""
    header_value: str = ""
    autoconnect: bool = False
    implied: bool = False
    gateway_auto: bool = False


def endpoint_url(server: str, transport: str) -> str:
    """The URL to connect to.

    A bare origin (no path, or ``/``) gets the transport's default path
    (``/mcp``, ``/mcp/json``, ``/mcp/stateless``, ``/ws``); a URL with a path
    is used as given. The scheme follows the transport: ``ws``/``wss`` for
    WebSocket, ``http``/``https`` otherwise.

    Raises:
        ValueError: The URL is not an absolute http(s) or ws(s) URL, or the transport is unknown.
    """
    choice = TRANSPORTS.get(transport)
    if choice is None:
        raise ValueError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORTS)}")
    if choice.in_browser:
        return IN_BROWSER_ENDPOINT
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ValueError(f"server URL must look like http://host:port, got {server.strip()!r}")
    secure = parts.scheme in ("https", "wss")
    scheme = ("wss" if secure else "ws") if choice.websocket else "https" if secure else "http"
    path = parts.path if parts.path not in ("", "/") else choice.path
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def parse_deep_link(query: str, origin: str) -> Settings:
    """Settings from a page query string: ``?server=URL&transport=...&autoconnect=1&gateway=auto``.

    ``server`` defaults to ``origin`` (the page's own server); unknown
    transports fall back to the default; ``header=Name: value`` sets the
    extra header. Without ``server`` and ``autoconnect`` the page tries its
    own origin (``implied``): served by the demo server, it lands connected.
    """
    params = parse_qs(query.lstrip("?"), keep_blank_values=True)

    def first(name: str) -> str:
        values = params.get(name)
        return values[0].strip() if values else ""

    transport = first("transport").lower()
    transport = _ALIASES.get(transport, transport)
    if transport not in TRANSPORTS:
        transport = DEFAULT_TRANSPORT
    name, _, value = first("header").partition(":")
    asked = first("autoconnect").lower()
    implied = not asked and not first("server")
    return Settings(
        server=first("server") or origin,
        transport=transport,
        header_name=name.strip(),
        header_value=value.strip(),
        autoconnect=implied or asked in ("1", "true", "yes", "on"),
        implied=implied,
        gateway_auto=first("gateway").lower() == "auto",
    )


def deep_link(settings: Settings, *, autoconnect: bool = True) -> str:
    """The query string that reproduces ``settings`` (headers are left out: they may be secrets)."""
    query = {"server": settings.server, "transport": settings.transport}
    if autoconnect:
        query["autoconnect"] = "1"
    if settings.gateway_auto:
        query["gateway"] = "auto"
    return "?" + urlencode(query, quote_via=quote, safe=":/")


def describe_error(exc: BaseException, url: str = "") -> str:
    """A message for the status line that says what went wrong and what to check."""
    where = f" at {url}" if url else ""
    if isinstance(exc, CORSError):
        return f"Blocked by CORS{where}: {exc}"
    if isinstance(exc, UnsupportedProtocolVersionError):
        offered = f" The server offers: {', '.join(exc.supported)}." if exc.supported else ""
        return f"No protocol version in common with the server{where}: {exc.error_message}.{offered}"
    if isinstance(exc, AuthorizationDeniedError):
        said = f" ({exc.description})" if exc.description else ""
        if exc.error == "access_denied":
            return f"Sign-in refused{where}: consent was not given{said}. Connect again to sign in."
        return f"Sign-in refused{where}: the authorization server answered {exc.error}{said}."
    if isinstance(exc, AuthorizationCancelledError):
        return f"Sign-in cancelled{where}: {exc}. Connect again to sign in."
    if isinstance(exc, AuthorizationRequiredError):
        return f"Sign-in required{where}: {exc}"
    if isinstance(exc, AuthorizationError):
        return f"Sign-in failed{where} ({type(exc).__name__}): {exc}"
    if isinstance(exc, HTTPStatusError):
        hint = {
            404: "nothing is served there: check the URL and the transport's path",
            403: "the server refused this page's origin (check its allowed origins)",
            401: "the server wants credentials: add an Authorization header",
            405: "the server does not accept this method there: is it an MCP endpoint?",
            406: "the server rejected the Accept header",
            415: "the server rejected the content type",
        }.get(exc.status, "")
        return f"HTTP {exc.status}{where}" + (f": {hint}" if hint else "") + f" ({exc})"
    if isinstance(exc, RequestTimeoutError):
        return f"Timed out{where}: {exc}"
    if isinstance(exc, ConnectionClosedError):
        reason = f" (code {exc.code}{', ' + exc.reason if exc.reason else ''})" if exc.code else ""
        return f"Connection closed{where}{reason}: {exc}"
    if isinstance(exc, NetworkError):
        return f"Network error{where}: {exc} Is the server running?"
    if isinstance(exc, MCPError):
        return f"The server answered with an error: {exc}"
    if isinstance(exc, TransportError):
        return f"{type(exc).__name__}{where}: {exc}"
    return f"Unexpected {type(exc).__name__}{where}: {exc}"


# ----------------------------------------------------------- URI templates


def template_variables(template: str) -> list[str]:
    """The variable names of an RFC 6570 URI template, in order, without duplicates."""
    names: list[str] = []
    i = 0
    while (start := template.find("{", i)) != -1:
        end = template.find("}", start)
        if end == -1:
            break
        expression = template[start + 1 : end].lstrip("+#./;?&")
        for spec in expression.split(","):
            name = spec.split(":")[0].rstrip("*").strip()
            if name and name not in names:
                names.append(name)
        i = end + 1
    return names


_SEPARATORS = {"": ",", "+": ",", "#": ",", ".": ".", "/": "/", ";": ";", "?": "&", "&": "&"}
_PREFIXES = {"": "", "+": "", "#": "#", ".": ".", "/": "/", ";": ";", "?": "?", "&": "&"}


def expand_uri_template(template: str, values: dict[str, str]) -> str:
    """Expand an RFC 6570 template with string values (levels 1-3; missing values are dropped)."""
    out: list[str] = []
    i = 0
    while (start := template.find("{", i)) != -1:
        end = template.find("}", start)
        if end == -1:
            break
        out.append(template[i:start])
        expression = template[start + 1 : end]
        op = expression[0] if expression and expression[0] in "+#./;?&" else ""
        names = [s.split(":")[0].rstrip("*").strip() for s in expression[len(op) :].split(",")]
        safe = ":/?#[]@!$&'()*+,;=" if op in ("+", "#") else ""
        parts: list[str] = []
        for name in names:
            if name not in values:
                continue
            encoded = quote(values[name], safe=safe)
            if op in (";", "?", "&"):
                encoded = f"{name}={encoded}" if encoded or op != ";" else name
            parts.append(encoded)
        if parts:
            out.append(_PREFIXES[op] + _SEPARATORS[op].join(parts))
        i = end + 1
    out.append(template[i:])
    return "".join(out)

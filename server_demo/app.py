"""The Starlette app: every endpoint of the demo server plus the built site.

* ``/mcp`` — Streamable HTTP, stateful, SSE, resumable
* ``/mcp/json`` — Streamable HTTP, stateful, JSON responses
* ``/mcp/stateless`` — Streamable HTTP, stateless, JSON responses
* ``/mcp/protected`` — like ``/mcp`` (same core), but OAuth-protected: ``Authorization: Bearer`` required
* ``/ws`` — WebSocket, subprotocol ``mcp``
* ``/ws/encrypted`` — the same, every frame an AES-256-GCM envelope (when ``AppConfig.encryption`` is set)
* ``/gateway`` — the upstream list; ``/gateway/NAME/mcp`` and ``/gateway/NAME/ws`` forward to a configured
  upstream (when ``AppConfig.gateway`` is set; :mod:`server_demo.gateway`)
* ``/oauth/…`` and ``/.well-known/…`` — the OAuth authorization server and metadata (:mod:`server_demo.oauth`)
* ``/apps/sandbox.json`` — where the MCP Apps sandbox proxy is (``{"url": ...}``; :mod:`server_demo.sandbox`)
* ``/`` — the site's static files, with a Content-Security-Policy a Pyodide/PyScript page can live with
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pyodide_transport.encrypted import EnvelopeCodec

from .config import (
    DEFAULT_MAX_MESSAGE_BYTES,
    EncryptionConfig,
    SecurityConfig,
    StreamableHttpServerConfig,
    stateful_json,
    stateful_sse,
    stateless_json,
)
from .core import Server
from .demo import build_demo_server
from .gateway import Gateway
from .gateway_config import GatewayConfig
from .http import StreamableHttpEndpoint
from .oauth import PROTECTED_PATH, OAuthConfig, OAuthProvider
from .oauth_resource import BearerGuard
from .websocket import websocket_endpoint

__all__ = [
    "ENCRYPTED_WS_PATH",
    "SANDBOX_JSON_PATH",
    "AppConfig",
    "CSPMiddleware",
    "content_security_policy",
    "create_app",
    "sandbox_url",
]

ENCRYPTED_WS_PATH = "/ws/encrypted"
SANDBOX_JSON_PATH = "/apps/sandbox.json"

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")

_HOST_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")


def content_security_policy(host: str | None) -> str:
    """The site's CSP: Pyodide needs WebAssembly compilation, PyScript needs eval, workers come from blobs.

    Pages may connect to their own origin and to MCP servers on this machine (any loopback port), so the
    explorer can test a local server; nothing else.
    """
    sockets = f" ws://{host} wss://{host}" if host and _HOST_RE.match(host) else ""
    sockets += "".join(f" {scheme}://{name}:*" for scheme in ("http", "ws") for name in ("127.0.0.1", "localhost"))
    frames = "'self' http://127.0.0.1:* http://localhost:*"
    if host and _HOST_RE.match(host):
        name = _host_name(host)
        if name not in ("127.0.0.1", "localhost"):
            frames += f" http://{name}:*"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval' blob:",
            "worker-src 'self' blob:",
            f"connect-src 'self'{sockets}",
            "img-src 'self' data: blob:",
            "media-src 'self' data: blob:",
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            # MCP Apps: the sandbox proxy lives on another loopback port (server_demo.sandbox)
            f"frame-src {frames}",
            "frame-ancestors 'self'",
        ]
    )


class CSPMiddleware:
    """Adds the Content-Security-Policy (and nosniff) to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to add the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1") or None
        policy = content_security_policy(host).encode()

        async def send_with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", policy))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_csp)
        except HTTPException as exc:  # e.g. StaticFiles' 404: answer here, so the error page carries the CSP too
            response = PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)
            await response(scope, receive, send_with_csp)


class Backend(Protocol):
    """Serves ``/mcp``, ``/mcp/json``, ``/mcp/stateless`` and ``/ws`` instead of the in-process core.

    :class:`server_demo.queue_backend.QueueBackend` (``--backend redis-queue``) hands them to a worker pool.
    """

    def http_endpoint(self, server: Server, config: StreamableHttpServerConfig) -> StreamableHttpEndpoint:
        """One Streamable HTTP endpoint."""
        ...

    def websocket(self, server: Server, security: SecurityConfig, max_message_bytes: int) -> Any:
        """The ``/ws`` endpoint."""
        ...

    async def start(self) -> None:
        """Connect (the app's startup)."""
        ...

    async def close(self) -> None:
        """Disconnect (the app's shutdown)."""
        ...


@dataclass
class AppConfig:
    """What :func:`create_app` serves.

    Attributes:
        site_dir: The static site (served at ``/``) if it exists.
        security: Host and Origin rules of every endpoint.
        sse: ``/mcp`` (default :func:`~server_demo.config.stateful_sse`).
        json: ``/mcp/json`` (default :func:`~server_demo.config.stateful_json`).
        stateless: ``/mcp/stateless`` (default :func:`~server_demo.config.stateless_json`).
        protected: ``/mcp/protected`` (default :func:`~server_demo.config.stateful_sse`; its own sessions).
        oauth: The authorization server and the bearer rules; None serves neither it nor ``/mcp/protected``.
        max_ws_message_bytes: One WebSocket message's limit.
        encryption: Serves ``/ws/encrypted`` with this key; None serves no encrypted endpoint.
        gateway: Serves ``/gateway`` and each upstream's ``/gateway/NAME/mcp`` and ``/ws``
            (:mod:`server_demo.gateway`); None serves no gateway.
        sandbox_port: The port of the MCP Apps sandbox proxy (``/apps/sandbox.json``); None: no sandbox.
        gateway_endpoint: Makes each ``/gateway/NAME/mcp`` endpoint's config (default
            :func:`~server_demo.config.stateful_sse` with ``security``).
        backend: Serves ``/mcp``, ``/mcp/json``, ``/mcp/stateless`` and ``/ws`` instead of ``server``
            (:class:`Backend`); None: the in-process core.
    """

    site_dir: Path | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)
    sse: StreamableHttpServerConfig | None = None
    json: StreamableHttpServerConfig | None = None
    stateless: StreamableHttpServerConfig | None = None
    protected: StreamableHttpServerConfig | None = None
    oauth: OAuthConfig | None = field(default_factory=OAuthConfig)
    max_ws_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    encryption: EncryptionConfig | None = None
    gateway: GatewayConfig | None = None
    gateway_endpoint: Callable[[], StreamableHttpServerConfig] | None = None
    backend: Backend | None = None
    sandbox_port: int | None = None


def sandbox_url(host_header: str | None, port: int | None) -> str | None:
    """The sandbox proxy's page on ``port`` of the host the request named (None: no sandbox)."""
    if port is None:
        return None
    host = host_header or "127.0.0.1"
    return f"http://{_host_name(host) if _HOST_RE.match(host) else '127.0.0.1'}:{port}/sandbox.html"


def _host_name(host: str) -> str:
    """``name`` of a ``Host`` header ``name[:port]`` (``[v6]`` kept in brackets)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


_INDEX = """<!doctype html><meta charset="utf-8"><title>pyodide-transport demo server</title>
<h1>pyodide-transport demo server</h1><p>MCP endpoints: <code>/mcp</code> (SSE), <code>/mcp/json</code>,
<code>/mcp/stateless</code>, <code>/ws</code> (and <code>/mcp/protected</code> with OAuth).
No site directory is being served.</p>"""


def encrypted_endpoint(server: Server, security: SecurityConfig, config: AppConfig):  # type: ignore[no-untyped-def]
    """``/ws/encrypted``: the ``/ws`` endpoint with an envelope codec (role server) per connection."""
    encryption = config.encryption
    assert encryption is not None
    key = encryption.derived_key()  # once, at startup

    def codec() -> EnvelopeCodec:
        return EnvelopeCodec("server", key=key)

    return websocket_endpoint(server, security, config.max_ws_message_bytes, codec=codec, on_wire=encryption.on_wire)


class _App(Starlette):
    """Starlette with a short way in for the Streamable HTTP endpoints.

    An HTTP request whose path is exactly one of ``direct``'s goes straight to that endpoint: it is a
    complete ASGI app that answers every method and error itself, so Starlette's error and exception
    middleware and the route scan in front of it only cost time (a fifth of a call to the ``echo``
    tool). Everything else (other paths, a trailing slash, WebSocket, lifespan) takes Starlette's way.
    """

    def __init__(self, direct: dict[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection event: an MCP endpoint's request directly, anything else through Starlette."""
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.direct.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(server: Server | None = None, config: AppConfig | None = None) -> Starlette:
    """Build the ASGI app serving every endpoint (and the site, if ``config.site_dir`` exists).

    ``app.state.oauth`` is the :class:`~server_demo.oauth.OAuthProvider` (None with ``config.oauth=None``);
    ``app.state.gateway`` the :class:`~server_demo.gateway.Gateway` (None without ``config.gateway``).
    """
    server = server or build_demo_server()
    config = config or AppConfig()
    security = config.security
    backend = config.backend
    make = backend.http_endpoint if backend is not None else StreamableHttpEndpoint
    endpoints = [
        ("/mcp", make(server, config.sse or stateful_sse(security=security))),
        ("/mcp/json", make(server, config.json or stateful_json(security=security))),
        ("/mcp/stateless", make(server, config.stateless or stateless_json(security=security))),
    ]
    routes: list[Route | WebSocketRoute | Mount] = [Route(path, endpoint) for path, endpoint in endpoints]
    provider = None
    if config.oauth is not None:
        provider = OAuthProvider(config.oauth, security, PROTECTED_PATH)
        protected_config = config.protected or stateful_sse(security=security)
        protected = StreamableHttpEndpoint(server, protected_config)
        endpoints.append((PROTECTED_PATH, protected))
        guard = BearerGuard(protected, provider, protected_config.security, protected_config.max_body_bytes)
        routes.append(Route(PROTECTED_PATH, guard))
        routes.extend(Route(path, CSPMiddleware(oauth_app)) for path, oauth_app in provider.routes())
    ws = (backend.websocket if backend is not None else websocket_endpoint)(
        server, security, config.max_ws_message_bytes
    )
    routes.append(WebSocketRoute("/ws", ws))
    if config.encryption is not None:
        routes.append(WebSocketRoute(ENCRYPTED_WS_PATH, encrypted_endpoint(server, security, config)))
    gateway = Gateway(config.gateway) if config.gateway is not None else None
    if gateway is not None:
        make_config = config.gateway_endpoint or (lambda: stateful_sse(security=security))
        routes.extend(gateway.routes(security, make_config, config.max_ws_message_bytes))
    sandbox_port = config.sandbox_port

    async def sandbox_json(request: Request) -> JSONResponse:
        url = sandbox_url(request.headers.get("host"), sandbox_port)
        return JSONResponse({"url": url}, headers={"Cache-Control": "no-store"})

    routes.append(Route(SANDBOX_JSON_PATH, sandbox_json, methods=["GET", "HEAD"]))
    if config.site_dir is not None and config.site_dir.is_dir():
        routes.append(Mount("/", app=CSPMiddleware(StaticFiles(directory=config.site_dir, html=True))))
    else:
        routes.append(Route("/", CSPMiddleware(HTMLResponse(_INDEX))))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sweeper = None
        if gateway is not None and gateway.endpoints:
            idle = gateway.endpoints[0].config.session_idle_timeout
            sweeper = asyncio.create_task(gateway.sweep_idle(min(max(idle / 4, 0.05), 30.0)))
        if backend is not None:
            await backend.start()
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            for _, endpoint in endpoints:
                await endpoint.close()
            if gateway is not None:
                await gateway.close()
            if backend is not None:
                await backend.close()

    app = _App(dict(endpoints[:3]), routes=routes, lifespan=lifespan)
    app.state.endpoints = dict(endpoints)
    app.state.server = server
    app.state.oauth = provider
    app.state.gateway = gateway
    return app

"""The Starlette app: every endpoint of the demo server plus the built site.

* ``/mcp`` — Streamable HTTP, stateful, SSE, resumable
* ``/mcp/json`` — Streamable HTTP, stateful, JSON responses
* ``/mcp/stateless`` — Streamable HTTP, stateless, JSON responses
* ``/ws`` — WebSocket, subprotocol ``mcp``
* ``/`` — the site's static files, with a Content-Security-Policy a Pyodide/PyScript page can live with
"""

from __future__ import annotations

import contextlib
import mimetypes
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import (
    DEFAULT_MAX_MESSAGE_BYTES,
    SecurityConfig,
    StreamableHttpServerConfig,
    stateful_json,
    stateful_sse,
    stateless_json,
)
from .core import Server
from .demo import build_demo_server
from .http import StreamableHttpEndpoint
from .websocket import websocket_endpoint

__all__ = ["AppConfig", "CSPMiddleware", "content_security_policy", "create_app"]

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


@dataclass
class AppConfig:
    """What :func:`create_app` serves."""

    site_dir: Path | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)
    sse: StreamableHttpServerConfig | None = None
    json: StreamableHttpServerConfig | None = None
    stateless: StreamableHttpServerConfig | None = None
    max_ws_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


_INDEX = """<!doctype html><meta charset="utf-8"><title>pyodide-transport demo server</title>
<h1>pyodide-transport demo server</h1><p>MCP endpoints: <code>/mcp</code> (SSE), <code>/mcp/json</code>,
<code>/mcp/stateless</code>, <code>/ws</code>. No site directory is being served.</p>"""


def create_app(server: Server | None = None, config: AppConfig | None = None) -> Starlette:
    """Build the ASGI app serving every endpoint (and the site, if ``config.site_dir`` exists)."""
    server = server or build_demo_server()
    config = config or AppConfig()
    security = config.security
    endpoints = [
        ("/mcp", StreamableHttpEndpoint(server, config.sse or stateful_sse(security=security))),
        ("/mcp/json", StreamableHttpEndpoint(server, config.json or stateful_json(security=security))),
        ("/mcp/stateless", StreamableHttpEndpoint(server, config.stateless or stateless_json(security=security))),
    ]
    routes: list[Route | WebSocketRoute | Mount] = [Route(path, endpoint) for path, endpoint in endpoints]
    routes.append(WebSocketRoute("/ws", websocket_endpoint(server, security, config.max_ws_message_bytes)))
    if config.site_dir is not None and config.site_dir.is_dir():
        routes.append(Mount("/", app=CSPMiddleware(StaticFiles(directory=config.site_dir, html=True))))
    else:
        routes.append(Route("/", CSPMiddleware(HTMLResponse(_INDEX))))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for _, endpoint in endpoints:
                await endpoint.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.endpoints = dict(endpoints)
    app.state.server = server
    return app

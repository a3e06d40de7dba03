"""The bundled demo MCP server: one transport-agnostic core behind HTTP, WebSocket and stdio.

:class:`Server` registers features, :class:`ServerSession` speaks the protocol
for one connection, and :func:`build_demo_server` builds the demo content.
The adapters (``server_demo.http``, ``server_demo.websocket``,
``server_demo.stdio``) and :func:`server_demo.app.create_app` put it on a wire.
"""

from __future__ import annotations

from .core import RequestContext, Server, ServerSession, serve_transport
from .demo import build_demo_server
from .errors import InputRequired, NoBackChannelError, RequestError

__all__ = [
    "InputRequired",
    "NoBackChannelError",
    "RequestContext",
    "RequestError",
    "Server",
    "ServerSession",
    "build_demo_server",
    "serve_transport",
]

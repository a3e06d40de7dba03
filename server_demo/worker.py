"""The demo server inside the browser: its core, served over ``MessagePort`` s from a Web Worker.

``site/server-worker.js`` boots Pyodide in a module worker, installs the ``server-demo`` wheel from
the site's own lock (no uvicorn, no Starlette: only the core runs here) and hands every
``{"type": "mcp-connect"}`` message's port to :func:`serve_port`. Each port is one connection — a
session of its own, as a WebSocket is on the HTTP server — with the same tools, resources, prompts,
progress, cancellation, logging, subscriptions and sampling/elicitation round trips in both protocol
eras, because it is the same :class:`~server_demo.core.Server`. The page's end is
:func:`pyodide_transport.open_worker_port`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyodide_transport.port import MessagePortTransport

from .core import Server, serve_transport
from .demo import build_demo_server

__all__ = ["serve_port", "server"]

logger = logging.getLogger("server_demo.worker")

_server: Server | None = None
_serving: set[asyncio.Task[None]] = set()


def server() -> Server:
    """The worker's one demo server (built on first use; every connection shares its resources)."""
    global _server
    if _server is None:
        _server = build_demo_server()
    return _server


def serve_port(port: Any) -> None:
    """Serve one connection on ``port`` (a ``MessagePort``) until either side closes it."""
    transport = MessagePortTransport(port)
    task = asyncio.ensure_future(serve_transport(server(), transport))
    _serving.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[None]) -> None:
    _serving.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("a worker connection failed", exc_info=task.exception())

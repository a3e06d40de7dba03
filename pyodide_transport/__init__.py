"""pyodide-transport: a Python MCP client that runs in the browser on Pyodide.

The session layer (:class:`Client`) runs over any :class:`Transport`:
:class:`FetchTransport` (Streamable HTTP over the browser ``fetch``),
:class:`WebSocketTransport` (browser ``WebSocket``, subprotocol ``mcp``) or
:class:`InMemoryTransport` (tests). :func:`connect` picks one from a URL.

Heavy modules (the MCP model set, browser adapters) load on first use, so
``import pyodide_transport`` stays cheap inside Pyodide.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConnectionClosedError,
    CORSError,
    HTTPStatusError,
    LegacyServerError,
    LocalProtocolError,
    MCPError,
    MessageTooLargeError,
    NetworkError,
    ProtocolError,
    RemoteProtocolError,
    RequestTimeoutError,
    SessionExpiredError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from .memory import InMemoryTransport
from .messages import TransportMessage
from .transport import Transport

if TYPE_CHECKING:
    from .client import Client
    from .connection import connect
    from .fetch import FetchTransport
    from .websocket import WebSocketTransport

__version__ = "0.1.0"

__all__ = [
    "CORSError",
    "Client",
    "ConnectionClosedError",
    "FetchTransport",
    "HTTPStatusError",
    "InMemoryTransport",
    "LegacyServerError",
    "LocalProtocolError",
    "MCPError",
    "MessageTooLargeError",
    "NetworkError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "SessionExpiredError",
    "Transport",
    "TransportError",
    "TransportMessage",
    "UnsupportedProtocolVersionError",
    "WebSocketTransport",
    "__version__",
    "connect",
]

_LAZY = {
    "Client": ".client",
    "connect": ".connection",
    "FetchTransport": ".fetch",
    "WebSocketTransport": ".websocket",
}


def __getattr__(name: str) -> Any:
    """Load the heavier public names on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

"""pyodide-transport: a Python MCP client that runs in the browser on Pyodide.

The session layer (:class:`Client`) runs over any :class:`Transport`:
:class:`FetchTransport` (Streamable HTTP over the browser ``fetch``),
:class:`WebSocketTransport` (browser ``WebSocket``, subprotocol ``mcp``) or
:class:`InMemoryTransport` (tests). :func:`connect` picks one from a URL.
:class:`MessagePortTransport` (:func:`open_worker_port`) talks to a server in a Web Worker.
:class:`OAuth` (``FetchTransport(url, auth=OAuth())``) signs in to protected servers.
:class:`LoggingTransport`, :class:`PolicyTransport`, :class:`CircuitBreakerTransport` and
:func:`bridge` (:mod:`pyodide_transport.middleware`) wrap any transport.

Heavy modules (the MCP model set, browser adapters) load on first use, so
``import pyodide_transport`` stays cheap inside Pyodide.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthorizationCancelledError,
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationRequiredError,
    AuthorizationResponseError,
    ChallengeNotExposedError,
    CircuitOpenError,
    ConnectionClosedError,
    CORSError,
    DiscoveryCORSError,
    DiscoveryError,
    EnvelopeError,
    HTTPStatusError,
    InsufficientScopeError,
    IssuerMismatchError,
    LegacyServerError,
    LocalProtocolError,
    MCPError,
    MessageTooLargeError,
    MetadataError,
    NetworkError,
    PolicyError,
    ProtocolError,
    RegistrationError,
    RemoteProtocolError,
    RequestTimeoutError,
    ResourceMismatchError,
    SessionExpiredError,
    TokenError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from .memory import InMemoryTransport
from .messages import TransportMessage
from .transport import Transport

if TYPE_CHECKING:
    from .client import Client
    from .connection import connect
    from .encrypted import EncryptedTransport
    from .fetch import FetchTransport
    from .middleware import (
        CircuitBreakerTransport,
        LoggingTransport,
        Policy,
        PolicyTransport,
        RateLimit,
        bridge,
    )
    from .oauth import OAuth
    from .port import MessagePortTransport, open_worker_port
    from .websocket import WebSocketTransport

__version__ = "0.1.0"

__all__ = [
    "AuthorizationCancelledError",
    "AuthorizationDeniedError",
    "AuthorizationError",
    "AuthorizationRequiredError",
    "AuthorizationResponseError",
    "CORSError",
    "ChallengeNotExposedError",
    "CircuitBreakerTransport",
    "CircuitOpenError",
    "Client",
    "ConnectionClosedError",
    "DiscoveryCORSError",
    "DiscoveryError",
    "EncryptedTransport",
    "EnvelopeError",
    "FetchTransport",
    "HTTPStatusError",
    "InMemoryTransport",
    "InsufficientScopeError",
    "IssuerMismatchError",
    "LegacyServerError",
    "LocalProtocolError",
    "LoggingTransport",
    "MCPError",
    "MessagePortTransport",
    "MessageTooLargeError",
    "MetadataError",
    "NetworkError",
    "OAuth",
    "Policy",
    "PolicyError",
    "PolicyTransport",
    "ProtocolError",
    "RateLimit",
    "RegistrationError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResourceMismatchError",
    "SessionExpiredError",
    "TokenError",
    "Transport",
    "TransportError",
    "TransportMessage",
    "UnsupportedProtocolVersionError",
    "WebSocketTransport",
    "__version__",
    "bridge",
    "connect",
    "install_scheduler",
    "open_worker_port",
]

_LAZY = {
    "Client": ".client",
    "connect": ".connection",
    "EncryptedTransport": ".encrypted",
    "FetchTransport": ".fetch",
    "OAuth": ".oauth",
    "WebSocketTransport": ".websocket",
    "MessagePortTransport": ".port",
    "open_worker_port": ".port",
    "LoggingTransport": ".middleware",
    "PolicyTransport": ".middleware",
    "Policy": ".middleware",
    "RateLimit": ".middleware",
    "CircuitBreakerTransport": ".middleware",
    "bridge": ".middleware",
}


def install_scheduler(enabled: bool = True) -> bool:
    """In Pyodide, run the event loop's ready callbacks in one JavaScript microtask instead of one task each.

    Every asyncio hop then costs microseconds instead of a trip through the browser's task queue
    (see ``pyodide_transport._browser.BatchScheduler``). The browser transports install it on
    first use; ``install_scheduler(False)`` before connecting keeps Pyodide's own scheduling.
    Outside Pyodide this does nothing and returns ``False``. Call it from a running event loop.
    """
    if sys.platform != "emscripten":
        return False
    from ._browser import install_scheduler as _install

    return _install(enabled) is not None


def __getattr__(name: str) -> Any:
    """Load the heavier public names on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

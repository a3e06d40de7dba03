"""The ``Transport`` protocol: how the session layer moves messages.

A transport moves whole JSON-RPC messages; it knows nothing of MCP methods
beyond what its wire format forces on it (HTTP headers, sessions). The session
layer (:class:`pyodide_transport.client.Client`, or the demo server's core)
sits on top of any object with this shape: the seeds' "write once, run
anywhere".

Below it, the protocols a *host* provides to the two network transports: an
:class:`HTTPClient` for :class:`~pyodide_transport.fetch.FetchTransport` and a
:data:`WebSocketConnector` for :class:`~pyodide_transport.websocket.WebSocketTransport`
(the browser's in :mod:`pyodide_transport._browser`, httpx and websockets in
:mod:`pyodide_transport.cpython`, doubles in :mod:`pyodide_transport.testing`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

from .errors import ConnectionClosedError
from .messages import TransportMessage

__all__ = [
    "HTTPClient",
    "HTTPResponse",
    "PushWebSocketConnection",
    "Transport",
    "WebSocketConnection",
    "WebSocketConnector",
]


@runtime_checkable
class Transport(Protocol):
    """A bidirectional, message-oriented connection to one MCP peer.

    ``transport_type`` names the wire ("memory", "streamable-http",
    "websocket", ...). ``receive`` returns messages in arrival order and raises
    :class:`~pyodide_transport.errors.ConnectionClosedError` once the
    connection is closed and drained. ``close`` is idempotent.
    """

    transport_type: str

    async def send(self, message: TransportMessage) -> None:
        """Send one message; raise a ``TransportError`` if it cannot be delivered."""
        ...

    async def receive(self) -> TransportMessage:
        """Wait for and return the next incoming message."""
        ...

    async def close(self) -> None:
        """Close the connection and release its resources."""
        ...

    def is_connected(self) -> bool:
        """Whether messages can currently be sent."""
        ...


@runtime_checkable
class HTTPResponse(Protocol):
    """A response whose status and headers arrived; the body is read with :meth:`chunks`."""

    @property
    def status(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names lower-cased."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """Yield body chunks as they arrive; raise ``NetworkError`` if the read breaks off."""
        ...

    async def aclose(self) -> None:
        """Stop reading and release the response (abort it if the body is still open)."""
        ...


@runtime_checkable
class HTTPClient(Protocol):
    """What :class:`FetchTransport` needs from an HTTP library.

    ``request`` returns once the status line and headers arrived and raises
    :class:`~pyodide_transport.errors.NetworkError` (or ``CORSError``) when no response came.
    Cancelling the awaiting task must abort the request.
    """

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> HTTPResponse:
        """Perform one request."""
        ...

    async def aclose(self) -> None:
        """Release the client."""
        ...


class WebSocketConnection(Protocol):
    """An open WebSocket as the transport uses it."""

    @property
    def subprotocol(self) -> str:
        """The subprotocol the server chose ("" for none)."""
        ...

    async def recv(self) -> str | bytes:
        """The next message; raise ``ConnectionClosedError`` (with ``code``/``reason``) once closed."""
        ...

    async def send(self, data: str) -> None:
        """Send one text frame; raise ``ConnectionClosedError`` if the socket is not open."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket; a pending ``recv`` then raises ``ConnectionClosedError``."""
        ...


class PushWebSocketConnection(WebSocketConnection, Protocol):
    """A connection that can hand frames to callbacks as they arrive (the browser's does).

    The transport then needs no reader task: one event-loop hop less per frame.
    """

    def listen(
        self, on_frame: Callable[[str | bytes], None], on_close: Callable[[ConnectionClosedError], None]
    ) -> None:
        """Hand every frame to ``on_frame`` and the close to ``on_close`` (once) from now on."""
        ...


WebSocketConnector: TypeAlias = Callable[[str, Sequence[str]], Awaitable[WebSocketConnection]]
"""Opens a socket: ``await connector(url, protocols)``; raises ``NetworkError`` when it cannot."""

"""The ``Transport`` protocol: how the session layer moves messages.

A transport moves whole JSON-RPC messages; it knows nothing of MCP methods
beyond what its wire format forces on it (HTTP headers, sessions). The session
layer (:class:`pyodide_transport.client.Client`, or the demo server's core)
sits on top of any object with this shape: the seeds' "write once, run
anywhere".
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .messages import TransportMessage

__all__ = ["Transport"]


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

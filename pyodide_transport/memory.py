"""An in-memory transport pair, for tests and for running a client and a server in one process."""

from __future__ import annotations

import asyncio

from .errors import ConnectionClosedError
from .messages import TransportMessage

__all__ = ["InMemoryTransport"]


class InMemoryTransport:
    """One end of a connected pair of in-memory transports.

    Messages are passed as model objects (no serialization), in order. Closing
    either end closes both: the peer's ``receive`` drains what was already
    sent, then raises :class:`ConnectionClosedError`.
    """

    transport_type = "memory"

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[TransportMessage | None] = asyncio.Queue()
        self._peer: InMemoryTransport | None = None
        self._closed = False

    @classmethod
    def create_pair(cls) -> tuple[InMemoryTransport, InMemoryTransport]:
        """Create two transports wired to each other (e.g. client end, server end)."""
        a, b = cls(), cls()
        a._peer, b._peer = b, a
        return a, b

    async def send(self, message: TransportMessage) -> None:
        """Deliver a message to the peer's inbox."""
        if self._closed or self._peer is None or self._peer._closed:
            raise ConnectionClosedError("in-memory transport is closed")
        self._peer._inbox.put_nowait(message)

    async def receive(self) -> TransportMessage:
        """Return the next message from the peer."""
        if self._closed and self._inbox.empty():
            raise ConnectionClosedError("in-memory transport is closed")
        item = await self._inbox.get()
        if item is None:  # the close marker
            self._inbox.put_nowait(None)  # keep later receive() calls failing too
            raise ConnectionClosedError("in-memory transport is closed")
        return item

    async def close(self) -> None:
        """Close both ends; pending and later ``receive`` calls raise ConnectionClosedError."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put_nowait(None)
        peer = self._peer
        if peer is not None and not peer._closed:
            peer._closed = True
            peer._inbox.put_nowait(None)

    def is_connected(self) -> bool:
        """Whether this end is open."""
        return not self._closed

"""In-memory plumbing: the transport pair, and the one-hop queue and futures the other transports use.

:class:`InMemoryTransport` connects a client and a server in one process (tests, demos).
:class:`Inbox` and :func:`new_future` are the package's internal waits: unlike ``asyncio.Queue`` and
``loop.create_future()`` they cost one event-loop hop per hand-over under Pyodide's webloop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Generic, TypeVar

from .errors import ConnectionClosedError
from .messages import TransportMessage

__all__ = ["InMemoryTransport", "Inbox", "new_future"]

T = TypeVar("T")


def new_future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
    """A plain future on ``loop``, for waits internal to this package.

    Not ``loop.create_future()``: Pyodide's webloop tracks each future it makes with a done
    callback, and every callback run is a JavaScript task of its own (~30-50 µs) per resolution.
    """
    return asyncio.Future(loop=loop)


class Inbox(Generic[T]):
    """A FIFO with an awaitable ``get``: an unbounded ``asyncio.Queue`` that wakes in one hop.

    Its waiters are :func:`new_future` futures, so a hand-over costs one event-loop hop in Pyodide.
    """

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()

    def empty(self) -> bool:
        """Whether no item is waiting."""
        return not self._items

    def put_nowait(self, item: T) -> None:
        """Append an item and wake the longest-waiting ``get``."""
        self._items.append(item)
        self._wake_next()

    def get_nowait(self) -> T:
        """Pop the oldest item; ``IndexError`` when empty."""
        return self._items.popleft()

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> T:
        """Wait for and pop the oldest item (cancelling a waiting ``get`` loses nothing)."""
        while not self._items:
            getter: asyncio.Future[None] = new_future(asyncio.get_running_loop())
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_next()  # we were woken but will not take the item: pass it on
                raise
        return self._items.popleft()


class InMemoryTransport:
    """One end of a connected pair of in-memory transports.

    Messages are passed as model objects (no serialization), in order. Closing
    either end closes both: the peer's ``receive`` drains what was already
    sent, then raises :class:`ConnectionClosedError`.
    """

    transport_type = "memory"

    def __init__(self) -> None:
        self._inbox: Inbox[TransportMessage | None] = Inbox()
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

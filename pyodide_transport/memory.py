"""In-memory plumbing: the transport pair, and the one-hop queue and futures the other transports use.

:class:`InMemoryTransport` connects a client and a server in one process (tests, demos).
:class:`Inbox`, :func:`new_future` and :class:`Watchdog` are the package's internal waits: unlike
``asyncio.Queue``, ``loop.create_future()`` and a timer per request they cost one event-loop hop per
hand-over under Pyodide's webloop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ConnectionClosedError
from .messages import TransportMessage

__all__ = ["InMemoryTransport", "Inbox", "Watchdog", "new_future"]

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


class Watchdog:
    """One timer for many deadlines: calls ``on_fire(loop)`` no later than the earliest time armed.

    One timer serves every request instead of one per request: in Pyodide each timer is a
    JavaScript task, which runs even after it was cancelled. ``on_fire`` re-arms for what is left.
    """

    __slots__ = ("_at", "_handle", "_on_fire")

    def __init__(self, on_fire: Callable[[asyncio.AbstractEventLoop], None]) -> None:
        self._on_fire = on_fire
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0

    def arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Make sure the timer fires no later than ``when`` (a ``loop.time()`` value)."""
        if self._handle is not None:
            if self._at <= when:
                return
            self._handle.cancel()
        self._at = when
        # call_later, not call_at: Pyodide's call_at raises when ``when`` has just passed
        self._handle = loop.call_later(max(0.0, when - loop.time()), self._fire, loop)

    def cancel(self) -> None:
        """Stop the timer (idempotent)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        self._on_fire(loop)


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

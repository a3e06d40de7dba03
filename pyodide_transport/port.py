"""``MessagePortTransport``: MCP over a browser ``MessagePort`` (or a ``Worker``, or anything that posts messages).

For a page talking to an MCP server in a Web Worker, and for the worker serving it: the class is
symmetric, both ends use it. The wire:

* a ``str`` message is one JSON-RPC message (or a batch), its JSON text: one ``postMessage`` per message;
* ``{"type": "mcp-port-close", "reason": str}`` says the peer closed. A ``MessagePort`` has no
  reliable close event, hence the explicit message; ``receive`` then raises
  :class:`~pyodide_transport.errors.ConnectionClosedError` carrying the reason.

Bad input is treated as :class:`~pyodide_transport.websocket.WebSocketTransport` treats a bad
frame: a message that is not JSON-RPC, is over ``max_message_size``
(:class:`~pyodide_transport.errors.MessageTooLargeError`), is neither a string nor a close message,
or could not be deserialized (a ``messageerror`` event) is raised from ``receive`` once, as a
:class:`~pyodide_transport.errors.RemoteProtocolError`; the port stays open and nothing after it is
lost. (``server_demo.serve_transport`` answers it with an Invalid Request error and serves on; a
client's session reports it and reads on.)

``owner`` is the ``Worker`` the port leads to: its ``error`` event (the worker failed) ends the
transport with a ``ConnectionClosedError`` naming the error. ``close`` never terminates it: a
worker may serve other ports.

The page side opens a port with :func:`open_worker_port`; the worker takes it from the
``mcp-connect`` message::

    # page                                            # worker
    transport = open_worker_port(worker)              def on_message(event):  # self's "message" event
    client = Client(transport)                            if event.data.type == "mcp-connect":
                                                              port = event.ports[0]
                                                              serve(MessagePortTransport(port))

This module is pure Python; the JavaScript lives in :mod:`pyodide_transport._browser`
(:class:`~pyodide_transport._browser.BrowserPort`, :class:`~pyodide_transport._browser.BrowserOwner`),
which wraps a JS object into the small :class:`PortEndpoint` / :class:`PortOwner` protocols below.
Any Python object with their shape works as well (:func:`memory_port_pair` for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

from .errors import (
    ConnectionClosedError,
    LocalProtocolError,
    MessageTooLargeError,
    RemoteProtocolError,
    TransportError,
)
from .memory import Inbox
from .messages import TransportMessage, decode_messages, encode_message

__all__ = [
    "CONNECT_TYPE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PORT_CLOSE_TYPE",
    "MemoryPort",
    "MessagePortTransport",
    "OwnerFailed",
    "PeerClosed",
    "PortEndpoint",
    "PortItem",
    "PortOwner",
    "Undeliverable",
    "memory_port_pair",
    "open_worker_port",
]

PORT_CLOSE_TYPE = "mcp-port-close"
"""The ``type`` of the message that says the peer closed its end."""

CONNECT_TYPE = "mcp-connect"
"""The ``type`` of the message :func:`open_worker_port` posts to the worker, with the port transferred."""

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
"""Largest message accepted or sent, in characters of JSON text."""


@dataclass(frozen=True)
class PeerClosed:
    """The peer posted ``{"type": "mcp-port-close", "reason": ...}``."""

    reason: str


@dataclass(frozen=True)
class Undeliverable:
    """A message that carries no JSON-RPC text: a ``messageerror``, or data neither a string nor a close."""

    detail: str


@dataclass(frozen=True)
class OwnerFailed:
    """The owning worker fired ``error`` (an endpoint may report it too, as an item)."""

    detail: str


PortItem: TypeAlias = str | PeerClosed | Undeliverable | OwnerFailed
"""What an endpoint hands the transport: a message's text, or what happened instead."""


@runtime_checkable
class PortEndpoint(Protocol):
    """One end of a message channel, as the transport uses it (the browser's is ``_browser.BrowserPort``)."""

    def listen(self, deliver: Callable[[PortItem], None]) -> None:
        """Hand every incoming item to ``deliver``, in order, from now on (items queued before first)."""
        ...

    def post(self, text: str) -> None:
        """Post one message's text; raise ``ConnectionClosedError`` if it cannot go."""
        ...

    def post_close(self, reason: str) -> None:
        """Post the close message with ``reason``."""
        ...

    def close(self) -> None:
        """Stop listening, release what the listeners hold, close the port (idempotent)."""
        ...


@runtime_checkable
class PortOwner(Protocol):
    """The worker behind a port, as the transport watches it (the browser's is ``_browser.BrowserOwner``)."""

    def watch(self, on_error: Callable[[str], None]) -> Callable[[], None]:
        """Call ``on_error(description)`` when the worker fails; returns the function that stops watching."""
        ...


class _Closed:
    """Marker in the inbox: ``receive`` has nothing more to give."""


_CLOSED = _Closed()


def _endpoint_for(port: Any) -> PortEndpoint:
    if isinstance(port, PortEndpoint):
        return port
    if sys.platform == "emscripten":
        from ._browser import BrowserPort

        return BrowserPort(port)
    raise TypeError(f"MessagePortTransport needs a JS MessagePort (in Pyodide) or a PortEndpoint, got {port!r}")


def _owner_for(owner: Any) -> PortOwner:
    if isinstance(owner, PortOwner):
        return owner
    if sys.platform == "emscripten":
        from ._browser import BrowserOwner

        return BrowserOwner(owner)
    raise TypeError(f"owner must be a JS Worker (in Pyodide) or a PortOwner, got {owner!r}")


class MessagePortTransport:
    """A :class:`~pyodide_transport.transport.Transport` over a ``MessagePort`` (see the module docstring).

    Listening starts at construction (a ``MessagePort`` queues what arrives before).

    Args:
        port: A JS ``MessagePort``/``Worker`` (Pyodide), or any :class:`PortEndpoint`.
        owner: The JS ``Worker`` the port leads to (or a :class:`PortOwner`): its ``error`` event ends
            the transport. Never terminated by :meth:`close`.
        max_message_size: Largest message accepted or sent, in characters of JSON text.
    """

    transport_type = "message-port"

    def __init__(self, port: Any, *, owner: Any = None, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size <= 0:
            raise ValueError("max_message_size must be > 0")
        self.max_message_size = max_message_size
        self._inbox: Inbox[TransportMessage | TransportError | _Closed] = Inbox()
        self._ended: ConnectionClosedError | None = None  # why nothing more can be sent or received
        self._released = False
        self._endpoint = _endpoint_for(port)
        self._unwatch: Callable[[], None] | None = None
        try:
            if owner is not None:
                self._unwatch = _owner_for(owner).watch(self._on_owner_error)
            self._endpoint.listen(self._on_item)
        except BaseException:
            self._release()
            raise

    def is_connected(self) -> bool:
        """Whether messages can still be sent (neither end closed, the worker did not fail)."""
        return self._ended is None

    # -- incoming ------------------------------------------------------------------------------------

    def _on_item(self, item: PortItem) -> None:
        if self._ended is not None:
            return  # after the end nothing counts: the peer's close already came, or ours went
        if isinstance(item, str):
            self._on_text(item)
        elif isinstance(item, PeerClosed):
            reason = item.reason
            self._end(
                ConnectionClosedError(f"the peer closed the MessagePort: {reason or 'no reason given'}", reason=reason)
            )
        elif isinstance(item, OwnerFailed):
            self._on_owner_error(item.detail)
        else:
            self._inbox.put_nowait(RemoteProtocolError(f"MessagePort message ignored: {item.detail}"))

    def _on_text(self, text: str) -> None:
        if len(text) > self.max_message_size:
            self._inbox.put_nowait(
                MessageTooLargeError(
                    f"MessagePort message of {len(text)} characters exceeds max_message_size={self.max_message_size}"
                )
            )
            return
        try:
            messages = decode_messages(text)
        except RemoteProtocolError as exc:
            self._inbox.put_nowait(exc)
            return
        for message in messages:
            self._inbox.put_nowait(message)

    def _on_owner_error(self, detail: str) -> None:
        if self._ended is not None:
            return
        text = detail or "an error event without a message (the worker script may have failed to load)"
        self._end(ConnectionClosedError(f"the worker failed: {text}", reason=text), tell_peer=f"worker error: {text}")

    def _end(self, error: ConnectionClosedError, *, tell_peer: str | None = None) -> None:
        """The connection is over: say why from now on, wake ``receive``, let go of the port."""
        self._ended = error
        if tell_peer is not None:
            with contextlib.suppress(TransportError):
                self._endpoint.post_close(tell_peer)
        self._release()
        self._inbox.put_nowait(_CLOSED)

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        unwatch, self._unwatch = self._unwatch, None
        try:
            if unwatch is not None:
                unwatch()
        finally:
            self._endpoint.close()

    def _closed_error(self, prefix: str = "") -> ConnectionClosedError:
        ended = self._ended or ConnectionClosedError("the MessagePort transport is closed")
        return ConnectionClosedError(f"{prefix}{ended}", code=ended.code, reason=ended.reason)

    async def receive(self) -> TransportMessage:
        """Return the next message from the peer, in order.

        Raises:
            ConnectionClosedError: Either end closed, or the worker failed (after what came before is read).
            RemoteProtocolError: A bad message arrived (``MessageTooLargeError`` when oversize); raised
                once, the next call goes on.
        """
        item = await self._inbox.get()
        if isinstance(item, _Closed):
            self._inbox.put_nowait(item)  # keep later calls failing too
            raise self._closed_error()
        if isinstance(item, TransportError):
            raise item
        return item

    # -- outgoing ------------------------------------------------------------------------------------

    async def send(self, message: TransportMessage) -> None:
        """Post one message: its JSON text, one ``postMessage``.

        Raises:
            ConnectionClosedError: The transport is closed (either end), or the worker failed.
            LocalProtocolError: The message is larger than ``max_message_size``.
        """
        if self._ended is not None:
            raise self._closed_error("cannot send: ")
        text = encode_message(message)
        if len(text) > self.max_message_size:
            raise LocalProtocolError(
                f"message of {len(text)} characters exceeds max_message_size={self.max_message_size}"
            )
        self._endpoint.post(text)

    async def close(self, *, reason: str = "closed") -> None:
        """Tell the peer (``reason``), stop listening, release the proxies and close the port. Idempotent.

        A pending ``receive`` wakes with ``ConnectionClosedError`` once what already arrived is read.
        """
        if self._ended is not None:
            self._release()
            return
        self._end(ConnectionClosedError("the MessagePort transport is closed"), tell_peer=reason)


def open_worker_port(worker: Any) -> MessagePortTransport:
    """Connect to the MCP server in ``worker`` (page side): a new ``MessageChannel``, one end to the worker.

    Posts ``{"type": "mcp-connect"}`` to the worker with the channel's ``port2`` transferred and
    returns the transport on ``port1``, with ``worker`` as its owner (its ``error`` ends the transport).

    Raises:
        LocalProtocolError: Not in Pyodide (there is no ``MessageChannel`` to open).
    """
    if sys.platform != "emscripten":
        raise LocalProtocolError("open_worker_port needs a JS Worker in Pyodide; in CPython use memory_port_pair()")
    from ._browser import connect_worker

    return MessagePortTransport(connect_worker(worker), owner=worker)


# -- in-memory endpoints (tests, and any in-process use) ------------------------------------------------


class MemoryPort:
    """One end of an in-process channel: a :class:`PortEndpoint` without JavaScript (see :func:`memory_port_pair`).

    Like a ``MessagePort``, it queues what arrives until :meth:`listen`, and delivers in a later
    event-loop turn (``call_soon``) when a loop runs, in order. :meth:`inject` hands any item over
    as if it arrived (a test's bad input, a ``messageerror``).

    Attributes:
        posted: How many messages this end posted (close messages included).
        closed: Whether :meth:`close` was called.
    """

    def __init__(self) -> None:
        self.peer: MemoryPort | None = None
        self.closed = False
        self.posted = 0
        self._deliver: Callable[[PortItem], None] | None = None
        self._queued: list[PortItem] = []

    def listen(self, deliver: Callable[[PortItem], None]) -> None:
        """Hand every item to ``deliver`` from now on, those queued before first."""
        queued, self._queued = self._queued, []
        self._deliver = deliver
        for item in queued:
            deliver(item)

    def inject(self, item: PortItem) -> None:
        """Deliver ``item`` to this end as if the peer had posted it."""
        if self.closed:
            return  # a closed MessagePort drops what comes
        if self._deliver is None:
            self._queued.append(item)
            return
        self._deliver(item)

    def _send(self, item: PortItem) -> None:
        self.posted += 1
        peer = self.peer
        if peer is None or self.closed:
            return  # a closed or disentangled MessagePort drops what is posted, silently
        try:
            asyncio.get_running_loop().call_soon(peer.inject, item)
        except RuntimeError:  # no running loop
            peer.inject(item)

    def post(self, text: str) -> None:
        """Post one message's text to the peer."""
        self._send(text)

    def post_close(self, reason: str) -> None:
        """Post the close message to the peer."""
        self._send(PeerClosed(reason))

    def close(self) -> None:
        """Stop delivering; what arrives later is dropped (idempotent)."""
        self.closed = True
        self._deliver = None
        self._queued.clear()


def memory_port_pair() -> tuple[MemoryPort, MemoryPort]:
    """Two entangled :class:`MemoryPort` ends, like a ``MessageChannel``'s ``port1`` and ``port2``."""
    a, b = MemoryPort(), MemoryPort()
    a.peer, b.peer = b, a
    return a, b

"""``WebSocketTransport``: MCP over a WebSocket (subprotocol ``mcp``), a thin shell over its sans-I/O core.

One JSON-RPC message per text frame. Every decision (states, close codes, reconnects, keep-alive,
per-socket sessions, bad frames) is :class:`~pyodide_transport.websocket_core.WebSocketCore`'s; read
its module docstring for the policy. This shell opens sockets through a *connector*
(:data:`WebSocketConnector`): under Pyodide the browser's ``WebSocket``
(:func:`pyodide_transport._browser.open_websocket`), in CPython the ``websockets`` library
(:mod:`pyodide_transport.cpython`, the ``cpython`` extra), or anything with the same shape.

The seeds' ``WebSocketConfig`` fields are all honoured: ``auto_reconnect``, ``reconnect_delay``,
``max_reconnect_delay``, ``max_reconnect_attempts``, ``ping_interval`` and ``request_timeout``
(how long ``send`` waits for a reconnect, and a keep-alive ping for its answer). Request timeouts
themselves belong to the session layer (:class:`~pyodide_transport.client.Client`), the one owner
of the request lifecycle; :func:`~pyodide_transport.connect` passes ``request_timeout`` to both.

Failures are typed: a drop fails the requests in flight at once with the drop's
:class:`~pyodide_transport.errors.ConnectionClosedError` (close code and reason included, its
``request_ids`` naming them), raised from ``receive``; when the connection is lost for good,
``receive`` raises why, with no ``request_ids``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import Sequence
from typing import Any

from .backoff import BackoffPolicy
from .errors import ConnectionClosedError, TransportError
from .memory import Inbox
from .messages import TransportMessage
from .transport import PushWebSocketConnection, WebSocketConnection, WebSocketConnector
from .websocket_core import (
    CLOSE_CODES,
    DEFAULT_MAX_MESSAGE_SIZE,
    PERMANENT_CLOSE_CODES,
    CloseSocket,
    Deliver,
    Event,
    Reconnect,
    Report,
    State,
    WebSocketCore,
    Write,
    describe_close,
)

__all__ = [
    "CLOSE_CODES",
    "PERMANENT_CLOSE_CODES",
    "WebSocketConnection",
    "WebSocketConnector",
    "WebSocketTransport",
    "describe_close",
]

logger = logging.getLogger("pyodide_transport.websocket")


def _default_connector() -> WebSocketConnector:
    if sys.platform == "emscripten":
        from ._browser import open_websocket

        return open_websocket
    from .cpython import default_connector  # the cpython extra; says how to install it when missing

    return default_connector()


class _Closed:
    """Marker in the inbox: ``receive`` has nothing more to give."""


_CLOSED = _Closed()


class WebSocketTransport:
    """MCP client transport over a WebSocket (see the module docstring).

    Args:
        url: ``ws://`` or ``wss://`` URL of the server.
        protocols: Subprotocols offered (the server picks one).
        auto_reconnect: Reconnect after an unexpected close.
        reconnect_delay: First reconnect delay in seconds (grows exponentially, with jitter).
        max_reconnect_delay: Upper bound of the reconnect delay.
        max_reconnect_attempts: Attempts per drop before giving up (``None``: forever).
        ping_interval: Seconds between keep-alive ``ping`` requests (``None`` or 0: none).
        request_timeout: Seconds ``send`` waits for a reconnect, and a keep-alive ping for its answer.
        connector: Opens sockets; default: the browser ``WebSocket`` under Pyodide, else ``websockets``.
        max_message_size: Largest frame accepted, in bytes of text.

    Attributes:
        state: ``"new"``, ``"connecting"``, ``"open"``, ``"reconnecting"``, ``"lost"`` or ``"closed"``.
    """

    transport_type = "websocket"

    def __init__(
        self,
        url: str,
        *,
        protocols: Sequence[str] = ("mcp",),
        auto_reconnect: bool = True,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 30.0,
        max_reconnect_attempts: int | None = 5,
        ping_interval: float | None = 30.0,
        request_timeout: float | None = 30.0,
        connector: WebSocketConnector | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if ping_interval is not None and ping_interval < 0:
            raise ValueError("ping_interval must be >= 0 or None")
        if request_timeout is not None and request_timeout <= 0:
            raise ValueError("request_timeout must be > 0 or None")
        self.url = url
        self.protocols = tuple(protocols)
        self.request_timeout = request_timeout
        policy = BackoffPolicy(
            initial_delay=reconnect_delay, max_delay=max_reconnect_delay, max_attempts=max_reconnect_attempts
        )
        self._core = WebSocketCore(
            url,
            auto_reconnect=auto_reconnect,
            backoff=policy,
            ping_interval=ping_interval,
            ping_timeout=request_timeout or ping_interval or 30.0,
            max_message_size=max_message_size,
        )
        self._connector = connector or _default_connector()
        self._conn: WebSocketConnection | None = None
        self._inbox: Inbox[TransportMessage | TransportError | _Closed] = Inbox()
        self._settled = asyncio.Event()  # set while not connecting or reconnecting
        self._opening: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def state(self) -> State:
        """The connection state (see :data:`~pyodide_transport.websocket_core.TRANSITIONS`)."""
        return self._core.state

    @property
    def reconnects(self) -> int:
        """How many times a dropped connection was re-established."""
        return self._core.reconnects

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose on the current socket, or ``None`` when not open."""
        return self._conn.subprotocol if self._conn is not None else None

    def is_connected(self) -> bool:
        """Whether the socket is open."""
        return self._core.state == "open"

    # -- connecting ----------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket (``send`` does this on first use). Idempotent.

        Raises:
            NetworkError: The socket could not be opened.
            ConnectionClosedError: The transport is closed or the connection was lost for good.
        """
        core = self._core
        if core.state in ("open", "reconnecting"):
            return
        if core.state in ("closed", "lost"):
            raise core.not_open()
        if self._opening is None:
            core.connect()
            self._settled.clear()
            self._opening = asyncio.ensure_future(self._open_first())
        await asyncio.shield(self._opening)

    async def _open_first(self) -> None:
        try:
            conn = await self._connector(self.url, self.protocols)
        except BaseException as exc:
            self._opening = None
            if isinstance(exc, TransportError):
                self._core.open_failed(exc)
            elif self._core.state == "connecting":
                self._core.open_failed(ConnectionClosedError("opening was interrupted"))
            self._settled.set()
            raise
        if self._core.state == "closed":
            await conn.close(1000, "transport closed")
            raise ConnectionClosedError("the transport is closed")
        self._attach(conn)

    def _attach(self, conn: WebSocketConnection) -> None:
        loop = asyncio.get_running_loop()
        self._conn = conn
        self._core.opened(loop.time())
        self._settled.set()
        if hasattr(conn, "listen"):
            push: PushWebSocketConnection = conn  # type: ignore[assignment]
            push.listen(functools.partial(self._on_frame, conn), functools.partial(self._on_close, conn))
        else:
            self._spawn(self._read(conn))
        if self._core.next_keepalive is not None:
            self._spawn(self._keepalive(conn))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (exc := t.exception()) is not None:
                logger.error("WebSocketTransport task failed: %r", exc)

        task.add_done_callback(done)

    # -- sending -------------------------------------------------------------------------------------

    async def send(self, message: TransportMessage) -> None:
        """Send one message (opening the socket first if needed).

        Raises:
            SessionExpiredError: The socket was re-opened; initialize again, then re-send.
            ConnectionClosedError: The transport is closed, or the connection is lost.
            LocalProtocolError: The message is larger than ``max_message_size``.
            NetworkError: The first connection could not be opened.
        """
        core = self._core
        if core.state != "open":
            await self._ready()
        text = core.send(message)
        conn = self._conn
        assert conn is not None
        try:
            await conn.send(text)
        except ConnectionClosedError as exc:
            core.unsent(message)
            raise ConnectionClosedError(f"could not send: {exc}", code=exc.code, reason=exc.reason) from None

    async def _ready(self) -> None:
        """Wait until the socket is open (at most ``request_timeout`` for a reconnect)."""
        if self._core.state in ("new", "connecting"):
            await self.connect()
        if self._core.state == "reconnecting":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.request_timeout):
                    await self._settled.wait()
        if self._core.state == "reconnecting":
            raise ConnectionClosedError(f"still reconnecting to {self.url} after {self.request_timeout} s")

    # -- receiving -----------------------------------------------------------------------------------

    async def _read(self, conn: WebSocketConnection) -> None:
        while True:
            try:
                data = await conn.recv()
            except ConnectionClosedError as exc:
                self._on_close(conn, exc)
                return
            self._on_frame(conn, data)

    def _on_frame(self, conn: WebSocketConnection, data: str | bytes) -> None:
        if conn is self._conn:
            self._act(self._core.receive_frame(data, asyncio.get_running_loop().time()))

    def _on_close(self, conn: WebSocketConnection, exc: ConnectionClosedError) -> None:
        if conn is self._conn:
            self._conn = None
            self._act(self._core.dropped(exc.code, exc.reason))

    def _act(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Deliver):
                self._inbox.put_nowait(event.message)
            elif isinstance(event, Report):
                self._inbox.put_nowait(event.error)
                if isinstance(event.error, ConnectionClosedError) and not event.error.request_ids:
                    self._inbox.put_nowait(_CLOSED)  # lost for good: every later receive() fails
                    self._settled.set()
            elif isinstance(event, Reconnect):
                logger.info("WebSocket %s dropped; reconnecting in %.2f s", self.url, event.delay)
                self._settled.clear()
                self._spawn(self._reconnect(event.delay))

    async def receive(self) -> TransportMessage:
        """Return the next message from the server.

        Raises:
            ConnectionClosedError: Requests were lost with a dropped socket (``request_ids``), or
                the transport is closed or the connection lost for good (none).
            RemoteProtocolError: A bad frame arrived (raised once; the next call goes on).
        """
        item = await self._inbox.get()
        if isinstance(item, _Closed):
            self._inbox.put_nowait(item)
            raise self._core.not_open()
        if isinstance(item, TransportError):
            raise item
        return item

    # -- keep-alive and reconnecting -----------------------------------------------------------------

    async def _keepalive(self, conn: WebSocketConnection) -> None:
        loop = asyncio.get_running_loop()
        while conn is self._conn and (due := self._core.next_keepalive) is not None:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if conn is not self._conn:
                return
            for event in self._core.keepalive(loop.time()):
                try:
                    if isinstance(event, Write):
                        await conn.send(event.text)
                    elif isinstance(event, CloseSocket):
                        logger.info("keep-alive ping got no answer; closing %s", self.url)
                        await conn.close(event.code, event.reason)  # the reader sees the drop
                        return
                except ConnectionClosedError:
                    return  # the reader sees the close

    async def _reconnect(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            if self._core.state != "reconnecting":
                return
            try:
                conn = await self._connector(self.url, self.protocols)
            except TransportError as exc:
                events = self._core.open_failed(exc)
                again = [e.delay for e in events if isinstance(e, Reconnect)]
                self._act([e for e in events if not isinstance(e, Reconnect)])
                if not again:
                    return
                delay = again[0]
                continue
            if self._core.state != "reconnecting":
                await conn.close(1000, "transport closed")
                return
            self._attach(conn)
            return

    # -- closing -------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the socket, stop every background task and fail what is in flight. Idempotent."""
        if self._core.state == "closed":
            return
        self._act(self._core.close())
        self._settled.set()
        conn, self._conn = self._conn, None
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        if self._opening is not None:
            self._opening.cancel()
        for task in tasks:
            task.cancel()
        if conn is not None:
            with contextlib.suppress(TransportError):
                await conn.close(1000, "client closed")
        if tasks:
            await asyncio.wait(tasks)
        self._inbox.put_nowait(_CLOSED)

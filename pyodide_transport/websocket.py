"""``WebSocketTransport``: MCP over a browser ``WebSocket`` (subprotocol ``mcp``), a thin adapter.

One JSON-RPC message per text frame. The socket itself comes from a
*connector* (:data:`WebSocketConnector`): under Pyodide the browser's
``WebSocket`` (:func:`pyodide_transport._browser.open_websocket`); in CPython
anything with the same shape (the tests use the ``websockets`` library).

Every field of the seeds' ``WebSocketConfig`` is honoured:

* ``auto_reconnect`` / ``reconnect_delay`` / ``max_reconnect_delay`` /
  ``max_reconnect_attempts``: after an unexpected close the transport
  reconnects with exponential backoff and full jitter
  (:mod:`pyodide_transport.backoff`). Close codes that say a retry cannot help
  (1002, 1003, 1007, 1008, 1009, 1010, 1015) end the connection instead. When
  the attempts are used up, ``receive`` raises
  :class:`~pyodide_transport.errors.ConnectionClosedError` (the Client then
  counts the connection as lost). A new socket means a new server-side
  session: if an ``initialize`` was ever sent, every ``send`` after a
  reconnect raises :class:`~pyodide_transport.errors.SessionExpiredError`
  until a new ``initialize`` goes out, so the Client re-initializes and
  re-sends (its session expiry policy). ``send`` during a reconnect waits for
  it (at most ``request_timeout``).
* ``ping_interval``: browsers cannot send ping frames, so the transport sends
  an MCP ``ping`` request of its own (string id ``pyodide-transport-ping-N``)
  every ``ping_interval`` seconds and swallows the answer (an error answer
  proves liveness too). No answer within ``request_timeout`` closes the
  socket with code 4000, which reconnects like any drop.
* ``request_timeout``: a request without a response within that time (a
  progress notification for it restarts the clock) fails with a synthetic
  JSON-RPC error ``REQUEST_TIMEOUT`` (the Client raises
  :class:`~pyodide_transport.errors.RequestTimeoutError`), and the server gets
  ``notifications/cancelled``; a late response is dropped.
  ``subscriptions/listen`` is exempt (it is open-ended by design).
* On a drop every request in flight fails at once with a synthetic JSON-RPC
  error ``CONNECTION_CLOSED`` (the Client raises ``ConnectionClosedError``);
  nothing hangs.

Bad frames: a binary frame, a frame over ``max_message_size`` or text that is
not a JSON-RPC message is raised from ``receive`` once, as a
:class:`~pyodide_transport.errors.RemoteProtocolError`; the connection stays
open and the next ``receive`` returns the next good message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

from mcp_types.jsonrpc import CONNECTION_CLOSED, REQUEST_TIMEOUT

from .backoff import BackoffPolicy
from .errors import (
    ConnectionClosedError,
    LocalProtocolError,
    MessageTooLargeError,
    RemoteProtocolError,
    SessionExpiredError,
    TransportError,
)
from .memory import Inbox, Watchdog
from .messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    decode_messages,
    encode_message,
    error_response,
    make_notification,
    make_request,
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

CLOSE_CODES: dict[int, str] = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "abnormal closure (lost without a close frame)",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "missing extension",
    1011: "internal server error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
    4000: "keep-alive ping timed out",
}
"""What the WebSocket close codes mean (RFC 6455 section 7.4, plus our own 4000)."""

PERMANENT_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009, 1010, 1015})
"""Close codes after which reconnecting cannot help: the transport gives up at once."""

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
_PING_PREFIX = "pyodide-transport-ping-"
_NO_TIMEOUT_METHODS = frozenset({"subscriptions/listen"})


def describe_close(code: int | None, reason: str = "") -> str:
    """A readable description of a close code and reason."""
    if code is None:
        return "closed"
    text = f"code {code}"
    meaning = CLOSE_CODES.get(code) or ("application-defined" if code >= 3000 else None)
    if meaning:
        text = f"{text}, {meaning}"
    if reason:
        text = f"{text}: {reason}"
    if code == 1008:
        text += " (the server refused this connection, e.g. its Origin)"
    return text


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


WebSocketConnector: TypeAlias = Callable[[str, Sequence[str]], Awaitable[WebSocketConnection]]
"""Opens a socket: ``await connector(url, protocols)``; raises ``NetworkError`` when it cannot."""


def _default_connector() -> WebSocketConnector:
    if sys.platform == "emscripten":
        from ._browser import open_websocket

        return open_websocket
    raise LocalProtocolError(
        "WebSocketTransport needs the browser WebSocket (Pyodide); outside Pyodide pass connector=..."
    )


class _Closed:
    """Marker in the inbox: the transport is closed."""


_CLOSED = _Closed()


@dataclass(slots=True)
class _Flight:
    """A request sent and not yet answered."""

    method: str
    due: float | None  # loop time it times out (``None``: never)
    token: RequestId | None


State: TypeAlias = Literal["new", "connecting", "open", "reconnecting", "lost", "closed"]


class WebSocketTransport:
    """MCP client transport over a WebSocket (see the module docstring for every behaviour).

    Args:
        url: ``ws://`` or ``wss://`` URL of the server.
        protocols: Subprotocols offered (the server picks one).
        auto_reconnect: Reconnect after an unexpected close.
        reconnect_delay: First reconnect delay in seconds (grows exponentially, with jitter).
        max_reconnect_delay: Upper bound of the reconnect delay.
        max_reconnect_attempts: Attempts per drop before giving up (``None``: forever).
        ping_interval: Seconds between keep-alive ``ping`` requests (``None`` or 0: none).
        request_timeout: Seconds a request may wait for its response (``None``: forever).
        connector: Opens sockets; default: the browser ``WebSocket`` (Pyodide only).
        max_message_size: Largest frame accepted, in bytes of text.

    Attributes:
        reconnects: How many times a dropped connection was re-established.
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
        self.auto_reconnect = auto_reconnect
        self.policy = BackoffPolicy(
            initial_delay=reconnect_delay, max_delay=max_reconnect_delay, max_attempts=max_reconnect_attempts
        )
        self.ping_interval = ping_interval or None
        self.request_timeout = request_timeout
        self.max_message_size = max_message_size
        self._connector = connector or _default_connector()
        self.state: State = "new"
        self.reconnects = 0
        self._conn: WebSocketConnection | None = None
        self._inbox: Inbox[TransportMessage | TransportError | _Closed] = Inbox()
        self._settled: asyncio.Event | None = None  # set while the state is not "connecting"/"reconnecting"
        self._opening: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._flights: dict[RequestId, _Flight] = {}
        self._watchdog = Watchdog(self._on_watchdog)  # one timer for every flight's timeout
        self._progress: dict[RequestId, RequestId] = {}  # progress token -> request id
        self._pings: dict[str, asyncio.Future[None]] = {}
        self._ping_count = 0
        self._timed_out: deque[RequestId] = deque(maxlen=256)
        self._lost_error: ConnectionClosedError | None = None
        self._handshake = False  # an initialize was sent: sessions are per socket
        self._needs_handshake = False

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose on the current socket, or ``None`` when not open."""
        return self._conn.subprotocol if self._conn is not None else None

    def is_connected(self) -> bool:
        """Whether the socket is open."""
        return self.state == "open"

    # -- connecting ----------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket (``send`` does this on first use). Idempotent.

        Raises:
            NetworkError: The socket could not be opened.
            ConnectionClosedError: The transport is closed or the connection was lost for good.
        """
        if self.state in ("open", "reconnecting"):
            return
        if self.state == "closed":
            raise ConnectionClosedError("the transport is closed")
        if self.state == "lost":
            assert self._lost_error is not None
            raise self._lost_error
        if self._opening is None:
            self.state = "connecting"
            self._opening = asyncio.ensure_future(self._open_first())
        await asyncio.shield(self._opening)

    async def _open_first(self) -> None:
        try:
            conn = await self._connector(self.url, self.protocols)
        except BaseException:
            self._opening = None
            if self.state == "connecting":
                self.state = "new"
            raise
        if self.state == "closed":
            await conn.close(1000, "transport closed")
            raise ConnectionClosedError("the transport is closed")
        self._attach(conn)

    def _attach(self, conn: WebSocketConnection) -> None:
        self._conn = conn
        self.state = "open"
        self._settle()
        self._reader = self._spawn(self._read(conn))
        if self.ping_interval:
            self._pinger = self._spawn(self._keepalive(conn, self.ping_interval))

    def _settle(self) -> None:
        if self._settled is None:
            self._settled = asyncio.Event()
        self._settled.set()

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (exc := t.exception()) is not None:
                logger.error("WebSocketTransport task failed: %r", exc)

        task.add_done_callback(done)
        return task

    # -- sending -------------------------------------------------------------------------------------

    async def send(self, message: TransportMessage) -> None:
        """Send one message (opening the socket first if needed).

        Raises:
            SessionExpiredError: The socket was re-opened; initialize again, then re-send.
            ConnectionClosedError: The transport is closed, or the connection is lost.
            LocalProtocolError: The message is larger than ``max_message_size``.
            NetworkError: The first connection could not be opened.
        """
        await self._ready()
        conn = self._conn
        assert conn is not None
        is_initialize = isinstance(message, JSONRPCRequest) and message.method == "initialize"
        if self._needs_handshake and not is_initialize:
            raise SessionExpiredError("the WebSocket was re-opened and the server has a new session; initialize again")
        text = encode_message(message)
        if len(text) > self.max_message_size:
            raise LocalProtocolError(f"message of {len(text)} bytes exceeds max_message_size={self.max_message_size}")
        if isinstance(message, JSONRPCRequest):
            self._track(message)
        try:
            await conn.send(text)
        except ConnectionClosedError as exc:
            if isinstance(message, JSONRPCRequest):
                self._untrack(message.id)
            raise ConnectionClosedError(f"could not send: {exc}", code=exc.code, reason=exc.reason) from None
        if is_initialize:
            self._handshake = True
            self._needs_handshake = False

    async def _ready(self) -> None:
        """Wait until the socket is open, or raise why it will not be."""
        if self.state in ("new", "connecting"):
            await self.connect()
        if self.state == "reconnecting":
            assert self._settled is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.request_timeout):
                    await self._settled.wait()
        if self.state == "closed":
            raise ConnectionClosedError("the transport is closed")
        if self.state == "lost":
            assert self._lost_error is not None
            raise ConnectionClosedError(str(self._lost_error), code=self._lost_error.code)
        if self.state != "open":
            raise ConnectionClosedError(f"still reconnecting to {self.url} after {self.request_timeout} s")

    def _track(self, request: JSONRPCRequest) -> None:
        due = None
        if self.request_timeout is not None and request.method not in _NO_TIMEOUT_METHODS:
            loop = asyncio.get_running_loop()
            due = loop.time() + self.request_timeout
            self._watchdog.arm(loop, due)
        meta = (request.params or {}).get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        token = token if isinstance(token, int | str) else None
        self._flights[request.id] = _Flight(request.method, due, token)
        if token is not None:
            self._progress[token] = request.id

    def _untrack(self, request_id: RequestId) -> _Flight | None:
        flight = self._flights.pop(request_id, None)
        if flight is not None and flight.token is not None:
            self._progress.pop(flight.token, None)
        return flight

    def _restart_timer(self, request_id: RequestId) -> None:
        flight = self._flights.get(request_id)
        if flight is not None and flight.due is not None and self.request_timeout is not None:
            flight.due = asyncio.get_running_loop().time() + self.request_timeout  # the watchdog re-arms for it

    def _on_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time out every flight that is due; re-arm for the next one."""
        now = loop.time()
        earliest: float | None = None
        for request_id, flight in list(self._flights.items()):
            if flight.due is None:
                continue
            if flight.due <= now:
                self._on_timeout(request_id)
            else:
                earliest = flight.due if earliest is None else min(earliest, flight.due)
        if earliest is not None:
            self._watchdog.arm(loop, earliest)

    def _on_timeout(self, request_id: RequestId) -> None:
        flight = self._untrack(request_id)
        if flight is None:
            return
        self._timed_out.append(request_id)
        text = f"{flight.method} (id {request_id!r}): no response within {self.request_timeout} s"
        self._inbox.put_nowait(error_response(request_id, REQUEST_TIMEOUT, text))
        self._spawn(self._send_cancel(request_id))

    async def _send_cancel(self, request_id: RequestId) -> None:
        conn = self._conn
        if conn is None or self.state != "open":
            return
        note = make_notification("notifications/cancelled", {"requestId": request_id, "reason": "request timed out"})
        with contextlib.suppress(TransportError):
            await conn.send(encode_message(note))

    # -- receiving -----------------------------------------------------------------------------------

    async def _read(self, conn: WebSocketConnection) -> None:
        while True:
            try:
                data = await conn.recv()
            except ConnectionClosedError as exc:
                self._on_drop(conn, exc)
                return
            if isinstance(data, bytes):
                self._inbox.put_nowait(
                    RemoteProtocolError(f"binary frame of {len(data)} bytes ignored: MCP uses text frames")
                )
                continue
            if len(data) > self.max_message_size:
                self._inbox.put_nowait(
                    MessageTooLargeError(f"frame of {len(data)} bytes exceeds max_message_size={self.max_message_size}")
                )
                continue
            try:
                messages = decode_messages(data)
            except RemoteProtocolError as exc:
                self._inbox.put_nowait(exc)
                continue
            for message in messages:
                self._incoming(message)

    def _incoming(self, message: TransportMessage) -> None:
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            request_id = message.id
            if isinstance(request_id, str) and request_id in self._pings:
                waiter = self._pings.pop(request_id)
                if not waiter.done():
                    waiter.set_result(None)
                return
            if self._untrack(request_id) is None and request_id in self._timed_out:
                logger.debug("late response for timed-out request %r dropped", request_id)
                return
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/progress":
            token = (message.params or {}).get("progressToken")
            if isinstance(token, int | str) and token in self._progress:
                self._restart_timer(self._progress[token])
        self._inbox.put_nowait(message)

    async def receive(self) -> TransportMessage:
        """Return the next message from the server.

        Raises:
            ConnectionClosedError: The transport is closed, or the connection is lost for good.
            RemoteProtocolError: A bad frame arrived (raised once; the next call goes on).
        """
        item = await self._inbox.get()
        if isinstance(item, _Closed):
            self._inbox.put_nowait(item)
            if self._lost_error is not None:
                raise self._lost_error
            raise ConnectionClosedError("the transport is closed")
        if isinstance(item, TransportError):
            raise item
        return item

    # -- keep-alive ----------------------------------------------------------------------------------

    async def _keepalive(self, conn: WebSocketConnection, interval: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            if conn is not self._conn:
                return
            self._ping_count += 1
            ping_id = f"{_PING_PREFIX}{self._ping_count}"
            waiter: asyncio.Future[None] = loop.create_future()
            self._pings[ping_id] = waiter
            try:
                await conn.send(encode_message(make_request(ping_id, "ping")))
                async with asyncio.timeout(self.request_timeout or interval):
                    await waiter
            except ConnectionClosedError:
                return  # the reader sees the close
            except TimeoutError:
                logger.info("keep-alive ping got no answer; closing %s", self.url)
                self._pings.pop(ping_id, None)
                await conn.close(4000, "keep-alive ping timed out")
                return

    # -- drops and reconnecting ----------------------------------------------------------------------

    def _on_drop(self, conn: WebSocketConnection, exc: ConnectionClosedError) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        for waiter in self._pings.values():
            waiter.cancel()
        self._pings.clear()
        why = describe_close(exc.code, exc.reason)
        self._fail_flights(f"the WebSocket closed ({why}) before the response")
        if self.state == "closed":
            return
        error = ConnectionClosedError(f"WebSocket {self.url} closed: {why}", code=exc.code, reason=exc.reason)
        if self.auto_reconnect and exc.code not in PERMANENT_CLOSE_CODES:
            logger.info("WebSocket dropped (%s); reconnecting", why)
            self.state = "reconnecting"
            if self._settled is not None:
                self._settled.clear()
            self._spawn(self._reconnect(error))
        else:
            self._lose(error)

    def _fail_flights(self, text: str) -> None:
        for request_id in list(self._flights):
            self._untrack(request_id)
            self._inbox.put_nowait(error_response(request_id, CONNECTION_CLOSED, f"{text} (request {request_id!r})"))

    def _lose(self, error: ConnectionClosedError) -> None:
        self.state = "lost"
        self._lost_error = error
        self._settle()
        self._inbox.put_nowait(_CLOSED)

    async def _reconnect(self, cause: ConnectionClosedError) -> None:
        schedule = self.policy.schedule()
        last: Exception = cause
        while self.state == "reconnecting":
            delay = schedule.next_delay()
            if delay is None:
                self._lose(
                    ConnectionClosedError(
                        f"{cause}; gave up after {schedule.attempts} reconnect attempts (last: {last})",
                        code=cause.code,
                        reason=cause.reason,
                    )
                )
                return
            await asyncio.sleep(delay)
            try:
                conn = await self._connector(self.url, self.protocols)
            except TransportError as exc:
                last = exc
                continue
            if self.state != "reconnecting":
                await conn.close(1000, "transport closed")
                return
            self.reconnects += 1
            self._needs_handshake = self._handshake
            self._attach(conn)

    # -- closing -------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the socket, stop every background task and fail what is in flight. Idempotent."""
        if self.state == "closed":
            return
        self.state = "closed"
        self._settle()
        self._watchdog.cancel()
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
        for waiter in self._pings.values():
            waiter.cancel()
        self._pings.clear()
        self._fail_flights("the transport was closed before the response")
        self._inbox.put_nowait(_CLOSED)

"""The WebSocket client transport, sans-I/O: connection states, close codes, keep-alive and reconnects.

No sockets, no asyncio, no clock of its own. :class:`~pyodide_transport.websocket.WebSocketTransport`
opens sockets, moves frames and sleeps; this core decides. Verbs (``now``: seconds on any
monotonic clock)::

    connect()                 -> None       first open requested (new -> connecting)
    opened(now)               -> None       a socket is open (connecting | reconnecting -> open)
    open_failed(error)        -> [Event]    the first open failed (back to new), or a reconnect attempt did
    send(message)             -> str        the text frame to write (or raises why it cannot go)
    receive_frame(data, now)  -> [Event]    a frame arrived
    dropped(code, reason)     -> [Event]    the socket closed under us
    keepalive(now)            -> [Event]    time for a ping, or the last one went unanswered
    close()                   -> [Event]    the user closed the transport

Events: :class:`Deliver` (hand a message to ``receive``), :class:`Report` (raise an error from
``receive``, once), :class:`Reconnect` (wait, then open a new socket), :class:`Write` (send a
frame) and :class:`CloseSocket`. States live in :data:`TRANSITIONS` and nowhere else.

Policy:

* **Close codes.** A close with a code in :data:`PERMANENT_CLOSE_CODES` (protocol error, policy
  violation, message too big, ...) ends the connection: retrying cannot help. Any other drop
  reconnects when ``auto_reconnect`` is on, with exponential backoff and full jitter
  (:mod:`pyodide_transport.backoff`); when the attempts are used up the connection is lost.
* **Requests on a dropped socket** fail at once: the drop's :class:`ConnectionClosedError` (with
  its close code and reason) is reported with ``request_ids`` naming them.
* **Sessions are per socket.** Once an ``initialize`` was sent, a new socket means a new
  server-side session: until the next ``initialize``, ``send`` raises :class:`SessionExpiredError`
  so the session layer re-initializes and re-sends (its expiry policy).
* **Keep-alive.** Browsers cannot send ping frames, so every ``ping_interval`` the core writes an
  MCP ``ping`` request of its own (string id ``pyodide-transport-ping-N``) and swallows its answer
  (an error answer proves liveness too). No answer within ``ping_timeout``: close with 4000,
  which reconnects like any drop.
* **Bad frames** (binary, over ``max_message_size``, not JSON-RPC) are reported once; the
  connection stays open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from .backoff import BackoffPolicy
from .errors import (
    ConnectionClosedError,
    LocalProtocolError,
    MessageTooLargeError,
    RemoteProtocolError,
    SessionExpiredError,
    TransportError,
)
from .messages import (
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    decode_messages,
    encode_message,
    make_request,
)
from .wire import DEFAULT_MAX_MESSAGE_SIZE

__all__ = [
    "CLOSE_CODES",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PERMANENT_CLOSE_CODES",
    "TRANSITIONS",
    "CloseSocket",
    "Deliver",
    "Event",
    "Reconnect",
    "Report",
    "State",
    "WebSocketCore",
    "Write",
    "describe_close",
]

CLOSE_CODES: Final[dict[int, str]] = {
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

PERMANENT_CLOSE_CODES: Final = frozenset({1002, 1003, 1007, 1008, 1009, 1010, 1015})
"""Close codes after which reconnecting cannot help: the transport gives up at once."""

KEEPALIVE_CLOSE_CODE: Final = 4000
_PING_PREFIX: Final = "pyodide-transport-ping-"

State: TypeAlias = Literal["new", "connecting", "open", "reconnecting", "lost", "closed"]

TRANSITIONS: Final[dict[tuple[State, str], State]] = {
    ("new", "connect"): "connecting",
    ("connecting", "opened"): "open",
    ("connecting", "open failed"): "new",
    ("open", "dropped, retry"): "reconnecting",
    ("open", "dropped, give up"): "lost",
    ("reconnecting", "opened"): "open",
    ("reconnecting", "attempt failed"): "reconnecting",
    ("reconnecting", "gave up"): "lost",
    **{(state, "close"): "closed" for state in ("new", "connecting", "open", "reconnecting", "lost")},
}
"""Every state change: ``(state, what happened) -> next state``."""


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


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message from the server, for ``receive``."""

    message: TransportMessage


@dataclass(frozen=True, slots=True)
class Report:
    """Raise ``error`` from ``receive`` (once). A :class:`ConnectionClosedError` without ids: the end."""

    error: TransportError


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Wait ``delay`` seconds, then open a new socket (``opened`` or ``open_failed`` follows)."""

    delay: float


@dataclass(frozen=True, slots=True)
class Write:
    """Send this text frame on the current socket."""

    text: str


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """Close the current socket with ``code`` (``dropped`` follows when it is gone)."""

    code: int
    reason: str


Event: TypeAlias = Deliver | Report | Reconnect | Write | CloseSocket


class WebSocketCore:
    """The decisions of one WebSocket client transport (see the module docstring).

    Args:
        url: The socket URL (for messages).
        auto_reconnect: Reconnect after an unexpected close.
        backoff: The reconnect schedule.
        ping_interval: Seconds between keep-alive pings (``None``: none).
        ping_timeout: Seconds a keep-alive ping may wait for its answer.
        max_message_size: Largest frame accepted or sent, in characters of text.

    Attributes:
        state: One of :data:`State`; changed only through :data:`TRANSITIONS`.
        reconnects: How many times a dropped connection was re-established.
        lost_error: Why the connection is lost for good, once it is.
    """

    def __init__(
        self,
        url: str,
        *,
        auto_reconnect: bool = True,
        backoff: BackoffPolicy | None = None,
        ping_interval: float | None = None,
        ping_timeout: float = 30.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.url = url
        self.auto_reconnect = auto_reconnect
        self.backoff = backoff or BackoffPolicy()
        self.ping_interval = ping_interval or None
        self.ping_timeout = ping_timeout
        self.max_message_size = max_message_size
        self.state: State = "new"
        self.reconnects = 0
        self.lost_error: ConnectionClosedError | None = None
        self._in_flight: set[RequestId] = set()  # requests written on the current socket, unanswered
        self._handshake = False  # an initialize was sent: sessions are per socket
        self._needs_handshake = False
        self._schedule = self.backoff.schedule()
        self._cause: ConnectionClosedError | None = None  # the drop being recovered from
        self._last_failure: TransportError | None = None
        self._pings = 0
        self._ping_id: str | None = None  # the keep-alive ping awaiting its answer
        self._ping_due = 0.0  # when the next ping goes out, or the outstanding one times out

    def _go(self, what: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, what)]
        except KeyError:
            raise LocalProtocolError(f"a WebSocket transport that is {self.state} cannot take {what!r}") from None

    # -- opening -------------------------------------------------------------------------------------

    def connect(self) -> None:
        """The first socket is being opened."""
        self._go("connect")

    def opened(self, now: float) -> None:
        """A socket is open: from now on frames flow on it."""
        if self.state == "reconnecting":
            self.reconnects += 1
            self._needs_handshake = self._handshake
        self._go("opened")
        self._schedule.reset()
        self._ping_id = None
        self._ping_due = now + (self.ping_interval or 0.0)

    def open_failed(self, error: TransportError) -> list[Event]:
        """Opening a socket failed: the first open reports it to its caller; a reconnect tries again."""
        if self.state == "connecting":
            self._go("open failed")
            return []
        if self.state != "reconnecting":
            return []
        self._last_failure = error
        return self._next_attempt()

    # -- sending -------------------------------------------------------------------------------------

    def send(self, message: TransportMessage) -> str:
        """The text frame for ``message``; the request it carries now awaits its answer on this socket.

        Raises:
            SessionExpiredError: The socket was re-opened; initialize again, then re-send.
            LocalProtocolError: The message is larger than ``max_message_size``.
            ConnectionClosedError: The socket is not open.
        """
        if self.state != "open":
            raise self.not_open()
        is_initialize = isinstance(message, JSONRPCRequest) and message.method == "initialize"
        if self._needs_handshake and not is_initialize:
            raise SessionExpiredError("the WebSocket was re-opened and the server has a new session; initialize again")
        text = encode_message(message)
        if len(text) > self.max_message_size:
            raise LocalProtocolError(f"message of {len(text)} bytes exceeds max_message_size={self.max_message_size}")
        if isinstance(message, JSONRPCRequest):
            self._in_flight.add(message.id)
        if is_initialize:
            self._handshake = True
            self._needs_handshake = False
        return text

    def unsent(self, message: TransportMessage) -> None:
        """Writing the frame from :meth:`send` failed: its request is not in flight after all."""
        if isinstance(message, JSONRPCRequest):
            self._in_flight.discard(message.id)

    def not_open(self) -> ConnectionClosedError:
        """Why nothing can be sent right now."""
        if self.state == "closed":
            return ConnectionClosedError("the transport is closed")
        if self.lost_error is not None:
            error = self.lost_error
            return ConnectionClosedError(str(error), code=error.code, reason=error.reason)
        return ConnectionClosedError(f"the WebSocket to {self.url} is not open ({self.state})")

    # -- receiving -----------------------------------------------------------------------------------

    def receive_frame(self, data: str | bytes, now: float) -> list[Event]:
        """A frame arrived on the open socket."""
        if isinstance(data, bytes):
            return [Report(RemoteProtocolError(f"binary frame of {len(data)} bytes ignored: MCP uses text frames"))]
        if len(data) > self.max_message_size:
            error = MessageTooLargeError(f"frame of {len(data)} bytes exceeds max_message_size={self.max_message_size}")
            return [Report(error)]
        try:
            messages = decode_messages(data)
        except RemoteProtocolError as exc:
            return [Report(exc)]
        events: list[Event] = []
        for message in messages:
            if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
                if isinstance(message.id, str) and message.id.startswith(_PING_PREFIX):
                    if message.id == self._ping_id:  # alive (a late answer to a timed-out ping is dropped too)
                        self._ping_id = None
                        self._ping_due = now + (self.ping_interval or 0.0)
                    continue  # the answer is ours alone
                self._in_flight.discard(message.id)
            events.append(Deliver(message))
        return events

    def dropped(self, code: int | None, reason: str) -> list[Event]:
        """The socket closed: fail what was in flight on it, then reconnect or give up."""
        if self.state not in ("open",):
            return []
        why = describe_close(code, reason)
        error = ConnectionClosedError(f"WebSocket {self.url} closed: {why}", code=code, reason=reason)
        events: list[Event] = []
        if self._in_flight:
            lost = ConnectionClosedError(f"the WebSocket closed ({why}) before the response", code=code, reason=reason)
            events.append(Report(lost.losing(tuple(self._in_flight))))
            self._in_flight.clear()
        self._ping_id = None
        if self.auto_reconnect and code not in PERMANENT_CLOSE_CODES:
            self._go("dropped, retry")
            self._cause = error
            self._last_failure = None
            self._schedule = self.backoff.schedule()
            return events + self._next_attempt(first=True)
        self._go("dropped, give up")
        return events + self._lose(error)

    def _next_attempt(self, *, first: bool = False) -> list[Event]:
        delay = self._schedule.next_delay()
        if delay is None:
            cause = self._cause
            assert cause is not None
            self._go("gave up")
            last = f" (last: {self._last_failure})" if self._last_failure is not None else ""
            text = f"{cause}; gave up after {self._schedule.attempts} reconnect attempts{last}"
            return self._lose(ConnectionClosedError(text, code=cause.code, reason=cause.reason))
        if not first:
            self._go("attempt failed")
        return [Reconnect(delay)]

    def _lose(self, error: ConnectionClosedError) -> list[Event]:
        self.lost_error = error
        return [Report(error)]

    # -- keep-alive and closing ----------------------------------------------------------------------

    @property
    def next_keepalive(self) -> float | None:
        """When to call :meth:`keepalive` next (``None``: no keep-alive, or not open)."""
        return self._ping_due if self.ping_interval and self.state == "open" else None

    def keepalive(self, now: float) -> list[Event]:
        """Write a ping when one is due; close with 4000 when the last one went unanswered."""
        if self.next_keepalive is None or now < self._ping_due:
            return []
        if self._ping_id is not None:
            self._ping_id = None
            return [CloseSocket(KEEPALIVE_CLOSE_CODE, "keep-alive ping timed out")]
        self._pings += 1
        self._ping_id = f"{_PING_PREFIX}{self._pings}"
        self._ping_due = now + self.ping_timeout
        return [Write(encode_message(make_request(self._ping_id, "ping")))]

    def close(self) -> list[Event]:
        """The user closed the transport: what was in flight is lost; ``receive`` ends."""
        if self.state == "closed":
            return []
        self._go("close")
        error = ConnectionClosedError("the transport was closed before the response")
        return [Report(error.losing(tuple(self._in_flight)))] if self._in_flight else []

"""The Streamable HTTP client, sans-I/O: which requests to make, and what their responses mean.

This module performs no I/O. An adapter (``FetchTransport`` over the browser ``fetch``, or any
HTTP client in CPython) performs the requests the core asks for and feeds the response bytes back.
Like h11 there are two levels:

* :class:`StreamableHTTPClient`, the connection: URL, custom headers, session id, negotiated
  protocol version, requests in flight, the standalone GET stream's policy and the counters in
  ``stats``. Its verbs create exchanges:

  - ``send(message)`` -> :class:`Exchange` (POST it), :class:`AbortExchange` (2026-07-28 cancel:
    abort that exchange's fetch instead of posting) or ``None`` (nothing to do);
  - ``open_stream()`` -> :class:`Exchange` (the standalone GET stream), when ``stream_wanted``;
  - ``close()`` -> :class:`Exchange` (DELETE the session) or ``None``.

* :class:`Exchange`, one HTTP request and its response, with its own SSE decoder. The adapter
  performs ``exchange.request`` and reports what happens through four verbs, each returning a
  list of events: ``receive_response(status, headers)``, ``receive_data(chunk)``,
  ``receive_eof()`` and ``receive_network_error(error)`` (the adapter's translated
  :class:`NetworkError`/:class:`CORSError`). Its states and their transitions are the table
  :data:`EXCHANGE_TRANSITIONS`::

      waiting --response--> json | sse | error body | empty --eof--> done
         |                          |
         +------- network error ----+--> done (+ Reconnect with a new exchange, or ExchangeFailed)

  Once ``exchange.done`` is true the adapter stops reading (aborting the fetch if the body is
  still open); every verb then returns ``[]``. Exchanges change the connection only through its
  ``_on_*`` methods, each named for what happened.

Events: :class:`MessageReceived`, :class:`SessionIdReceived`, :class:`ProtocolVersionNegotiated`,
:class:`LastEventIdUpdated`, :class:`RetryReceived`, :class:`StreamUnavailable`,
:class:`SessionExpired`, :class:`Reconnect` and :class:`ExchangeFailed`. Only two need action:
``Reconnect`` (wait ``delay`` seconds, then perform ``event.exchange``) and ``ExchangeFailed``
(raise ``event.error`` from ``send`` if it has not returned yet, else from ``receive`` with
``request_ids`` naming the requests it loses). Each error is reported exactly once.

Policy (the connection's, not the adapter's):

* **Sessions** (handshake era): ``Mcp-Session-Id`` is captured from the initialize response and
  echoed; ``MCP-Protocol-Version`` is sent after the InitializeResult. A 404 on a request with a
  session id expires the session: until the next ``initialize`` every ``send`` raises
  :class:`SessionExpiredError` at once (the session layer re-initializes and re-sends).
* **The GET stream**: ``stream_wanted`` turns true once ``notifications/initialized`` was
  accepted, and again after a lost stream once the server accepts the next message; HTTP 405 means
  the server offers none (not an error). A stream that gives up is reported once as a
  :class:`NetworkError`; the transport stays usable.
* **Resumption**: an SSE stream that ends before its responses resumes with ``GET`` +
  ``Last-Event-ID`` (the stream's newest id, kept across every reconnect) after the server's
  ``retry`` or the backoff.
* **2026-07-28**, chosen per message by ``params._meta["io.modelcontextprotocol/protocolVersion"]``:
  every POST carries ``MCP-Protocol-Version``, ``Mcp-Method`` (and ``Mcp-Name``), and a ``tools/call``
  the ``Mcp-Param-*`` headers its tool's ``x-mcp-header`` arguments ask for (SEP-2243: learnt from the
  ``tools/list`` results that pass through; values Base64-wrapped when not plain ASCII); there is no
  session, GET stream, DELETE or resumption; cancelling a request aborts its exchange; a
  ``server/discover`` refused with 400/404/405 and no modern error code fails with
  :class:`LegacyServerError` (the server predates 2026-07-28: fall back to ``initialize``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .backoff import BackoffPolicy
from .errors import (
    AuthorizationRequiredError,
    ConnectionClosedError,
    HTTPStatusError,
    LegacyServerError,
    LocalProtocolError,
    MessageTooLargeError,
    NetworkError,
    RemoteProtocolError,
    SessionExpiredError,
    TransportError,
)
from .messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    decode_message,
    decode_messages,
    encode_message,
)
from .sse import SSEDecoder, SSEEvent
from .wire import (
    ACCEPT_POST,
    ACCEPT_SSE,
    BROWSER_REQUEST_HEADERS,
    DEFAULT_MAX_MESSAGE_SIZE,
    EXPOSED_RESPONSE_HEADERS,
    MODERN_ERROR_CODES,
    NAME_PARAMS,
    PROTOCOL_HEADERS,
    encode_header_value,
    header_safe,
    param_header_form,
    param_headers,
    tool_header_problem,
)

__all__ = [
    "BROWSER_REQUEST_HEADERS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "EXCHANGE_TRANSITIONS",
    "EXPOSED_RESPONSE_HEADERS",
    "MODERN_ERROR_CODES",
    "AbortExchange",
    "Event",
    "Exchange",
    "ExchangeFailed",
    "HTTPRequest",
    "LastEventIdUpdated",
    "MessageReceived",
    "ProtocolVersionNegotiated",
    "Reconnect",
    "RetryReceived",
    "SessionExpired",
    "SessionIdReceived",
    "StreamUnavailable",
    "StreamableHTTPClient",
    "encode_header_value",
]

_LEGACY_PROBE_STATUSES: Final = frozenset({400, 404, 405})  # how servers before 2026-07-28 refuse server/discover
_ERROR_BODY_LIMIT: Final = 64 * 1024  # keep this much of a non-2xx body for diagnostics


# --- requests and events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """An HTTP request for the adapter to perform.

    Attributes:
        method: ``"POST"``, ``"GET"`` or ``"DELETE"``.
        url: The endpoint URL.
        headers: Header names as the spec spells them; values are ASCII.
        body: The UTF-8 JSON body of a POST, else ``None``.
    """

    method: Literal["POST", "GET", "DELETE"]
    url: str
    headers: dict[str, str]
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A JSON-RPC message from the server, for the session layer."""

    message: TransportMessage


@dataclass(frozen=True, slots=True)
class SessionIdReceived:
    """The initialize response assigned a session id; it is now sent on every request."""

    session_id: str


@dataclass(frozen=True, slots=True)
class ProtocolVersionNegotiated:
    """The InitializeResult named the protocol version; ``MCP-Protocol-Version`` now carries it."""

    version: str


@dataclass(frozen=True, slots=True)
class LastEventIdUpdated:
    """An SSE stream's resumption token (its newest event id) changed."""

    last_event_id: str


@dataclass(frozen=True, slots=True)
class RetryReceived:
    """The server set the stream's reconnect delay (SSE ``retry``), in milliseconds."""

    milliseconds: int


@dataclass(frozen=True, slots=True)
class StreamUnavailable:
    """The server offers no standalone GET stream (HTTP 405). Not an error."""


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """HTTP 404 on a request carrying the session id: the session is gone and forgotten.

    Start a new session (initialize again). An :class:`ExchangeFailed` with a
    :class:`SessionExpiredError` for ``request_ids`` follows.
    """

    session_id: str
    request_ids: tuple[RequestId, ...]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The stream ended before its responses arrived: perform ``exchange`` after ``delay`` seconds.

    Attributes:
        delay: Seconds to wait (the server's ``retry`` if it sent one, else the backoff).
        exchange: The GET that resumes the stream (with ``Last-Event-ID`` when it has an id).
        last_event_id: The id it resumes from, or ``None``.
    """

    delay: float
    exchange: Exchange
    last_event_id: str | None


@dataclass(frozen=True, slots=True)
class ExchangeFailed:
    """The exchange failed; the requests in ``request_ids`` will get no response.

    Attributes:
        error: What to raise: ``HTTPStatusError`` (or ``LegacyServerError``),
            ``RemoteProtocolError``, ``MessageTooLargeError``, ``SessionExpiredError``,
            ``ConnectionClosedError``, ``NetworkError`` or the adapter's own network error.
        request_ids: The requests this failure loses (empty for notifications, streams, DELETE).
    """

    error: TransportError
    request_ids: tuple[RequestId, ...]


Event: TypeAlias = (
    MessageReceived
    | SessionIdReceived
    | ProtocolVersionNegotiated
    | LastEventIdUpdated
    | RetryReceived
    | StreamUnavailable
    | SessionExpired
    | Reconnect
    | ExchangeFailed
)


@dataclass(frozen=True, slots=True)
class AbortExchange:
    """Abort ``exchange``'s fetch: this is how a 2026-07-28 client cancels a request."""

    exchange: Exchange


# --- helpers --------------------------------------------------------------------------------------


def _modern_version(message: TransportMessage) -> str | None:
    """The 2026-07-28 version a request or notification declares in ``_meta``, if any."""
    if not isinstance(message, JSONRPCRequest | JSONRPCNotification) or not message.params:
        return None
    meta = message.params.get("_meta")
    version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    return version if version in MODERN_PROTOCOL_VERSIONS else None


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _describe(ids: tuple[RequestId, ...]) -> str:
    return "request " + ", ".join(repr(i) for i in ids) if ids else "the stream"


class _Stream:
    """What the exchanges of one logical SSE stream share: a POST and the GETs resuming it."""

    def __init__(self, pending: tuple[RequestId, ...], *, standalone: bool, policy: BackoffPolicy) -> None:
        self.pending: dict[RequestId, None] = dict.fromkeys(pending)  # ordered set
        self.standalone = standalone
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.backoff = policy.schedule()


GetStreamState: TypeAlias = Literal["none", "wanted", "open", "lost", "unavailable"]

GET_STREAM_TRANSITIONS: Final[dict[tuple[GetStreamState, str], GetStreamState]] = {
    ("none", "initialized accepted"): "wanted",
    ("wanted", "opened"): "open",
    ("open", "opened"): "open",
    ("open", "refused (405)"): "unavailable",
    ("open", "gave up"): "lost",
    ("lost", "message accepted"): "wanted",
    **{(state, "new session"): "none" for state in ("none", "wanted", "open", "lost", "unavailable")},
}
"""The standalone GET stream's life: ``(state, what happened) -> next state``; unlisted pairs change nothing."""

_GET_STREAM_STATS: Final[dict[GetStreamState, str]] = {
    "none": "not opened",
    "wanted": "not opened",
    "open": "open",
    "lost": "lost",
    "unavailable": "unavailable (405)",
}


# --- the connection -------------------------------------------------------------------------------


class StreamableHTTPClient:
    """Connection state of one Streamable HTTP client (see the module docstring for the verbs).

    Args:
        url: The MCP endpoint.
        headers: Extra headers for every request (e.g. ``Authorization``); protocol headers
            (``Accept``, ``Content-Type``, ``Mcp-*``, ``MCP-*``, ``Last-Event-ID``) are the core's
            alone and are dropped from it.
        max_message_size: Most bytes of one JSON body or SSE event.
        backoff: Reconnect schedule for resuming SSE streams.
        get_stream: Open the standalone GET stream once a handshake-era session is initialized.

    Attributes:
        session_id: The current session id (handshake era), or ``None``.
        protocol_version: The negotiated handshake-era version, or ``None``.
        modern_version: The 2026-07-28 version of the last modern request sent, or ``None``.
        expired: The session expired; only an ``initialize`` may be sent.
        stats: Counters of what the server did (SSE and JSON responses, resumptions, the last
            event id, the GET stream's state, the DELETE status), for diagnostics.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        backoff: BackoffPolicy | None = None,
        get_stream: bool = True,
    ) -> None:
        self.url = url
        self.custom_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in PROTOCOL_HEADERS}
        self.max_message_size = max_message_size
        self.backoff = backoff or BackoffPolicy()
        self.get_stream = get_stream
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.modern_version: str | None = None
        self.expired = False
        self.closed = False
        self.stats: dict[str, Any] = {
            "sse_responses": 0,
            "json_responses": 0,
            "resumptions": 0,
            "last_event_id": None,
            "get_stream": "not opened",
            "delete_status": None,
        }
        self._in_flight: dict[RequestId, Exchange] = {}
        self._get_state: GetStreamState = "none"
        self._get_exchange: Exchange | None = None
        self._aborted: list[Exchange] = []
        self._tool_headers: dict[str, dict[str, str]] = {}  # tool -> {argument: Mcp-Param-* header}

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header every request carries (OAuth sets it), or ``None``."""
        for name, value in self.custom_headers.items():
            if name.lower() == "authorization":
                return value
        return None

    @authorization.setter
    def authorization(self, value: str | None) -> None:
        for name in [n for n in self.custom_headers if n.lower() == "authorization"]:
            del self.custom_headers[name]
        if value is not None:
            self.custom_headers["Authorization"] = value

    # -- verbs ------------------------------------------------------------------------------------

    def send(self, message: TransportMessage) -> Exchange | AbortExchange | None:
        """Turn an outgoing message into an exchange to perform.

        Returns:
            An :class:`Exchange` to POST; an :class:`AbortExchange` when a 2026-07-28
            ``notifications/cancelled`` means "abort that request's fetch"; ``None`` when there is
            nothing to send (cancelling a modern request that is no longer in flight).

        Raises:
            SessionExpiredError: The session expired and ``message`` is not an ``initialize``.
            LocalProtocolError: The client is closed, or the request id is already in flight.
        """
        if self.closed:
            raise LocalProtocolError("the Streamable HTTP client is closed")
        method: str | None = None
        params: dict[str, Any] = {}
        if isinstance(message, JSONRPCRequest | JSONRPCNotification):
            method, params = message.method, message.params or {}
        if isinstance(message, JSONRPCRequest) and message.id in self._in_flight:
            raise LocalProtocolError(f"request id {message.id!r} is already in flight")
        if self.expired and method != "initialize":
            raise SessionExpiredError("the session expired; initialize a new one before sending")
        version = _modern_version(message)
        if method == "notifications/cancelled":
            cancelled = params.get("requestId")
            target = self._in_flight.get(cancelled) if isinstance(cancelled, int | str) else None
            if target is not None and target.modern:
                target.abort()
                return AbortExchange(target)
            if target is None and (version or (self.modern_version and not self.protocol_version)):
                return None
        if method == "initialize":  # a new session starts; the old one's state must not leak into it
            self._new_session()
        if version is None and self.modern_version and not self.protocol_version:
            version = self.modern_version  # e.g. a notification in an established modern connection
        elif version is not None:
            self.modern_version = version
        headers = self._headers(ACCEPT_POST, modern=version, method=method)
        if version is not None and method in NAME_PARAMS:
            name = params.get(NAME_PARAMS[method])
            if isinstance(name, str):
                headers["Mcp-Name"] = encode_header_value(name)
                if method == "tools/call":
                    headers.update(self._param_headers(name, params.get("arguments")))
        headers["Content-Type"] = "application/json"
        request = HTTPRequest("POST", self.url, headers, encode_message(message).encode())
        pending: tuple[RequestId, ...] = (message.id,) if isinstance(message, JSONRPCRequest) else ()
        stream = _Stream(pending, standalone=False, policy=self.backoff)
        exchange = Exchange(self, request, "post", stream, modern=version is not None, method=method)
        for request_id in pending:
            self._in_flight[request_id] = exchange
        return exchange

    @property
    def stream_wanted(self) -> bool:
        """Whether the adapter should open the standalone GET stream now (see :meth:`open_stream`)."""
        return self._get_state == "wanted" and self.get_stream and not self.closed and self.session_id is not None

    def open_stream(self) -> Exchange:
        """Create the standalone GET stream for server-initiated messages (handshake era only).

        Raises:
            LocalProtocolError: No handshake-era session is initialized, or the client is closed.
        """
        if self.closed or self.protocol_version is None:
            raise LocalProtocolError("the GET stream needs an initialized handshake-era (<= 2025-11-25) session")
        stream = _Stream((), standalone=True, policy=self.backoff)
        exchange = Exchange(self, self._get_request(stream), "get", stream)
        self._replace_get(exchange)
        self._get_go("opened")
        self.stats["get_stream"] = "opening"
        return exchange

    def close(self) -> Exchange | None:
        """Close the client; return the DELETE that ends the session, if there is one.

        Exchanges still running keep working; the adapter aborts them.
        """
        self.closed = True
        if self.session_id is None:
            return None
        request = HTTPRequest("DELETE", self.url, self._headers(None))
        exchange = Exchange(self, request, "delete", _Stream((), standalone=False, policy=self.backoff))
        self.session_id = self.protocol_version = None
        return exchange

    def exchange_for(self, request_id: RequestId) -> Exchange | None:
        """The exchange that currently carries the response of ``request_id``, if any."""
        return self._in_flight.get(request_id)

    def param_headers_for(self, message: TransportMessage) -> dict[str, str]:
        """The ``Mcp-Param-*`` headers :meth:`send` would add to ``message`` (SEP-2243), for diagnostics."""
        if not isinstance(message, JSONRPCRequest) or message.method != "tools/call" or not message.params:
            return {}
        if _modern_version(message) is None and not (self.modern_version and not self.protocol_version):
            return {}
        name = message.params.get("name")
        return self._param_headers(name, message.params.get("arguments")) if isinstance(name, str) else {}

    def _param_headers(self, tool: str, arguments: object) -> dict[str, str]:
        """The ``Mcp-Param-*`` headers mirroring a call's annotated arguments (SEP-2243; null ones omitted)."""
        headers: dict[str, str] = {}
        mirrored = self._tool_headers.get(tool)
        if mirrored and isinstance(arguments, dict):
            for argument, header in mirrored.items():
                value = param_header_form(arguments.get(argument))
                if value is not None:
                    headers[header] = encode_header_value(value)
        return headers

    def take_aborted(self) -> list[Exchange]:
        """Exchanges the core gave up on since the last call (the adapter stops their fetches)."""
        aborted, self._aborted = self._aborted, []
        return aborted

    # -- what exchanges report (their only way to change the connection) --------------------------

    def _on_session(self, session_id: str) -> None:
        self.session_id = session_id

    def _on_negotiated(self, version: str) -> None:
        self.protocol_version = version

    def _on_expired(self, session_id: str) -> None:
        if self.session_id == session_id:  # a newer session may already exist
            self.session_id = self.protocol_version = None
            self.expired = True

    def _on_settled(self, request_id: RequestId) -> None:
        """A response arrived (on whatever stream), or its exchange gave up: nobody waits any more."""
        owner = self._in_flight.pop(request_id, None)
        if owner is not None:
            owner._stream.pending.pop(request_id, None)

    def _on_handed_over(self, request_ids: tuple[RequestId, ...], exchange: Exchange) -> None:
        for request_id in request_ids:
            self._in_flight[request_id] = exchange

    def _on_response(self, exchange: Exchange) -> None:
        """Status and headers of ``exchange`` arrived: counters and the GET stream's policy."""
        status = exchange.status or 0
        if exchange.kind == "delete":
            self.stats["delete_status"] = status
        elif exchange.kind == "get":
            if status == 405:
                self._get_go("refused (405)")
            elif 200 <= status < 300:
                self.stats["get_stream"] = "open"
        elif exchange.kind == "post" and 200 <= status < 300:
            if exchange.is_streaming:
                self.stats["sse_responses"] += 1
            elif status == 200:
                self.stats["json_responses"] += 1
            if exchange.method == "notifications/initialized":
                self._get_go("initialized accepted")
            else:
                self._get_go("message accepted")

    def _on_tools_listed(self, result: Mapping[str, Any]) -> None:
        """A ``tools/list`` page arrived: remember which arguments of its tools go into headers."""
        for tool in result.get("tools") or ():
            if isinstance(tool, dict) and isinstance(name := tool.get("name"), str):
                schema = tool.get("inputSchema")
                valid = tool_header_problem(schema) is None
                self._tool_headers[name] = param_headers(schema) if valid else {}

    def _on_event_id(self, last_event_id: str) -> None:
        self.stats["last_event_id"] = last_event_id

    def _on_reconnect(self) -> None:
        self.stats["resumptions"] += 1

    def _on_stream_gave_up(self, exchange: Exchange, error: TransportError) -> TransportError:
        """The standalone GET stream failed for good: report it once, re-open it with the next accepted message."""
        if exchange is not self._get_exchange:
            return error
        self._get_exchange = None
        self._get_go("gave up")
        return NetworkError(f"the server-to-client stream was lost ({error}); it re-opens with the next request")

    # -- internals -----------------------------------------------------------------------------------

    def _get_go(self, what: str) -> None:
        nxt = GET_STREAM_TRANSITIONS.get((self._get_state, what))
        if nxt is not None:
            self._get_state = nxt
            self.stats["get_stream"] = _GET_STREAM_STATS[nxt]

    def _replace_get(self, exchange: Exchange | None) -> None:
        old, self._get_exchange = self._get_exchange, exchange
        if old is not None and not old.done:
            old.abort()

    def _new_session(self) -> None:
        self.session_id = self.protocol_version = self.modern_version = None
        self.expired = False
        self._replace_get(None)
        self._get_go("new session")

    def _headers(self, accept: str | None, *, modern: str | None = None, method: str | None = None) -> dict[str, str]:
        headers = dict(self.custom_headers)
        if accept is not None:
            headers["Accept"] = accept
        if modern is not None:
            headers["MCP-Protocol-Version"] = modern
            if method is not None:
                headers["Mcp-Method"] = method
        else:
            if self.session_id is not None:
                headers["Mcp-Session-Id"] = self.session_id
            if self.protocol_version is not None:
                headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def _get_request(self, stream: _Stream) -> HTTPRequest:
        headers = self._headers(ACCEPT_SSE)
        if stream.last_event_id:
            headers["Last-Event-ID"] = stream.last_event_id
        return HTTPRequest("GET", self.url, headers)


def _insufficient_scope(challenge: str) -> bool:
    """A 403 asks for a bigger scope (RFC 6750 §3.1), not "you may not" (e.g. a refused Origin)."""
    from .oauth_core import bearer_challenge  # rare: keep the import off the start-up path

    found = bearer_challenge(challenge)
    return found is not None and found.error == "insufficient_scope"


# --- one exchange ---------------------------------------------------------------------------------

ExchangeState: TypeAlias = Literal["waiting", "json", "sse", "error_body", "other", "done"]

EXCHANGE_TRANSITIONS: Final[frozenset[tuple[ExchangeState, ExchangeState]]] = frozenset(
    {
        ("waiting", "json"),  # a JSON body follows
        ("waiting", "sse"),  # an SSE stream follows
        ("waiting", "error_body"),  # a non-2xx status: its body explains
        ("waiting", "other"),  # 2xx without a JSON type: fine if the body is empty
        *((state, "done") for state in ("waiting", "json", "sse", "error_body", "other")),
    }
)
"""Every state change an exchange may make; anything else is a bug (LocalProtocolError)."""


class Exchange:
    """One HTTP request/response of a :class:`StreamableHTTPClient` (see the module docstring).

    Attributes:
        request: The HTTP request to perform.
        kind: ``"post"``, ``"get"`` (standalone stream), ``"resume"`` (GET resuming a POST's
            stream) or ``"delete"``.
        modern: Whether this is a 2026-07-28 exchange (no resumption; cancel = abort).
        method: The JSON-RPC method posted (or whose stream a ``"resume"`` GET continues), if any.
        status: The HTTP status, once received.
    """

    def __init__(
        self,
        client: StreamableHTTPClient,
        request: HTTPRequest,
        kind: Literal["post", "get", "resume", "delete"],
        stream: _Stream,
        *,
        modern: bool = False,
        method: str | None = None,
    ) -> None:
        self.request = request
        self.kind = kind
        self.modern = modern
        self.method = method
        self.status: int | None = None
        self._client = client
        self._stream = stream
        self._state: ExchangeState = "waiting"
        self._body = bytearray()
        self._decoder: SSEDecoder | None = None
        self._sent_session = request.headers.get("Mcp-Session-Id")
        self._challenge: str | None = None  # WWW-Authenticate of a 401/403

    def __repr__(self) -> str:
        return f"<Exchange {self.request.method} {self.kind} {self._state} pending={self.request_ids}>"

    @property
    def done(self) -> bool:
        """Whether the exchange is over; the adapter stops reading its body."""
        return self._state == "done"

    @property
    def is_streaming(self) -> bool:
        """Whether the body is an SSE stream being read (it may stay open for a long time)."""
        return self._state == "sse"

    @property
    def request_ids(self) -> tuple[RequestId, ...]:
        """Requests whose responses this exchange's stream still owes."""
        return tuple(self._stream.pending)

    @property
    def last_event_id(self) -> str | None:
        """The stream's resumption token (newest SSE event id), or ``None``."""
        return self._stream.last_event_id or None

    def abort(self) -> None:
        """Give up on this exchange (cancelled or transport closing); its requests are forgotten."""
        if self._state == "done":
            return
        for request_id in list(self._stream.pending):
            self._client._on_settled(request_id)
        self._go("done")
        self._client._aborted.append(self)

    # -- verbs -------------------------------------------------------------------------------------

    def receive_response(self, status: int, headers: Mapping[str, str]) -> list[Event]:
        """The status line and headers arrived.

        Raises:
            LocalProtocolError: Called twice.
        """
        if self._state == "done":
            return []
        if self._state != "waiting":
            raise LocalProtocolError("receive_response() was already called for this exchange")
        self.status = status
        events = self._response(status, {name.lower(): value for name, value in headers.items()})
        self._client._on_response(self)
        return events

    def receive_data(self, data: bytes) -> list[Event]:
        """A chunk of the response body arrived.

        Raises:
            LocalProtocolError: Called before ``receive_response``.
        """
        if self._state == "done":
            return []
        if self._state == "waiting":
            raise LocalProtocolError("receive_data() before receive_response()")
        if self._state == "sse":
            assert self._decoder is not None
            try:
                sse_events = self._decoder.feed(data)
            except MessageTooLargeError as exc:
                return self._fail(exc)
            return self._on_sse(sse_events)
        if self._state == "error_body":
            self._body += data[: max(0, _ERROR_BODY_LIMIT - len(self._body))]
            return []
        self._body += data
        if len(self._body) > self._client.max_message_size:
            limit = self._client.max_message_size
            return self._fail(MessageTooLargeError(f"response body exceeds the limit of {limit} bytes"))
        return []

    def receive_eof(self) -> list[Event]:
        """The response body ended normally.

        Raises:
            LocalProtocolError: Called before ``receive_response``.
        """
        if self._state == "done":
            return []
        if self._state == "waiting":
            raise LocalProtocolError("receive_eof() before receive_response()")
        if self._state == "sse":
            assert self._decoder is not None
            self._decoder.end()
            return self._stream_lost("the SSE stream ended")
        body, state = bytes(self._body), self._state
        self._body.clear()
        if state == "error_body":
            return self._on_error_body(body)
        if state == "other":
            if body.strip():
                return self._fail(RemoteProtocolError(f"unexpected body in HTTP {self.status} without a JSON type"))
            self._finish()
            return []
        try:
            messages = decode_messages(body)
        except RemoteProtocolError as exc:
            return self._fail(exc)
        events: list[Event] = []
        for message in messages:
            events += self._deliver(message)
        if self.request_ids:
            error = RemoteProtocolError(f"the JSON body held no response for {_describe(self.request_ids)}")
            return events + self._fail(error)
        self._finish()
        return events

    def receive_network_error(self, error: TransportError) -> list[Event]:
        """The request failed, or the body read broke off.

        Args:
            error: The adapter's translation of the failure (e.g. ``NetworkError``, ``CORSError``).
        """
        if self._state == "done":
            return []
        if self._state == "sse" or (self._state == "waiting" and self.kind in ("get", "resume")):
            return self._stream_lost(f"the SSE stream broke ({error})")
        return self._fail(error)

    # -- internals ---------------------------------------------------------------------------------

    def _go(self, state: ExchangeState) -> None:
        if (self._state, state) not in EXCHANGE_TRANSITIONS:
            raise LocalProtocolError(f"an exchange that is {self._state} cannot become {state}")
        self._state = state

    def _finish(self) -> None:
        self._go("done")
        self._body.clear()
        self._decoder = None

    def _response(self, status: int, headers: dict[str, str]) -> list[Event]:
        """What the status and headers mean; moves to the state that reads the body."""
        client = self._client
        if self.kind == "delete":
            if 200 <= status < 300 or status in (404, 405):
                self._finish()
            else:
                self._go("error_body")
            return []
        if status == 404 and self._sent_session is not None:
            client._on_expired(self._sent_session)
            ids = self.request_ids
            gone = SessionExpiredError(f"the server no longer knows session {self._sent_session!r} (HTTP 404)")
            return [SessionExpired(self._sent_session, ids), *self._fail(gone)]
        if status == 405 and self.kind != "post":
            if self.kind == "get":
                self._finish()
                return [StreamUnavailable()]
            return self._fail(ConnectionClosedError("cannot resume the SSE stream: the server refuses GET (405)"))
        if not 200 <= status < 300:
            if status in (401, 403):
                self._challenge = headers.get("www-authenticate", "")
            self._go("error_body")
            return []
        events: list[Event] = []
        session_id = headers.get("mcp-session-id")
        if self.method == "initialize" and not self.modern and session_id is not None:
            if not session_id or not header_safe(session_id):
                return self._fail(RemoteProtocolError(f"invalid Mcp-Session-Id {session_id!r}"))
            client._on_session(session_id)
            events.append(SessionIdReceived(session_id))
        media_type = _media_type(headers)
        if status in (202, 204):
            if self.request_ids:
                error = RemoteProtocolError(
                    f"server answered {_describe(self.request_ids)} with HTTP {status}; no response will come"
                )
                return events + self._fail(error)
            self._finish()
        elif media_type == "text/event-stream":
            self._go("sse")
            self._decoder = SSEDecoder(max_event_size=client.max_message_size, last_event_id=self._stream.last_event_id)
        elif media_type == "application/json" and self.kind == "post":
            self._go("json")
        elif self.request_ids or self.kind != "post":
            error = RemoteProtocolError(f"unexpected Content-Type {media_type or '(none)'!r} in HTTP {status}")
            return events + self._fail(error)
        else:
            self._go("other")
        return events

    def _fail(self, error: TransportError) -> list[Event]:
        ids = self.request_ids
        for request_id in ids:
            self._client._on_settled(request_id)
        self._finish()
        if self._stream.standalone and isinstance(error, ConnectionClosedError):
            error = self._client._on_stream_gave_up(self, error)
        return [ExchangeFailed(error, ids)]

    def _deliver(self, message: TransportMessage) -> list[Event]:
        events: list[Event] = []
        client = self._client
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            ours = client.exchange_for(message.id) is self
            client._on_settled(message.id)  # answered here, or on another stream: that one waits no more
            if ours and self.method == "tools/list" and isinstance(message, JSONRPCResponse):
                client._on_tools_listed(message.result)
            if (
                ours
                and self.method == "initialize"
                and isinstance(message, JSONRPCResponse)
                and isinstance(version := message.result.get("protocolVersion"), str)
            ):
                client._on_negotiated(version)
                events.append(ProtocolVersionNegotiated(version))
        events.append(MessageReceived(message))
        return events

    def _on_sse(self, sse_events: list[SSEEvent]) -> list[Event]:
        assert self._decoder is not None
        stream, decoder = self._stream, self._decoder
        events: list[Event] = []
        for sse in sse_events:
            if sse.id != stream.last_event_id:
                events += self._new_event_id(sse.id)
            if not sse.data or sse.event != "message":
                continue  # priming event, or an event type MCP does not use
            try:
                messages = decode_messages(sse.data)
            except RemoteProtocolError as exc:
                return events + self._fail(exc)
            stream.backoff.reset()  # the stream makes progress
            for message in messages:
                events += self._deliver(message)
        if decoder.last_event_id != stream.last_event_id:
            events += self._new_event_id(decoder.last_event_id)
        if decoder.retry is not None and decoder.retry != stream.retry_ms:
            stream.retry_ms = decoder.retry
            events.append(RetryReceived(decoder.retry))
        return events

    def _new_event_id(self, last_event_id: str) -> list[Event]:
        self._stream.last_event_id = last_event_id
        if not last_event_id:
            return []
        self._stream.backoff.reset()
        self._client._on_event_id(last_event_id)
        return [LastEventIdUpdated(last_event_id)]

    def _stream_lost(self, what: str) -> list[Event]:
        """The SSE body ended or broke: resume it, finish quietly, or fail its requests."""
        stream = self._stream
        ids = self.request_ids
        if not stream.standalone and not ids:
            self._finish()
            return []
        if self._client.closed:
            return self._fail(ConnectionClosedError(f"{what} after the client was closed"))
        if self.modern:
            return self._fail(
                ConnectionClosedError(f"{what} before the response to {_describe(ids)}; 2026-07-28 cannot resume")
            )
        if not stream.standalone and not stream.last_event_id:
            return self._fail(
                ConnectionClosedError(f"{what} before the response to {_describe(ids)} and sent no event id to resume")
            )
        delay = stream.backoff.next_delay(stream.retry_ms)
        if delay is None:
            return self._fail(
                ConnectionClosedError(f"{what}; gave up after {stream.backoff.attempts} reconnect attempts")
            )
        client = self._client
        kind: Literal["get", "resume"] = "get" if stream.standalone else "resume"
        nxt = Exchange(client, client._get_request(stream), kind, stream, method=self.method)
        client._on_handed_over(ids, nxt)
        if stream.standalone and client._get_exchange is self:
            client._get_exchange = nxt
        client._on_reconnect()
        self._finish()
        return [Reconnect(delay, nxt, stream.last_event_id or None)]

    def _on_error_body(self, body: bytes) -> list[Event]:
        """A non-2xx response ended: a JSON-RPC error for our request, or an HTTP status error."""
        if self._challenge is not None and (self.status == 401 or _insufficient_scope(self._challenge)):
            return self._fail(self._unauthorized(body))
        error = self._error_message(body)
        if error is not None:
            self._finish()
            return self._deliver(error)
        text = body.decode("utf-8", "replace")
        status = self.status or 0
        what = f"{self.request.method} {self.request.url} answered HTTP {status}"
        if self.modern and self.method == "server/discover" and status in _LEGACY_PROBE_STATUSES:
            return self._fail(LegacyServerError(status, f"{what}: not a 2026-07-28 server", body=text))
        return self._fail(HTTPStatusError(status, what, body=text))

    def _unauthorized(self, body: bytes) -> AuthorizationRequiredError:
        status = self.status or 0
        challenge = self._challenge or ""
        if status == 401:
            sent = any(name.lower() == "authorization" for name in self.request.headers)
            why = "the server refused the access token" if sent else "the server requires OAuth sign-in"
        else:
            why = "the token lacks a scope this request needs (insufficient_scope)"
        if not challenge:
            why += (
                " (no WWW-Authenticate header was readable: a browser shows it only if the server lists it in"
                " Access-Control-Expose-Headers)"
            )
        text = body.decode("utf-8", "replace")
        what = f"{self.request.method} {self.request.url} answered HTTP {status}: {why}"
        return AuthorizationRequiredError(status, what, body=text, www_authenticate=challenge)

    def _error_message(self, body: bytes) -> JSONRPCError | None:
        """The JSON-RPC error in a non-2xx body, if it answers this exchange's request."""
        ids = self.request_ids
        if len(ids) != 1 or not body.strip():
            return None
        try:
            message = decode_message(body)
        except RemoteProtocolError:
            return None
        if not isinstance(message, JSONRPCError):
            return None
        if self.modern and message.error.code in MODERN_ERROR_CODES:
            return message.model_copy(update={"id": ids[0]})  # may be id:null: still ours
        if self.modern and self.status == 400 and self.method == "server/discover":
            return None  # not a modern server: the status error lets the Client fall back
        return message if message.id == ids[0] else None

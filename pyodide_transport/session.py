"""The MCP client session, sans-I/O: negotiation, the request lifecycle, and what arriving messages mean.

No I/O, no asyncio, no clock of its own (the h11 / python-websockets way). The shell,
:class:`pyodide_transport.client.Client`, feeds a :class:`ClientSession` what happens and acts on
what it returns; the same object therefore runs unchanged in CPython, Node-Pyodide and a browser,
and its tests need no event loop.

Verbs of :class:`ClientSession` (``now`` is any monotonic clock in seconds)::

    begin(method, params, ...)      -> JSONRPCRequest    a new id, the era's envelope, tracked
    sent(request_id, now)                                  the transport took it: its clock starts
    cancel(request_id, reason)      -> message | None      give up on it; the notification to send
    receive(message, now)           -> [Event]             a message from the server
    fail(error)                     -> [Event]             the transport reported a failure
    expire(now)                     -> [Event]             time passed: what timed out
    close(error)                    -> [Event]             fail whatever is still pending
    next_deadline                                          when to call ``expire`` next (or None)

The request lifecycle has this one owner: ids, the ``_meta`` envelope, progress tokens,
timeouts that progress resets and a total limit that it does not, cancellation (never of
``initialize``), late responses (dropped quietly once their request timed out or was cancelled)
and which requests a transport failure loses. A request moves through the states of
:data:`REQUEST_STATES`; nothing else assigns them.

:class:`Negotiation` decides the protocol version as data: the outcome of each probe is
classified and looked up in :data:`NEGOTIATION` (modern ``server/discover`` first, then the
``initialize`` handshake), so the era fallback is a table, not a nest of branches.

Events are small frozen dataclasses: :class:`Completed`, :class:`Failed`, :class:`Progressed`,
:class:`LogReceived`, :class:`ListChanged`, :class:`ResourceUpdated`, :class:`ServerRequest`,
:class:`ServerRequestCancelled`, :class:`Send`, :class:`Violation` and :class:`ConnectionLost`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeAlias, TypeGuard, TypeVar, get_args

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
    CallToolResult,
    ClientCapabilities,
    DiscoverResult,
    Implementation,
    InitializeResult,
    InputRequiredResult,
    LoggingMessageNotificationParams,
    ToolAnnotations,
    UnsupportedProtocolVersionErrorData,
)
from mcp_types.jsonrpc import UNSUPPORTED_PROTOCOL_VERSION, JSONRPCError, JSONRPCNotification, JSONRPCRequest
from mcp_types.jsonrpc import JSONRPCResponse as _Response
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import BaseModel, Field, PydanticUserError, ValidationError, create_model

from .errors import (
    ConnectionClosedError,
    LegacyServerError,
    LocalProtocolError,
    MCPError,
    RemoteProtocolError,
    RequestTimeoutError,
    SessionExpiredError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from .messages import RequestId, TransportMessage, make_notification, make_request
from .wire import MODERN_ERROR_CODES, validation_message

__all__ = [
    "MAX_INPUT_ROUNDS",
    "NEGOTIATION",
    "REQUEST_STATES",
    "ClientSession",
    "Completed",
    "ConnectionLost",
    "Discover",
    "Era",
    "Event",
    "Failed",
    "Handshake",
    "Initialize",
    "ListChanged",
    "LogReceived",
    "Modern",
    "Negotiation",
    "Progressed",
    "ResourceUpdated",
    "Send",
    "ServerRequest",
    "ServerRequestCancelled",
    "Step",
    "Violation",
    "dump",
    "error_from",
    "input_round",
    "listen_filter",
    "parse_result",
    "reissuable",
]

Era: TypeAlias = Literal["modern", "handshake"]
_M = TypeVar("_M", bound=BaseModel)

MAX_INPUT_ROUNDS: Final = 10
"""Cap on input-required retry rounds for one request (matches the other SDKs)."""

_LATE_MEMORY: Final = 256
"""How many timed-out or cancelled request ids are remembered, to drop their late responses quietly."""


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the JSON-ready dict sent on the wire (aliases, no nulls)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_result(result_type: type[Any], raw: Mapping[str, Any], method: str) -> Any:
    """Validate a raw result as ``result_type``.

    A ``CallToolResult`` (every tool call) is first validated with its content blocks told apart by
    their ``type`` tag, which pydantic checks in one step where the official model's plain union tries
    each block type in turn (62 against 21 µs per echo result in Pyodide); the result is an instance
    of the official class all the same. Anything that variant refuses goes to the official model,
    which has the last word and words the error.

    Raises:
        RemoteProtocolError: The result does not fit (the server's fault).
    """
    if result_type is CallToolResult and (tagged := _tagged_call_tool_result()) is not None:
        try:
            return _as(CallToolResult, tagged.model_validate(raw))
        except ValidationError:
            pass
    try:
        return result_type.model_validate(raw)
    except ValidationError as exc:
        raise RemoteProtocolError(validation_message(exc, f"invalid {method} result")) from None


_TAGGED: list[type[BaseModel] | None] = []


def _tagged_call_tool_result() -> type[BaseModel] | None:
    """``CallToolResult`` with a ``type``-discriminated content union (made on first use; None if impossible)."""
    if not _TAGGED:
        try:
            (union,) = get_args(CallToolResult.model_fields["content"].annotation)
            block = Annotated[union, Field(discriminator="type")]  # type: ignore[valid-type]
            _TAGGED.append(create_model("TaggedCallToolResult", __base__=CallToolResult, content=(list[block], ...)))
        except (TypeError, ValueError, PydanticUserError):  # a block type without a literal tag
            _TAGGED.append(None)
    return _TAGGED[0]


def _as(model: type[_M], validated: BaseModel) -> _M:
    """``validated``'s fields and state in an instance of ``model``, the class it derives from."""
    instance = model.__new__(model)
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        object.__setattr__(instance, name, getattr(validated, name))
    return instance


# --- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Completed:
    """The response to ``request_id`` arrived with ``result``."""

    request_id: RequestId
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failed:
    """``request_id`` ended without a result: a JSON-RPC error, a timeout or a transport failure."""

    request_id: RequestId
    error: TransportError


@dataclass(frozen=True, slots=True)
class Progressed:
    """A progress notification for ``request_id`` (its timeout clock restarted)."""

    request_id: RequestId
    progress: float
    total: float | None
    message: str | None


@dataclass(frozen=True, slots=True)
class LogReceived:
    """A ``notifications/message``."""

    params: LoggingMessageNotificationParams


@dataclass(frozen=True, slots=True)
class ListChanged:
    """The server's ``tools``, ``resources`` or ``prompts`` list changed."""

    kind: Literal["tools", "resources", "prompts"]


@dataclass(frozen=True, slots=True)
class ResourceUpdated:
    """A subscribed resource changed."""

    uri: str


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """The server asks us something (handshake era): answer ``request`` with a response."""

    request: JSONRPCRequest


@dataclass(frozen=True, slots=True)
class ServerRequestCancelled:
    """The server withdrew its request ``request_id``: stop answering it, send no response."""

    request_id: RequestId


@dataclass(frozen=True, slots=True)
class Send:
    """Put ``message`` on the wire (e.g. the ``notifications/cancelled`` of a timed-out request)."""

    message: TransportMessage


@dataclass(frozen=True, slots=True)
class Violation:
    """Something that belongs to no request went wrong (report it; the session goes on)."""

    error: TransportError


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The transport is gone for good; every pending request was failed with ``error``."""

    error: ConnectionClosedError


Event: TypeAlias = (
    Completed
    | Failed
    | Progressed
    | LogReceived
    | ListChanged
    | ResourceUpdated
    | ServerRequest
    | ServerRequestCancelled
    | Send
    | Violation
    | ConnectionLost
)

# --- the request lifecycle --------------------------------------------------------------------------

RequestState: TypeAlias = Literal["begun", "sent"]

REQUEST_STATES: Final[dict[tuple[RequestState | None, str], RequestState | None]] = {
    (None, "begin"): "begun",
    ("begun", "sent"): "sent",
    ("begun", "forget"): None,  # the transport refused it: nothing was sent
    ("sent", "forget"): None,  # its waiter went away without a verdict: stop tracking it
    ("begun", "cancel"): None,
    ("begun", "fail"): None,
    ("sent", "respond"): None,
    ("sent", "fail"): None,
    ("sent", "cancel"): None,
    ("sent", "time out"): None,
}
"""Every transition of one request: ``(state, what happened) -> next state`` (``None``: gone)."""


class _Request:
    """One tracked request (see :data:`REQUEST_STATES`)."""

    __slots__ = ("deadline", "due", "method", "progress", "state", "timeout", "total_timeout")

    def __init__(self, method: str, progress: bool, timeout: float | None, total_timeout: float | None) -> None:
        self.method = method
        self.progress = progress
        self.timeout = timeout  # seconds without a response or progress
        self.total_timeout = total_timeout  # seconds in all, progress or not
        self.deadline: float | None = None  # clock value the total limit ends
        self.due: float | None = None  # clock value this request times out (None: never)
        self.state: RequestState = ClientSession._next(None, "begin")  # type: ignore[assignment]

    def touch(self, now: float) -> None:
        """Restart the inactivity clock (sent, or progress arrived)."""
        due = None if self.timeout is None else now + self.timeout
        if self.deadline is not None:
            due = self.deadline if due is None else min(due, self.deadline)
        self.due = due


class ClientSession:
    """The state of one MCP client session (see the module docstring for the verbs).

    Args:
        client_info: Our name and version.
        capabilities: What we declare; the shell updates it when handlers change.

    Attributes:
        era: ``"modern"``, ``"handshake"`` or ``None`` before negotiation ended.
        protocol_version: The version in use (``None`` before negotiation ended).
        log_level: The level asked for with ``set_logging_level`` (modern: sent in every ``_meta``).
        generation: How many times the session was re-established after expiring.
    """

    def __init__(self, client_info: Implementation, capabilities: ClientCapabilities) -> None:
        self.client_info = client_info
        self._capabilities = capabilities
        self._meta_cache: dict[str, Any] | None = None
        self.era: Era | None = None
        self.protocol_version: str | None = None
        self.log_level: str | None = None
        self.generation = 0
        self._next_id = 0
        self._requests: dict[RequestId, _Request] = {}
        self._late: deque[RequestId] = deque(maxlen=_LATE_MEMORY)
        self._late_set: set[RequestId] = set()

    # -- configuration --------------------------------------------------------------------------------

    @property
    def capabilities(self) -> ClientCapabilities:
        """The capabilities we declare."""
        return self._capabilities

    @capabilities.setter
    def capabilities(self, value: ClientCapabilities) -> None:
        self._capabilities = value
        self._meta_cache = None

    def adopt(self, era: Era, version: str) -> None:
        """Negotiation ended: speak ``version`` of ``era`` from now on."""
        self.era = era
        self.protocol_version = version
        self._meta_cache = None

    def set_log_level(self, level: str | None) -> None:
        """Remember the log level (the modern era sends it in every request's ``_meta``)."""
        self.log_level = level
        self._meta_cache = None

    def _envelope(self, version: str) -> dict[str, Any]:
        """The reserved ``_meta`` entries of a modern request, built once per configuration."""
        cache = self._meta_cache
        if cache is None or cache[PROTOCOL_VERSION_META_KEY] != version:
            cache = {
                PROTOCOL_VERSION_META_KEY: version,
                CLIENT_INFO_META_KEY: dump(self.client_info),
                CLIENT_CAPABILITIES_META_KEY: dump(self._capabilities),
            }
            if self.log_level is not None:
                cache[LOG_LEVEL_META_KEY] = self.log_level
            self._meta_cache = cache
        return cache

    # -- verbs ----------------------------------------------------------------------------------------

    def begin(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        progress: bool = False,
        timeout: float | None = None,
        total_timeout: float | None = None,
        version: str | None = None,
    ) -> JSONRPCRequest:
        """Start a request: its id, the era's envelope and a progress token when ``progress``.

        Args:
            method: The JSON-RPC method.
            params: The params (``_meta`` entries given are kept).
            progress: Ask for progress notifications (the token is the request id).
            timeout: Seconds without a response or progress before it times out (``None``: never).
            total_timeout: Seconds in all before it times out, progress or not (``None``: no limit).
            version: Send it as a modern request of this version (a negotiation probe); by
                default modern requests follow the negotiated era.
        """
        self._next_id += 1
        request_id: RequestId = self._next_id
        body = dict(params) if params else {}
        if version is None and self.era == "modern":
            version = self.protocol_version
        if version is not None or progress:
            meta = dict(body.get("_meta") or {})
            if version is not None:
                meta.update(self._envelope(version))
            if progress:
                meta["progressToken"] = request_id
            body["_meta"] = meta
        self._requests[request_id] = _Request(method, progress, timeout, total_timeout)
        return make_request(request_id, method, body or None)

    def sent(self, request_id: RequestId, now: float) -> None:
        """The transport accepted the request: start its clocks."""
        entry = self._requests.get(request_id)
        if entry is None:
            return
        entry.state = self._next(entry.state, "sent")  # type: ignore[assignment]
        if entry.total_timeout is not None:
            entry.deadline = now + entry.total_timeout
        entry.touch(now)

    def forget(self, request_id: RequestId) -> None:
        """Stop tracking a request without a verdict (the transport refused it, or its waiter left)."""
        entry = self._requests.pop(request_id, None)
        if entry is not None:
            self._next(entry.state, "forget")

    def cancel(self, request_id: RequestId, reason: str) -> JSONRPCNotification | None:
        """Give up on a request; returns the ``notifications/cancelled`` to send, if the server must be told.

        ``initialize`` is never cancelled (the spec forbids it), and a request that was never
        sent needs no notification. A late response to it is dropped quietly.
        """
        entry = self._requests.pop(request_id, None)
        if entry is None:
            return None
        was_sent = entry.state == "sent"
        self._next(entry.state, "cancel")
        self._remember_late(request_id)
        if not was_sent or entry.method == "initialize":
            return None
        return make_notification("notifications/cancelled", {"requestId": request_id, "reason": reason})

    def receive(self, message: TransportMessage, now: float) -> list[Event]:
        """Work out what an incoming message means."""
        if isinstance(message, _Response):
            return self._settle(message.id, Completed(message.id, message.result))
        if isinstance(message, JSONRPCError):
            if message.id is None:
                error = message.error
                text = f"server error without a request id: [{error.code}] {error.message}"
                return [Violation(RemoteProtocolError(text))]
            return self._settle(message.id, Failed(message.id, error_from(message)))
        if isinstance(message, JSONRPCNotification):
            return self._notification(message.method, message.params or {}, now)
        if isinstance(message, JSONRPCRequest):
            return [ServerRequest(message)]
        return [Violation(RemoteProtocolError(f"transport delivered a {type(message).__name__}, not a message"))]

    def fail(self, error: TransportError) -> list[Event]:
        """The transport raised ``error`` from ``receive``: fail what it loses (see :mod:`.errors`)."""
        if error.request_ids:
            events: list[Event] = []
            for request_id in error.request_ids:
                events += self._drop(request_id, error)
            return events
        if isinstance(error, ConnectionClosedError):
            return [*self.close(error), ConnectionLost(error)]
        if isinstance(error, SessionExpiredError):  # requests already sent may or may not have run
            events = [Violation(error)]
            for request_id in [i for i, e in self._requests.items() if e.state == "sent"]:
                events += self._drop(request_id, error)
            return events
        return [Violation(error)]

    def expire(self, now: float) -> list[Event]:
        """Time out every sent request that is due; each gets a :class:`Failed` and (but initialize) a cancel."""
        events: list[Event] = []
        for request_id, entry in list(self._requests.items()):
            if entry.state != "sent" or entry.due is None or entry.due > now:
                continue
            if entry.deadline is not None and now >= entry.deadline:
                why = f"no response within its total limit of {entry.total_timeout} s"
            else:
                why = f"no response or progress within {entry.timeout} s"
            error = RequestTimeoutError(f"{entry.method} (id {request_id}): {why}")
            del self._requests[request_id]
            self._next(entry.state, "time out")
            self._remember_late(request_id)
            events.append(Failed(request_id, error))
            if entry.method != "initialize":
                note = make_notification("notifications/cancelled", {"requestId": request_id, "reason": "timed out"})
                events.append(Send(note))
        return events

    def close(self, error: ConnectionClosedError) -> list[Event]:
        """Fail every pending request with ``error``."""
        events: list[Event] = []
        for request_id in list(self._requests):
            events += self._drop(request_id, error)
        return events

    @property
    def next_deadline(self) -> float | None:
        """The earliest clock value at which a sent request times out, or ``None``."""
        dues = [e.due for e in self._requests.values() if e.state == "sent" and e.due is not None]
        return min(dues) if dues else None

    def pending(self) -> tuple[RequestId, ...]:
        """The requests still waiting (begun or sent)."""
        return tuple(self._requests)

    # -- internals -------------------------------------------------------------------------------------

    @staticmethod
    def _next(state: RequestState | None, what: str) -> RequestState | None:
        try:
            return REQUEST_STATES[(state, what)]
        except KeyError:
            raise LocalProtocolError(f"a request that is {state or 'unknown'} cannot {what}") from None

    def _remember_late(self, request_id: RequestId) -> None:
        if len(self._late) == self._late.maxlen:
            self._late_set.discard(self._late[0])
        self._late.append(request_id)
        self._late_set.add(request_id)

    def _settle(self, request_id: RequestId, outcome: Completed | Failed) -> list[Event]:
        entry = self._requests.pop(request_id, None)
        if entry is None:
            if request_id in self._late_set:
                return []  # it timed out or was cancelled: a late answer is no news
            return [Violation(RemoteProtocolError(f"response for unknown request id {request_id!r}"))]
        self._next(entry.state, "respond" if entry.state == "sent" else "fail")
        return [outcome]

    def _drop(self, request_id: RequestId, error: TransportError) -> list[Event]:
        entry = self._requests.pop(request_id, None)
        if entry is None:
            return []
        self._next(entry.state, "fail")
        return [Failed(request_id, error)]

    def _notification(self, method: str, params: dict[str, Any], now: float) -> list[Event]:
        handler = _NOTIFICATIONS.get(method)
        return handler(self, params, now) if handler is not None else []

    def _on_progress(self, params: dict[str, Any], now: float) -> list[Event]:
        token = params.get("progressToken")
        entry = self._requests.get(token) if _is_id(token) else None
        if entry is None or not entry.progress:
            return []  # progress for a request we no longer wait for
        progress, total, message = params.get("progress"), params.get("total"), params.get("message")
        if not isinstance(progress, int | float):
            return [Violation(RemoteProtocolError(f"progress notification without a numeric progress: {params!r}"))]
        assert _is_id(token)
        entry.touch(now)
        return [
            Progressed(
                token,
                float(progress),
                float(total) if isinstance(total, int | float) else None,
                message if isinstance(message, str) else None,
            )
        ]

    def _on_log(self, params: dict[str, Any], now: float) -> list[Event]:
        try:
            return [LogReceived(LoggingMessageNotificationParams.model_validate(params))]
        except ValidationError:
            return [Violation(RemoteProtocolError(f"invalid notifications/message params: {params!r}"))]

    def _on_updated(self, params: dict[str, Any], now: float) -> list[Event]:
        uri = params.get("uri")
        if isinstance(uri, str):
            return [ResourceUpdated(uri)]
        return [Violation(RemoteProtocolError(f"notifications/resources/updated without a uri: {params!r}"))]

    def _on_cancelled(self, params: dict[str, Any], now: float) -> list[Event]:
        request_id = params.get("requestId")
        return [ServerRequestCancelled(request_id)] if _is_id(request_id) else []


def _is_id(value: object) -> TypeGuard[RequestId]:
    """Whether ``value`` can be a JSON-RPC id (a string or an integer; ``true`` is not 1)."""
    return isinstance(value, int | str) and not isinstance(value, bool)


_NotificationHandler: TypeAlias = Callable[[ClientSession, dict[str, Any], float], list[Event]]

_NOTIFICATIONS: Final[dict[str, _NotificationHandler]] = {
    "notifications/progress": ClientSession._on_progress,
    "notifications/message": ClientSession._on_log,
    "notifications/resources/updated": ClientSession._on_updated,
    "notifications/cancelled": ClientSession._on_cancelled,
    "notifications/tools/list_changed": lambda s, p, n: [ListChanged("tools")],
    "notifications/resources/list_changed": lambda s, p, n: [ListChanged("resources")],
    "notifications/prompts/list_changed": lambda s, p, n: [ListChanged("prompts")],
}
"""What each server notification means; others are ignored."""


def _supported_versions(data: Any) -> tuple[str, ...] | None:
    """The ``supported`` list of a -32022 error's data, or None when it has none."""
    try:
        return tuple(UnsupportedProtocolVersionErrorData.model_validate(data).supported)
    except ValidationError:
        return None


def error_from(message: JSONRPCError) -> MCPError:
    """The exception for a JSON-RPC error response."""
    error = message.error
    if error.code == UNSUPPORTED_PROTOCOL_VERSION:
        supported = _supported_versions(error.data) or ()
        return UnsupportedProtocolVersionError(error.code, error.message, error.data, supported=supported)
    return MCPError(error.code, error.message, error.data)


# --- negotiation --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discover:
    """Next: send ``server/discover`` as a modern request of ``version``."""

    version: str


@dataclass(frozen=True, slots=True)
class Initialize:
    """Next: run the ``initialize`` handshake offering ``version``."""

    version: str


@dataclass(frozen=True, slots=True)
class Modern:
    """Done: speak ``version`` of the 2026-07-28 era with a server described by ``result``."""

    version: str
    result: DiscoverResult
    server_info: Implementation | None
    problem: RemoteProtocolError | None = None  # e.g. a malformed serverInfo: report, go on


@dataclass(frozen=True, slots=True)
class Handshake:
    """Done: the handshake agreed on ``result.protocol_version``; send ``notifications/initialized``."""

    result: InitializeResult


Step: TypeAlias = Discover | Initialize | Modern | Handshake

Outcome: TypeAlias = Literal[
    "modern", "retry other version", "not modern", "speaks nothing we do", "refused", "handshake", "bad handshake"
]

NEGOTIATION: Final[dict[tuple[str, Outcome], str]] = {
    ("discover", "modern"): "done",
    ("discover", "retry other version"): "discover",
    ("discover", "not modern"): "initialize",
    ("discover", "speaks nothing we do"): "fail",
    ("discover", "refused"): "fail",
    ("initialize", "handshake"): "done",
    ("initialize", "bad handshake"): "fail",
    ("initialize", "refused"): "fail",
}
"""The era fallback: ``(phase, outcome of its probe) -> next phase``. A pinned version never falls back."""


class Negotiation:
    """Which protocol version to speak: fed the outcome of each probe, it returns the next :data:`Step`.

    Args:
        pinned: ``None`` negotiates (modern first, then the handshake); a handshake version skips
            ``server/discover`` and requires the server to agree on exactly it; a modern version
            requires ``server/discover`` to list it.

    Raises:
        LocalProtocolError: ``pinned`` is not a known version.
    """

    def __init__(self, pinned: str | None = None) -> None:
        if pinned is not None and pinned not in KNOWN_PROTOCOL_VERSIONS:
            raise LocalProtocolError(
                f"unknown protocol version {pinned!r}; known: {', '.join(KNOWN_PROTOCOL_VERSIONS)}"
            )
        self.pinned = pinned
        self.phase = "initialize" if pinned in HANDSHAKE_PROTOCOL_VERSIONS else "discover"
        self._probed = pinned or LATEST_MODERN_VERSION
        self._retried = False

    def start(self) -> Step:
        """The first probe."""
        if self.phase == "initialize":
            return Initialize(self._handshake_offer())
        return Discover(self._probed)

    def discovered(self, raw: Mapping[str, Any]) -> Step:
        """``server/discover`` answered with ``raw``."""
        try:
            result = DiscoverResult.model_validate(raw)
        except ValidationError as exc:
            if self.pinned is not None:
                raise RemoteProtocolError(validation_message(exc, "invalid server/discover result")) from None
            return self._fall_back()
        if self.pinned is not None and self.pinned not in result.supported_versions:
            raise UnsupportedProtocolVersionError(
                UNSUPPORTED_PROTOCOL_VERSION,
                f"server does not support {self.pinned}; it supports {', '.join(result.supported_versions)}",
                supported=tuple(result.supported_versions),
            )
        mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in result.supported_versions]
        if not mutual:
            return self._fall_back()
        version = self._probed if self._probed in mutual else mutual[-1]
        info, problem = None, None
        raw_info = (result.meta or {}).get(SERVER_INFO_META_KEY)
        if raw_info is not None:
            try:
                info = Implementation.model_validate(raw_info)
            except ValidationError:
                problem = RemoteProtocolError("server/discover carries an invalid serverInfo")
        self._go("modern", None)
        return Modern(version, result, info, problem)

    def discover_failed(self, error: TransportError) -> Step:
        """``server/discover`` failed with ``error`` (raised again when the table says fail)."""
        step = self._go(self._classify(error), error)
        assert step is not None
        return step

    def _fall_back(self) -> Step:
        step = self._go("not modern", None)
        assert step is not None
        return step

    def initialized(self, raw: Mapping[str, Any]) -> Handshake:
        """``initialize`` answered with ``raw``."""
        result: InitializeResult = parse_result(InitializeResult, raw, "initialize")
        acceptable = (self.pinned,) if self.pinned is not None else HANDSHAKE_PROTOCOL_VERSIONS
        if result.protocol_version not in acceptable:
            error = UnsupportedProtocolVersionError(
                UNSUPPORTED_PROTOCOL_VERSION,
                f"server chose protocol version {result.protocol_version!r}; we accept {', '.join(acceptable)}",
                supported=(result.protocol_version,),
            )
            self._go("bad handshake", error)
        self._go("handshake", None)
        return Handshake(result)

    def reinitialize(self) -> Initialize:
        """The session expired: run the handshake again (same offer as the first time)."""
        self.phase = "initialize"
        return Initialize(self._handshake_offer())

    def _handshake_offer(self) -> str:
        return self.pinned if self.pinned in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION

    def _classify(self, error: TransportError) -> Outcome:
        """Which row of :data:`NEGOTIATION` a failed ``server/discover`` falls under."""
        if isinstance(error, UnsupportedProtocolVersionError):
            wanted = (self.pinned,) if self.pinned is not None else MODERN_PROTOCOL_VERSIONS
            mutual = [v for v in wanted if v in (_supported_versions(error.data) or ())]
            if mutual and not self._retried:  # once, even with the version just refused (SEP-2575)
                self._probed = mutual[-1]
                self._retried = True
                return "retry other version"
        if self.pinned is not None:
            return "refused"
        if isinstance(error, UnsupportedProtocolVersionError):
            supported = _supported_versions(error.data)
            if supported is not None and not any(v in HANDSHAKE_PROTOCOL_VERSIONS for v in supported):
                return "speaks nothing we do"
            return "not modern"
        if isinstance(error, MCPError):
            return "refused" if error.code in MODERN_ERROR_CODES else "not modern"
        if isinstance(error, LegacyServerError):
            return "not modern"
        return "refused"

    def _go(self, outcome: Outcome, error: TransportError | None) -> Step | None:
        try:
            nxt = NEGOTIATION[(self.phase, outcome)]
        except KeyError:
            raise LocalProtocolError(f"negotiation in phase {self.phase!r} cannot take {outcome!r}") from None
        self.phase = nxt
        if nxt == "fail":
            assert error is not None
            if outcome == "speaks nothing we do" and isinstance(error, UnsupportedProtocolVersionError):
                raise UnsupportedProtocolVersionError(
                    error.code,
                    f"server speaks only {', '.join(error.supported) or 'nothing'}; we speak "
                    f"{', '.join(KNOWN_PROTOCOL_VERSIONS)}",
                    error.data,
                    supported=error.supported,
                ) from error
            raise error
        if nxt == "discover":
            return Discover(self._probed)
        if nxt == "initialize":
            return Initialize(self._handshake_offer())
        return None  # "done": the caller returns the final step


# --- pure helpers of the shell --------------------------------------------------------------------------


def input_round(method: str, raw: Mapping[str, Any], rounds: int) -> InputRequiredResult | None:
    """The input-required result in ``raw`` (modern era), or ``None`` when the request is complete.

    Raises:
        RemoteProtocolError: The server asked for input more than :data:`MAX_INPUT_ROUNDS` times,
            or the result is malformed.
    """
    if raw.get("resultType") != "input_required":
        return None
    if rounds >= MAX_INPUT_ROUNDS:
        raise RemoteProtocolError(f"{method}: server asked for input more than {MAX_INPUT_ROUNDS} times")
    result: InputRequiredResult = parse_result(InputRequiredResult, raw, method)
    return result


REISSUABLE_METHODS: Final = frozenset(
    {
        "server/discover",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
        "prompts/get",
        "completion/complete",
    }
)
"""Requests that cannot change anything on the server: safe to send again when their answer was lost."""


def reissuable(method: str, params: Mapping[str, Any], tool_hints: Mapping[str, ToolAnnotations | None]) -> bool:
    """Whether a request whose answer was lost (2026-07-28 cannot resume a stream) may be sent again.

    Reads are; so is a ``tools/call`` of a tool the server annotated ``readOnlyHint`` or
    ``idempotentHint`` (from its last ``tools/list``). Nothing else is: it may have run.
    """
    if method in REISSUABLE_METHODS:
        return True
    if method != "tools/call":
        return False
    hints = tool_hints.get(params.get("name"))  # type: ignore[arg-type]
    return hints is not None and bool(hints.read_only_hint or hints.idempotent_hint)


def listen_filter(
    tools: bool, prompts: bool, resources: bool, subscriptions: frozenset[str] | set[str]
) -> dict[str, Any] | None:
    """The ``subscriptions/listen`` filter for what we want to hear about, or ``None`` for nothing."""
    filt: dict[str, Any] = {}
    if tools:
        filt["toolsListChanged"] = True
    if prompts:
        filt["promptsListChanged"] = True
    if resources:
        filt["resourcesListChanged"] = True
    if subscriptions:
        filt["resourceSubscriptions"] = sorted(subscriptions)
    return filt or None

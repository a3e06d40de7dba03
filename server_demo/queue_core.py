"""The queue transport's decisions, with no I/O: stream names, routing, envelopes, exactly-once, reclaims.

The design is the seed's Kafka topic layout on Redis Streams (consumer groups instead of topics):

* ``mcp.requests.<capability>``: requests and notifications, one stream per capability
  (``mcp.requests.global`` for anything); every worker reads ``global`` and its capabilities'
  streams through the consumer group :data:`GROUP`. A ``tools/call`` of ``calc_add`` goes to
  ``mcp.requests.calc`` when a live worker declared ``calc``, else to ``global``.
* ``mcp.responses.<inbox>``: what workers send a client (responses, progress, server-to-client
  requests). A standalone client's inbox is its client id; a front door multiplexes its many
  sessions on one inbox, each message naming its client.
* ``mcp.replies.<worker id>``: the client's answers to a worker's server-to-client requests.
* ``mcp.control``: broadcast to every worker (cancellations, a client closing).
* ``mcp.server.discovery``: a hash, one JSON record per worker (capabilities, status, heartbeat);
  a record whose heartbeat is older than its ``ttl`` is dead (Redis 7.0 has no per-field expiry).
* ``mcp.server.state-key``: the key every worker seals 2026-07-28 ``requestState`` with (the first
  worker sets it with ``SET NX``), so a retry served by another worker opens it.

Every worker can serve any request of any session: the client's envelope carries what the
``initialize`` exchange settled (:class:`SessionInfo`). A response is written at most once per
(client, request id): an "answered" marker set with ``SET NX`` in the same atomic script as the
``XADD`` (see :mod:`server_demo.queue_worker`); the client drops a second response for an id it
has seen (:class:`ResponseDeduper`). A worker that dies mid-call stops extending its entries'
visibility, so after ``visibility_timeout`` another worker claims them (:func:`plan_reclaim`).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

from pyodide_transport.errors import LocalProtocolError, RemoteProtocolError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    decode_message,
    encode_message,
)

__all__ = [
    "ANSWERED_PREFIX",
    "CANCELLED_PREFIX",
    "CONTROL_STREAM",
    "DISCOVERY_KEY",
    "ENVELOPE_VERSION",
    "GLOBAL_CAPABILITY",
    "GROUP",
    "REPLY_PREFIX",
    "REQUEST_PREFIX",
    "RESPONSE_PREFIX",
    "STATE_KEY",
    "ClientCore",
    "ControlEnvelope",
    "Decision",
    "EnvelopeDecodeError",
    "Fields",
    "Outgoing",
    "PendingEntry",
    "ReclaimPlan",
    "ReplyEnvelope",
    "RequestEnvelope",
    "ResponseDeduper",
    "ResponseEnvelope",
    "SessionInfo",
    "WorkerRecord",
    "WriteBatch",
    "answered_key",
    "cancelled_key",
    "capability_of",
    "check_capability",
    "check_id",
    "decide_serve",
    "decode_control",
    "decode_record",
    "decode_reply",
    "decode_request",
    "decode_response",
    "encode_control",
    "encode_record",
    "encode_reply",
    "encode_request",
    "encode_response",
    "live_capabilities",
    "live_workers",
    "plan_reclaim",
    "qualify_id",
    "reply_stream",
    "request_stream",
    "response_stream",
    "route",
    "unqualify_id",
]

REQUEST_PREFIX: Final = "mcp.requests."
RESPONSE_PREFIX: Final = "mcp.responses."
REPLY_PREFIX: Final = "mcp.replies."
CONTROL_STREAM: Final = "mcp.control"
DISCOVERY_KEY: Final = "mcp.server.discovery"
ANSWERED_PREFIX: Final = "mcp.answered."
CANCELLED_PREFIX: Final = "mcp.cancelled."
STATE_KEY: Final = "mcp.server.state-key"
"""The pool's shared ``requestState`` sealing key (hex): a 2026-07-28 retry may reach another worker."""
GLOBAL_CAPABILITY: Final = "global"
GROUP: Final = "mcp-workers"
"""The consumer group every request stream is read through (one group per stream)."""
ENVELOPE_VERSION: Final = "1"

T = TypeVar("T")

Fields: TypeAlias = Mapping[str, str]
"""One stream entry's field/value pairs (decoded to text)."""

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_CAPABILITY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_QUALIFIED = "~"  # between a worker id and its own request id: never in an id (see _ID_RE)


class EnvelopeDecodeError(RemoteProtocolError):
    """A stream entry is not a valid envelope.

    Attributes:
        client: The sender's client id, when the entry names a valid one (it can then be told).
        inbox: The response stream to tell it on, when valid.
        request_id: The JSON-RPC id of the broken request, when it could be read.
    """

    def __init__(
        self, reason: str, *, client: str | None = None, inbox: str | None = None, request_id: RequestId | None = None
    ) -> None:
        super().__init__(reason)
        self.client = client
        self.inbox = inbox
        self.request_id = request_id

    @property
    def addressable(self) -> bool:
        """Whether the sender can be answered (its client id and response stream are known)."""
        return self.client is not None and self.inbox is not None


# -- names ------------------------------------------------------------------------------------------


def check_id(value: str, what: str = "id") -> str:
    """``value`` if it is a valid client, worker or inbox id (letters, digits, ``_.:-``; 1-128 chars).

    Raises:
        LocalProtocolError: It is not.
    """
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise LocalProtocolError(f"invalid {what} {value!r}: use 1-128 letters, digits or _.:- (no leading symbol)")
    return value


def check_capability(name: str) -> str:
    """``name`` if it is a valid capability (lower-case letters, digits, ``-``; no ``_``: it ends a tool prefix).

    Raises:
        LocalProtocolError: It is not, or it is the reserved ``global``.
    """
    if not isinstance(name, str) or not _CAPABILITY_RE.match(name):
        raise LocalProtocolError(f"invalid capability {name!r}: use lower-case letters, digits and '-'")
    if name == GLOBAL_CAPABILITY:
        raise LocalProtocolError("'global' is every worker's stream; it is not a capability to declare")
    return name


def request_stream(capability: str = GLOBAL_CAPABILITY) -> str:
    """The request stream of a capability (``mcp.requests.global`` by default)."""
    return REQUEST_PREFIX + capability


def response_stream(inbox: str) -> str:
    """A client's (or a front door's) response stream."""
    return RESPONSE_PREFIX + inbox


def reply_stream(worker_id: str) -> str:
    """Where a worker reads the answers to its server-to-client requests."""
    return REPLY_PREFIX + worker_id


def _id_text(request_id: RequestId) -> str:
    return json.dumps(request_id)  # 1 and "1" are different ids


def answered_key(client: str, request_id: RequestId) -> str:
    """The "answered" marker of one request (``SET NX`` before its response is written)."""
    return f"{ANSWERED_PREFIX}{client}.{_id_text(request_id)}"


def cancelled_key(client: str, request_id: RequestId) -> str:
    """The marker of a request its client cancelled (a worker that takes it later skips it)."""
    return f"{CANCELLED_PREFIX}{client}.{_id_text(request_id)}"


def qualify_id(worker_id: str, request_id: RequestId) -> str:
    """A worker's server-to-client request id made unique across the pool (``<worker>~<id>``)."""
    return f"{worker_id}{_QUALIFIED}{_id_text(request_id)}"


def unqualify_id(worker_id: str, qualified: RequestId | None) -> RequestId | None:
    """The worker's own id inside a :func:`qualify_id` id, or None when it is not this worker's."""
    prefix = worker_id + _QUALIFIED
    if not isinstance(qualified, str) or not qualified.startswith(prefix):
        return None
    try:
        inner = json.loads(qualified[len(prefix) :])
    except ValueError:
        return None
    return inner if isinstance(inner, str | int) and not isinstance(inner, bool) else None


# -- routing ------------------------------------------------------------------------------------------


def capability_of(message: TransportMessage) -> str | None:
    """The capability a message asks for: a ``tools/call``'s tool-name prefix (``calc`` of ``calc_add``)."""
    if not isinstance(message, JSONRPCRequest) or message.method != "tools/call":
        return None
    name = (message.params or {}).get("name")
    if not isinstance(name, str) or "_" not in name:
        return None
    prefix = name.split("_", 1)[0]
    return prefix if _CAPABILITY_RE.match(prefix) and prefix != GLOBAL_CAPABILITY else None


def route(message: TransportMessage, capabilities: Iterable[str]) -> str:
    """The request stream for ``message``: its capability's if a live worker declared it, else ``global``."""
    wanted = capability_of(message)
    if wanted is not None and wanted in set(capabilities):
        return request_stream(wanted)
    return request_stream()


# -- envelopes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    """What a worker needs to serve a session's request without having seen its ``initialize``.

    Attributes:
        protocol_version: The negotiated version (None: no handshake yet).
        capabilities: The client's declared capabilities (wire form).
        client_info: The client's ``clientInfo`` (wire form), if it sent one.
        log_level: The level of ``logging/setLevel``, if the client set one.
        back_channel: Whether server-to-client requests can reach the client.
    """

    protocol_version: str | None = None
    capabilities: Mapping[str, Any] = field(default_factory=dict)
    client_info: Mapping[str, Any] | None = None
    log_level: str | None = None
    back_channel: bool = True

    def to_json(self) -> str:
        """The compact JSON of the envelope's ``session`` field."""
        obj: dict[str, Any] = {"capabilities": dict(self.capabilities), "backChannel": self.back_channel}
        if self.protocol_version is not None:
            obj["protocolVersion"] = self.protocol_version
        if self.client_info is not None:
            obj["clientInfo"] = dict(self.client_info)
        if self.log_level is not None:
            obj["logLevel"] = self.log_level
        return json.dumps(obj, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SessionInfo:
        """Parse the ``session`` field.

        Raises:
            ValueError: It is not the JSON object :meth:`to_json` writes.
        """
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("session is not a JSON object")
        version, caps, info, level = (obj.get(k) for k in ("protocolVersion", "capabilities", "clientInfo", "logLevel"))
        back = obj.get("backChannel", True)
        if version is not None and not isinstance(version, str):
            raise ValueError("session.protocolVersion is not a string")
        if not isinstance(caps, dict):
            raise ValueError("session.capabilities is not an object")
        if info is not None and not isinstance(info, dict):
            raise ValueError("session.clientInfo is not an object")
        if level is not None and not isinstance(level, str):
            raise ValueError("session.logLevel is not a string")
        if not isinstance(back, bool):
            raise ValueError("session.backChannel is not a boolean")
        return cls(version, caps, info, level, back)


@dataclass(frozen=True)
class RequestEnvelope:
    """A client's message on a request stream: who sent it, where to answer, and the session it belongs to."""

    client: str
    inbox: str
    message: TransportMessage
    session: SessionInfo = field(default_factory=SessionInfo)


@dataclass(frozen=True)
class ResponseEnvelope:
    """A worker's message on a response stream; ``reply_to`` names the worker's reply stream for a request."""

    client: str
    message: TransportMessage
    worker: str
    reply_to: str | None = None


@dataclass(frozen=True)
class ReplyEnvelope:
    """A client's answer to a worker's server-to-client request, on that worker's reply stream."""

    client: str
    message: JSONRPCResponse | JSONRPCError


@dataclass(frozen=True)
class ControlEnvelope:
    """A broadcast to every worker: ``cancel`` one request, or ``close`` a client's session."""

    kind: Literal["cancel", "close"]
    client: str
    message: JSONRPCNotification | None = None


def _text(fields: Fields, name: str, where: str, **address: Any) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise EnvelopeDecodeError(f"{where} entry without a {name!r} field", **address)
    return value


def _valid_id(value: str | None) -> str | None:
    return value if isinstance(value, str) and _ID_RE.match(value) else None


def _message(fields: Fields, where: str, **address: Any) -> TransportMessage:
    text = _text(fields, "msg", where, **address)
    try:
        return decode_message(text)
    except RemoteProtocolError as exc:
        request_id = _sniff_id(text)
        reason = f"{where} entry's msg is not one JSON-RPC message: {exc}"
        raise EnvelopeDecodeError(reason, **address, request_id=request_id) from None


def _sniff_id(text: str) -> RequestId | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None


def _check_version(fields: Fields, where: str, **address: Any) -> None:
    version = fields.get("v")
    if version != ENVELOPE_VERSION:
        reason = f"{where} entry of envelope version {version!r} (expected {ENVELOPE_VERSION})"
        raise EnvelopeDecodeError(reason, **address)


def encode_request(envelope: RequestEnvelope) -> dict[str, str]:
    """The fields of a request-stream entry."""
    return {
        "v": ENVELOPE_VERSION,
        "client": envelope.client,
        "inbox": envelope.inbox,
        "session": envelope.session.to_json(),
        "msg": encode_message(envelope.message),
    }


def decode_request(fields: Fields) -> RequestEnvelope:
    """Read a request-stream entry.

    Raises:
        EnvelopeDecodeError: It is malformed; the error says why and, when it can, whom to tell.
    """
    client = _valid_id(fields.get("client"))
    inbox = _valid_id(fields.get("inbox"))
    address: dict[str, Any] = {"client": client, "inbox": inbox if client is not None else None}
    _check_version(fields, "request", **address)
    if client is None:
        raise EnvelopeDecodeError(f"request entry with an invalid client id {fields.get('client')!r}")
    if inbox is None:
        raise EnvelopeDecodeError(f"request entry with an invalid inbox {fields.get('inbox')!r}", client=client)
    message = _message(fields, "request", **address)
    rid = message.id if isinstance(message, JSONRPCRequest) else None
    if isinstance(message, JSONRPCResponse | JSONRPCError):
        raise EnvelopeDecodeError("a response on a request stream (answers go to the worker's reply stream)", **address)
    try:
        session = SessionInfo.from_json(fields.get("session") or "{}")
    except ValueError as exc:
        raise EnvelopeDecodeError(f"request entry with a bad session field: {exc}", **address, request_id=rid) from None
    return RequestEnvelope(client, inbox, message, session)


def encode_response(envelope: ResponseEnvelope) -> dict[str, str]:
    """The fields of a response-stream entry."""
    fields = {"v": ENVELOPE_VERSION, "client": envelope.client, "worker": envelope.worker}
    if envelope.reply_to is not None:
        fields["replyTo"] = envelope.reply_to
    fields["msg"] = encode_message(envelope.message)
    return fields


def decode_response(fields: Fields) -> ResponseEnvelope:
    """Read a response-stream entry.

    Raises:
        EnvelopeDecodeError: It is malformed (``client`` set when the entry names one).
    """
    client = _valid_id(fields.get("client"))
    address: dict[str, Any] = {"client": client}
    _check_version(fields, "response", **address)
    if client is None:
        raise EnvelopeDecodeError(f"response entry with an invalid client id {fields.get('client')!r}")
    worker = _text(fields, "worker", "response", **address)
    message = _message(fields, "response", **address)
    reply_to = fields.get("replyTo")
    if isinstance(message, JSONRPCRequest):
        if not isinstance(reply_to, str) or not reply_to.startswith(REPLY_PREFIX):
            raise EnvelopeDecodeError("a server-to-client request without a replyTo stream", **address)
        return ResponseEnvelope(client, message, worker, reply_to)
    return ResponseEnvelope(client, message, worker)


def encode_reply(envelope: ReplyEnvelope) -> dict[str, str]:
    """The fields of a reply-stream entry."""
    return {"v": ENVELOPE_VERSION, "client": envelope.client, "msg": encode_message(envelope.message)}


def decode_reply(fields: Fields) -> ReplyEnvelope:
    """Read a reply-stream entry.

    Raises:
        EnvelopeDecodeError: It is malformed or not a response.
    """
    _check_version(fields, "reply")
    client = _valid_id(fields.get("client"))
    if client is None:
        raise EnvelopeDecodeError(f"reply entry with an invalid client id {fields.get('client')!r}")
    message = _message(fields, "reply", client=client)
    if not isinstance(message, JSONRPCResponse | JSONRPCError):
        raise EnvelopeDecodeError("a reply entry that is not a response", client=client)
    return ReplyEnvelope(client, message)


def encode_control(envelope: ControlEnvelope) -> dict[str, str]:
    """The fields of a control-stream entry."""
    fields = {"v": ENVELOPE_VERSION, "kind": envelope.kind, "client": envelope.client}
    if envelope.message is not None:
        fields["msg"] = encode_message(envelope.message)
    return fields


def decode_control(fields: Fields) -> ControlEnvelope:
    """Read a control-stream entry.

    Raises:
        EnvelopeDecodeError: It is malformed.
    """
    _check_version(fields, "control")
    client = _valid_id(fields.get("client"))
    if client is None:
        raise EnvelopeDecodeError(f"control entry with an invalid client id {fields.get('client')!r}")
    kind = fields.get("kind")
    if kind == "close":
        return ControlEnvelope("close", client)
    if kind != "cancel":
        raise EnvelopeDecodeError(f"control entry of unknown kind {kind!r}", client=client)
    message = _message(fields, "control", client=client)
    if not isinstance(message, JSONRPCNotification) or message.method != "notifications/cancelled":
        raise EnvelopeDecodeError("a cancel control entry that is not notifications/cancelled", client=client)
    return ControlEnvelope("cancel", client, message)


# -- the client side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """Where one client message goes: a stream and the entry's fields, plus markers to set first.

    Attributes:
        stream: The stream to ``XADD`` to.
        fields: The entry.
        cancelled: A request id this message cancels (its :func:`cancelled_key` is set too).
    """

    stream: str
    fields: dict[str, str]
    cancelled: RequestId | None = None


class ResponseDeduper:
    """Drops a second response for a request id already answered (bounded memory: the newest ``limit`` ids)."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self.dropped = 0

    def accept(self, message: TransportMessage) -> bool:
        """Whether to deliver ``message`` (False: a duplicate response)."""
        if not isinstance(message, JSONRPCResponse | JSONRPCError) or message.id is None:
            return True
        key = _id_text(message.id)
        if key in self._seen:
            self.dropped += 1
            return False
        self._seen[key] = None
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return True


class ClientCore:
    """One client's protocol state on the queue: session tracking, routing, server-request routes, dedupe.

    Args:
        client: The client id (workers key their sessions by it).
        inbox: The response stream's id (the client id, or a front door's shared inbox).
        protocol_version: Pre-set the negotiated version (a stateless endpoint has no handshake).
        back_channel: Whether this client can answer server-to-client requests.
    """

    def __init__(
        self, client: str, inbox: str, *, protocol_version: str | None = None, back_channel: bool = True
    ) -> None:
        self.client = check_id(client, "client id")
        self.inbox = check_id(inbox, "inbox id")
        self._session = SessionInfo(protocol_version=protocol_version, back_channel=back_channel)
        self._initialize_id: RequestId | None = None
        self._initialize_params: dict[str, Any] = {}
        self._replies: dict[RequestId, str] = {}  # server-request id -> the asking worker's reply stream
        self.deduper = ResponseDeduper()

    @property
    def session(self) -> SessionInfo:
        """What the envelopes currently carry."""
        return self._session

    def adopt(
        self,
        *,
        protocol_version: str | None = None,
        capabilities: Mapping[str, Any] | None = None,
        client_info: Mapping[str, Any] | None = None,
        log_level: str | None = None,
    ) -> None:
        """Take session state settled elsewhere (a session restored from a store); None leaves a field as is."""
        info = self._session
        self._session = _replace(
            info,
            protocol_version=protocol_version if protocol_version is not None else info.protocol_version,
            capabilities=capabilities if capabilities is not None else info.capabilities,
            client_info=client_info if client_info is not None else info.client_info,
            log_level=log_level if log_level is not None else info.log_level,
        )

    def outgoing(self, message: TransportMessage, capabilities: Iterable[str]) -> Outgoing:
        """Where ``message`` goes and as what.

        Raises:
            LocalProtocolError: A response to a server request this client never got.
        """
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            reply = self._replies.pop(message.id, None) if message.id is not None else None
            if reply is None:
                raise LocalProtocolError(f"no worker asked request {message.id!r}: nothing to answer")
            return Outgoing(reply, encode_reply(ReplyEnvelope(self.client, message)))
        if isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            cancelled = (message.params or {}).get("requestId")
            rid = cancelled if isinstance(cancelled, str | int) and not isinstance(cancelled, bool) else None
            fields = encode_control(ControlEnvelope("cancel", self.client, message))
            return Outgoing(CONTROL_STREAM, fields, cancelled=rid)
        if isinstance(message, JSONRPCRequest):
            params = message.params or {}
            if message.method == "initialize":
                self._initialize_id = message.id
                self._initialize_params = params
            elif message.method == "logging/setLevel" and isinstance(params.get("level"), str):
                self._session = _replace(self._session, log_level=params["level"])
        envelope = RequestEnvelope(self.client, self.inbox, message, self._session)
        return Outgoing(route(message, capabilities), encode_request(envelope))

    def incoming(self, envelope: ResponseEnvelope) -> TransportMessage | None:
        """The message to deliver from a response-stream entry, or None (a duplicate response)."""
        message = envelope.message
        if isinstance(message, JSONRPCRequest) and envelope.reply_to is not None:
            self._replies[message.id] = envelope.reply_to
            while len(self._replies) > 1024:  # never answered: forget the oldest
                del self._replies[next(iter(self._replies))]
        if not self.deduper.accept(message):
            return None
        if (
            isinstance(message, JSONRPCResponse)
            and self._initialize_id is not None
            and message.id == self._initialize_id
        ):
            self._adopt_initialize(message.result)
        return message

    def _adopt_initialize(self, result: Mapping[str, Any]) -> None:
        version = result.get("protocolVersion")
        params = self._initialize_params
        caps = params.get("capabilities")
        info = params.get("clientInfo")
        self._session = _replace(
            self._session,
            protocol_version=version if isinstance(version, str) else self._session.protocol_version,
            capabilities=caps if isinstance(caps, dict) else {},
            client_info=info if isinstance(info, dict) else None,
        )
        self._initialize_id = None


def _replace(info: SessionInfo, **changes: Any) -> SessionInfo:
    values = {
        "protocol_version": info.protocol_version,
        "capabilities": info.capabilities,
        "client_info": info.client_info,
        "log_level": info.log_level,
        "back_channel": info.back_channel,
        **changes,
    }
    return SessionInfo(**values)


# -- the worker side ----------------------------------------------------------------------------------

Decision: TypeAlias = Literal["serve", "skip-answered", "skip-cancelled"]


def decide_serve(*, answered: bool, cancelled: bool) -> Decision:
    """Whether a worker runs a request it took: not when it was answered already (a reclaim) or cancelled."""
    if answered:
        return "skip-answered"
    if cancelled:
        return "skip-cancelled"
    return "serve"


@dataclass(frozen=True)
class PendingEntry:
    """One ``XPENDING`` row: an entry delivered to ``consumer`` and not acknowledged."""

    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int


@dataclass(frozen=True)
class ReclaimPlan:
    """What to do with other workers' stalled entries: serve them again, or give up and answer with an error."""

    claim: tuple[str, ...] = ()
    give_up: tuple[str, ...] = ()


def plan_reclaim(
    pending: Sequence[PendingEntry], *, me: str, min_idle_ms: int, max_deliveries: int, own: Iterable[str] = ()
) -> ReclaimPlan:
    """Pick the entries to claim: idle past the visibility timeout, not ours in flight.

    A live worker re-claims its in-flight entries to itself well within the timeout, so only a dead
    (or wedged) worker's entries get that idle. One delivered ``max_deliveries`` times already is a
    poison message (it killed every worker that took it): give up on it.
    """
    mine = set(own)
    claim: list[str] = []
    give_up: list[str] = []
    for entry in pending:
        if entry.idle_ms < min_idle_ms or (entry.consumer == me and entry.entry_id in mine):
            continue
        (give_up if entry.deliveries >= max_deliveries else claim).append(entry.entry_id)
    return ReclaimPlan(tuple(claim), tuple(give_up))


@dataclass(frozen=True)
class WorkerRecord:
    """A worker's discovery record (``mcp.server.discovery``)."""

    worker_id: str
    capabilities: tuple[str, ...]
    status: Literal["online", "draining"]
    heartbeat: float
    ttl: float
    served: Mapping[str, int] = field(default_factory=dict)
    in_flight: int = 0

    def alive(self, now: float) -> bool:
        """Whether the heartbeat is recent enough (a record older than ``ttl`` is a dead worker's)."""
        return now - self.heartbeat <= self.ttl


def encode_record(record: WorkerRecord) -> str:
    """The JSON of a discovery record."""
    return json.dumps(
        {
            "workerId": record.worker_id,
            "capabilities": list(record.capabilities),
            "status": record.status,
            "heartbeat": record.heartbeat,
            "ttl": record.ttl,
            "served": dict(record.served),
            "inFlight": record.in_flight,
        },
        separators=(",", ":"),
    )


def decode_record(text: str) -> WorkerRecord:
    """Parse a discovery record.

    Raises:
        ValueError: It is not one.
    """
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("a discovery record is a JSON object")
    caps = obj.get("capabilities")
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise ValueError("capabilities is not a list of names")
    status = obj.get("status")
    if status not in ("online", "draining"):
        raise ValueError(f"unknown status {status!r}")
    heartbeat, ttl = obj.get("heartbeat"), obj.get("ttl")
    if not isinstance(heartbeat, int | float) or not isinstance(ttl, int | float):
        raise ValueError("heartbeat and ttl are numbers")
    served = obj.get("served") or {}
    if not isinstance(served, dict):
        raise ValueError("served is not an object")
    return WorkerRecord(
        str(obj.get("workerId")),
        tuple(caps),
        status,
        float(heartbeat),
        float(ttl),
        {str(k): int(v) for k, v in served.items()},
        int(obj.get("inFlight") or 0),
    )


def live_workers(records: Mapping[str, str], now: float) -> list[WorkerRecord]:
    """The records (``HGETALL`` of the discovery hash) of workers alive at ``now``; bad records are skipped."""
    alive: list[WorkerRecord] = []
    for text in records.values():
        try:
            record = decode_record(text)
        except ValueError:
            continue
        if record.alive(now):
            alive.append(record)
    return alive


def live_capabilities(records: Mapping[str, str], now: float) -> frozenset[str]:
    """The capabilities some live, online worker declared (what :func:`route` may send to)."""
    return frozenset(c for r in live_workers(records, now) if r.status == "online" for c in r.capabilities)


# -- batching -------------------------------------------------------------------------------------------


class WriteBatch(Generic[T]):
    """The batching decision of the seed's ``BatchingTransport``: queue writes, say when to flush on size.

    The shell flushes when :meth:`add` says the batch is full, else on the next event-loop turn, so a
    burst of writes from many tasks costs one round trip.
    """

    def __init__(self, max_ops: int = 128) -> None:
        if max_ops < 1:
            raise ValueError("max_ops must be at least 1")
        self.max_ops = max_ops
        self._units: deque[T] = deque()
        self._ops = 0

    def __len__(self) -> int:
        return len(self._units)

    @property
    def ops(self) -> int:
        """How many commands are queued."""
        return self._ops

    def add(self, unit: T, ops: int) -> bool:
        """Queue one unit of ``ops`` commands; True when the batch is now full (flush at once)."""
        self._units.append(unit)
        self._ops += ops
        return self._ops >= self.max_ops

    def take(self) -> list[T]:
        """Every queued unit, oldest first; the batch is empty afterwards."""
        units = list(self._units)
        self._units.clear()
        self._ops = 0
        return units

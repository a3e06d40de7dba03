"""Streamable HTTP: an ASGI endpoint around the server core.

One :class:`StreamableHttpEndpoint` serves one path in one mode (see
:mod:`server_demo.config`): stateful with SSE (resumable), stateful with JSON,
or stateless with JSON. Status decisions live in :mod:`server_demo.http_rules`;
this module applies them, keeps the sessions, and routes the core's outgoing
messages to the right SSE stream: a message belonging to a request goes on
that request's POST stream, anything else on the session's standalone GET
stream.

Requests whose ``MCP-Protocol-Version`` is 2026-07-28 (or whose body carries
the modern envelope) take the modern path on the same endpoint: no sessions,
no GET or DELETE (405), header/body consistency checks, one request per POST.

With a *shared* session store (``--store redis://…``: :mod:`server_demo.sse.redis_store`)
several replicas serve the same sessions: any replica restores a session it has
not seen from the store (and checks with the store on every request that the
session still lives), messages that belong to no request go to the session's
standalone stream through the store (whichever replica holds the client's GET),
and a stream this replica does not write, or the standalone stream, is read by
following the store (``tail``) rather than a local queue. Resource subscriptions
live in the store and the replica where a resource changes tells every
subscriber, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import mcp_types as mt
from mcp_types import DEFAULT_NEGOTIATED_VERSION
from mcp_types.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope, Send

from pyodide_transport.errors import ConnectionClosedError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    decode_message,
    decode_or_error,
    encode_message,
    make_notification,
    message_to_obj,
)
from pyodide_transport.wire import MODERN_ERROR_CODES

from .config import StreamableHttpServerConfig
from .core import MessageSink, Server, ServerSession
from .dispatch import duplicate_request_error
from .errors import RequestError
from .http_rules import (
    ALLOWED_METHODS,
    Rejection,
    accepted_types,
    check_accept,
    check_content_type,
    check_handshake_version,
    check_security,
    cors_headers,
    preflight_headers,
)
from .modern import check_param_headers, check_routing_headers, is_modern_request, parse_envelope
from .sse import encode_event, encode_priming_event, parse_event_id
from .sse.event_store import StoreUnavailableError

__all__ = ["ERROR_STATUS", "HttpSession", "SessionCore", "StreamableHttpEndpoint", "read_body"]

logger = logging.getLogger("server_demo.http")

ERROR_STATUS: Final[Mapping[int, int]] = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    **dict.fromkeys(MODERN_ERROR_CODES, 400),
    METHOD_NOT_FOUND: 404,
}
"""HTTP status of a 2026-07-28 JSON error response, by JSON-RPC code (others: 200)."""

_SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
_STATELESS_GET_DELETE: Final = Rejection(
    405, "Method Not Allowed: this endpoint is stateless", headers={"Allow": "POST, OPTIONS"}
)
_STORE_DOWN: Final = Rejection(
    503, "Service Unavailable: the session store cannot be reached", code=None, headers={"Retry-After": "1"}
)
_FINISHED: Final = "finished"
_CLOSE_EARLY: Final = "close-early"
_DISCONNECTED: Final = "disconnected"
_QueueItem = tuple[str | None, TransportMessage] | str


def _is_response(message: TransportMessage) -> bool:
    return isinstance(message, JSONRPCResponse | JSONRPCError)


@dataclass(eq=False)
class _Stream:
    """One response stream: a POST's SSE stream, a POST's JSON collector, or the standalone GET stream."""

    id: str
    json: bool = False
    standalone: bool = False
    pending: set[RequestId] = field(default_factory=set)
    responses: list[TransportMessage] = field(default_factory=list)
    queue: asyncio.Queue[_QueueItem] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    tailed: bool = False
    """Its events are read back from a shared store (another replica may write them), not a local queue."""
    ended: bool = False
    """Its end is marked in the shared store already (with its last response, in one write)."""

    def attach(self) -> asyncio.Queue[_QueueItem]:
        self.queue = asyncio.Queue()
        return self.queue

    def detach(self) -> None:
        self.queue = None

    def finish(self) -> None:
        self.finished.set()
        if self.queue is not None:
            self.queue.put_nowait(_FINISHED)


class HttpSession:
    """One HTTP session (or one stateless POST): the core session plus stream routing."""

    def __init__(
        self,
        endpoint: StreamableHttpEndpoint,
        session_id: str | None,
        *,
        back_channel: bool,
        protocol_version: str | None = None,
        stream_prefix: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.id = session_id
        self.stream_prefix = stream_prefix or (session_id or "x")[:8]
        self.config = endpoint.config
        self.store = self.config.event_store if session_id is not None else None
        self.shared = bool(getattr(self.store, "shared", False))
        self._store_writes: set[asyncio.Task[None]] = set()
        self.streams: dict[str, _Stream] = {}
        self.by_request: dict[RequestId, _Stream] = {}
        self.standalone: _Stream | None = None
        self.last_seen = self.config.clock()
        self._stream_ids = 0
        self.core = endpoint.new_core(
            self._route,
            back_channel=back_channel,
            protocol_version=protocol_version,
            on_request_done=self._request_done,
            on_close_stream=self._close_stream,
            headers=headers or {},
        )
        self.saved_level = getattr(self.core, "log_level", None)
        if self.shared and session_id is not None and isinstance(self.core, ServerSession):
            self.core.subscription_hook = self._subscription_changed
            self.core.request_id_prefix = f"srv-{endpoint.replica}-"

    async def _subscription_changed(self, uri: str, subscribed: bool) -> None:
        assert self.store is not None and self.id is not None
        if subscribed:
            await self.store.subscribe(self.id, uri)  # type: ignore[attr-defined]
        else:
            await self.store.unsubscribe(self.id, uri)  # type: ignore[attr-defined]

    def _spawn(self, write: Any) -> None:
        """Run a store write in the background (from a synchronous callback); :meth:`close` waits for it."""
        task = asyncio.ensure_future(write)
        self._store_writes.add(task)
        task.add_done_callback(self._store_writes.discard)

    # -- streams ----------------------------------------------------------------------------------
    def new_stream(self, *, json_mode: bool = False, standalone: bool = False) -> _Stream:
        """A new response stream (JSON collectors are not remembered: they cannot be resumed)."""
        self._stream_ids += 1
        kind = "g" if standalone else ""  # GET streams are marked so a restarted server can tell them apart
        stream = _Stream(
            id=f"{self.stream_prefix}-{kind}{self._stream_ids}",
            json=json_mode,
            standalone=standalone,
            tailed=standalone and self.shared,
        )
        if not json_mode:
            self.streams[stream.id] = stream
            while len(self.streams) > 1000:  # forget the oldest finished streams
                oldest = next(s for s in self.streams.values())
                if not oldest.finished.is_set():
                    break
                del self.streams[oldest.id]
        return stream

    async def _push(self, stream: _Stream, message: TransportMessage) -> None:
        if stream.json:
            stream.responses.append(message)
            return
        if self.store is None:
            event_id = None
        elif self.shared and _is_response(message) and stream.pending <= {getattr(message, "id", None)}:
            event_id = await self.store.store_last_event(stream.id, message)  # type: ignore[attr-defined]
            stream.ended = True  # the stream's last response: its end goes in the same round trip
        else:
            event_id = await self.store.store_event(stream.id, message)
        if stream.queue is not None and not stream.tailed:
            stream.queue.put_nowait((event_id, message))

    async def _route(self, message: TransportMessage, related: RequestId | None) -> None:
        stream = self.by_request.get(related) if related is not None else None
        if stream is not None and (not stream.json or _is_response(message)):
            await self._push(stream, message)
            if _is_response(message):
                self._settle(related, stream)  # type: ignore[arg-type]
            return
        if self.shared and self.id is not None:  # to the standalone stream, whichever replica reads it
            if await self.store.publish(self.id, message):  # type: ignore[union-attr]
                return
            if isinstance(message, JSONRPCRequest):
                raise ConnectionClosedError(
                    "no SSE stream is open to carry a request to the client (open a GET stream)"
                )
            logger.debug("dropping %s: no stream to carry it", getattr(message, "method", "message"))
            return
        standalone = self.standalone
        if standalone is not None and not standalone.finished.is_set():
            await self._push(standalone, message)
            return
        if isinstance(message, JSONRPCRequest):
            raise ConnectionClosedError("no SSE stream is open to carry a request to the client (open a GET stream)")
        logger.debug("dropping %s: no stream to carry it", getattr(message, "method", "message"))

    def _settle(self, request_id: RequestId, stream: _Stream) -> None:
        if self.by_request.get(request_id) is stream:
            del self.by_request[request_id]
        stream.pending.discard(request_id)
        if not stream.pending:
            self.finish(stream)

    def finish(self, stream: _Stream) -> None:
        """Finish a stream; in a shared store also mark its end, for a replica that follows it."""
        if stream.finished.is_set():
            return
        stream.finish()
        if self.shared and not stream.json and not stream.ended and self.store is not None:
            self._spawn(self.store.end_stream(stream.id))  # type: ignore[attr-defined]

    def _request_done(self, request_id: RequestId) -> None:
        stream = self.by_request.get(request_id)
        if stream is not None:  # ended without a response (cancelled)
            self._settle(request_id, stream)
        level = getattr(self.core, "log_level", None)
        if self.shared and level != self.saved_level:  # logging/setLevel: the other replicas must know
            self.saved_level = level
            self._spawn(self.endpoint.save(self))

    def _close_stream(self, request_id: RequestId) -> None:
        stream = self.by_request.get(request_id)
        if stream is not None and stream.queue is not None and self.store is not None:
            stream.queue.put_nowait(_CLOSE_EARLY)
            stream.detach()

    async def prime(self, stream: _Stream) -> bytes:
        """The priming event of a new SSE stream (stored, so its id can be resumed from)."""
        return (await self.prime_at(stream))[0]

    async def prime_at(self, stream: _Stream) -> tuple[bytes, int]:
        """The priming event and its sequence number (-1 without a store)."""
        if self.store is None:
            return b"", -1
        event_id = await self.store.store_event(stream.id, None)
        parsed = parse_event_id(event_id)
        return encode_priming_event(event_id, self.config.retry_ms), parsed[1] if parsed is not None else -1

    async def feed(self, messages: list[TransportMessage], stream: _Stream | None) -> None:
        """Hand a POST's messages to the core; its requests answer on ``stream``."""
        for message in messages:
            if self.shared and _is_response(message) and await self.endpoint.pass_answer(self, message):
                continue
            if isinstance(message, JSONRPCRequest) and stream is not None and message.id in self.by_request:
                # Refuse the duplicate on its own stream; re-routing the id would strand the original's response.
                await self._push(stream, duplicate_request_error(message.id))
                if not stream.pending:
                    self.finish(stream)
                continue
            if isinstance(message, JSONRPCRequest) and stream is not None:
                stream.pending.add(message.id)
                self.by_request[message.id] = stream
            await self.core.handle(message)

    @property
    def busy(self) -> bool:
        """Whether a request runs or a client reads a stream (so the session is not idle)."""
        return self.core.active_requests > 0 or any(s.queue is not None for s in self.streams.values())

    async def close(self, *, forget: bool = True) -> None:
        """End the session and every stream (``forget=False``: keep its events, e.g. a durable store at shutdown)."""
        await self.core.close()
        for stream in self.streams.values():
            stream.finish()  # not self.finish: another replica may go on writing a shared stream
        if self._store_writes:
            await asyncio.gather(*self._store_writes, return_exceptions=True)
        if forget and self.store is not None and hasattr(self.store, "forget_stream"):
            for stream_id in list(self.streams):
                await self.store.forget_stream(stream_id)


class SessionCore(Protocol):
    """What an :class:`HttpSession` needs of the session behind it (a :class:`ServerSession`, or a gateway's forwarder).

    ``handle`` takes each incoming message; what the session sends goes to the sink it was made
    with, with the id of the request it belongs to.
    """

    protocol_version: str | None
    client_info: mt.Implementation | None
    client_capabilities: mt.ClientCapabilities

    @property
    def active_requests(self) -> int:
        """How many requests are still running."""
        ...

    async def handle(self, message: TransportMessage) -> None:
        """Process one incoming message (requests are started, not awaited)."""
        ...

    async def close(self) -> None:
        """End the session."""
        ...


class StreamableHttpEndpoint:
    """An ASGI app serving one Streamable HTTP endpoint in one mode.

    :meth:`new_core` makes the session behind each HTTP session (and each 2026-07-28 request):
    the demo core here; a subclass may put something else there (the gateway forwards upstream).
    """

    def __init__(self, server: Server, config: StreamableHttpServerConfig) -> None:
        self.server = server
        self.config = config
        self.sessions: dict[str, HttpSession] = {}
        self.replica = secrets.token_hex(4)
        """This process's name among replicas sharing a store."""
        self._inbox: asyncio.Task[None] | None = None
        if self._shared_store() is not None:
            server.on_resource_updated(self._tell_subscribers)

    def new_core(
        self,
        sink: MessageSink,
        *,
        back_channel: bool,
        protocol_version: str | None = None,
        on_request_done: Callable[[RequestId], None] | None = None,
        on_close_stream: Callable[[RequestId], None] | None = None,
        headers: Mapping[str, str],
        sessionless: bool = False,
    ) -> SessionCore:
        """The session behind one HTTP session; ``headers`` are those of the request that opened it.

        ``sessionless``: it serves one 2026-07-28 request and is closed with its answer (or when the
        client closes the response stream: that request's cancellation).
        """
        return ServerSession(
            self.server,
            sink,
            back_channel=back_channel,
            protocol_version=protocol_version,
            on_request_done=on_request_done,
            on_close_stream=on_close_stream,
        )

    # -- ASGI entry ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        rejected = check_security(headers.get("host"), origin, self.config.security)
        if rejected is not None:
            await _send_rejection(send, rejected, {})
            return
        cors = cors_headers(origin, self.config.security)
        method = scope["method"]
        if method == "OPTIONS":
            extra = (
                preflight_headers(origin, headers.get("access-control-request-headers"), self.config.security)
                if origin is not None
                else {"Allow": ALLOWED_METHODS}
            )
            await _send_plain(send, 204, b"", extra)
            return
        if self.sessions:  # the sweep only ends sessions idle past the timeout: skip it when none is
            now, idle = self.config.clock(), self.config.session_idle_timeout
            if any(now - session.last_seen > idle for session in self.sessions.values()):
                await self._expire_idle()
        version = headers.get("mcp-protocol-version")
        if version in MODERN_PROTOCOL_VERSIONS and method != "POST":
            await _send_rejection(send, Rejection(405, "Method Not Allowed", headers={"Allow": "POST, OPTIONS"}), cors)
            return
        if method == "POST":
            await self._post(headers, receive, send, cors)
        elif method == "GET":
            await self._get(headers, receive, send, cors)
        elif method == "DELETE":
            await self._delete(headers, send, cors)
        else:
            allow = ALLOWED_METHODS if self.config.stateful else "POST, OPTIONS"
            await _send_rejection(send, Rejection(405, "Method Not Allowed", headers={"Allow": allow}), cors)

    async def close(self) -> None:
        """Close every session (server shutdown); a durable event store keeps them for the next process."""
        if self._inbox is not None:
            self._inbox.cancel()
        keep = self._durable_store() is not None
        for session_id in list(self.sessions):
            await self._end_session(session_id, forget=not keep)

    def _durable_store(self) -> Any:
        """The event store if it keeps sessions across restarts (see ``sse.sqlite_store``), else None."""
        store = self.config.event_store
        return store if self.config.stateful and getattr(store, "durable", False) else None

    def _shared_store(self) -> Any:
        """The event store if replicas share it (see ``sse.redis_store``), else None."""
        store = self._durable_store()
        return store if getattr(store, "shared", False) else None

    async def pass_answer(self, session: HttpSession, message: TransportMessage) -> bool:
        """Send the answer to a server-to-client request another replica made to that replica; False: ours."""
        request_id = getattr(message, "id", None)
        if not isinstance(request_id, str) or not request_id.startswith("srv-"):
            return False
        replica = request_id.split("-")[1]
        if replica == self.replica:
            return False
        payload = json.dumps({"session": session.id, "message": message_to_obj(message)})
        if not await self._shared_store().send_to_replica(replica, payload):
            logger.info("dropping the answer to %s: replica %s is gone", request_id, replica)
        return True

    async def _listen_to_replicas(self) -> None:
        """Take the answers other replicas pass on to this one, into the session that asked."""
        store = self._shared_store()
        try:
            async for payload in store.replica_inbox(self.replica):
                try:
                    envelope = json.loads(payload)
                    session = self.sessions.get(envelope["session"])
                    decoded = decode_message(json.dumps(envelope["message"]))
                except Exception as exc:  # one bad envelope must not stop the inbox
                    logger.warning("unreadable message from another replica: %s", exc)
                    continue
                if session is not None and _is_response(decoded):
                    await session.core.handle(decoded)
        except Exception as exc:  # Redis went away: answers from other replicas stop; requests here go on
            logger.warning("replica inbox closed: %s", exc)

    def _start_inbox(self) -> None:
        """Listen for answers passed on by other replicas (once, from the first shared session on)."""
        if self._inbox is None and self._shared_store() is not None:
            self._inbox = asyncio.create_task(self._listen_to_replicas())

    async def _tell_subscribers(self, uri: str) -> None:
        """A resource changed on this replica: tell every session subscribed to it, on any replica, once."""
        store = self._shared_store()
        note = make_notification("notifications/resources/updated", {"uri": uri})
        for session_id in await store.subscribers(uri):
            await store.publish(session_id, note)

    # -- sessions -----------------------------------------------------------------------------------
    async def _expire_idle(self) -> None:
        now = self.config.clock()
        keep = self._shared_store() is not None  # the store's TTL ends a shared session; here only our copy goes
        for session_id, session in list(self.sessions.items()):
            if not session.busy and now - session.last_seen > self.config.session_idle_timeout:
                logger.info("session %s expired%s", session_id[:8], " here" if keep else "")
                await self._end_session(session_id, forget=not keep)

    async def _end_session(self, session_id: str, *, forget: bool = True) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        await session.close(forget=forget)
        durable = self._durable_store()
        if forget and durable is not None:
            await durable.forget_session(session_id, session_id[:8] + "-")
        if self.config.on_session_closed is not None:
            self.config.on_session_closed(session_id)

    async def _lookup(self, headers: Mapping[str, str]) -> HttpSession | Rejection:
        try:
            return await self._find(headers)
        except StoreUnavailableError as exc:
            logger.warning("%s", exc)
            return _STORE_DOWN

    async def _find(self, headers: Mapping[str, str]) -> HttpSession | Rejection:
        session_id = headers.get("mcp-session-id")
        if session_id is None:
            return Rejection(400, "Bad Request: Mcp-Session-Id header is required")
        session = self.sessions.get(session_id)
        shared = self._shared_store()
        if shared is not None:
            self._start_inbox()
        if session is not None and shared is not None:
            state = await shared.refresh_session(session_id, self.config.session_idle_timeout)
            if state is None:
                await self._end_session(session_id, forget=False)  # ended (DELETE) or expired on another replica
                return Rejection(404, "Session not found", code=-32001)
            level = state.get("log_level", session.saved_level)
            if level != session.saved_level and isinstance(session.core, ServerSession):
                session.core.log_level = session.saved_level = level  # set on another replica
            session.last_seen = self.config.clock()
            return session
        session = session or await self._restore(session_id)
        if session is None:
            return Rejection(404, "Session not found", code=-32001)
        session.last_seen = self.config.clock()
        return session

    async def _restore(self, session_id: str) -> HttpSession | None:
        """Bring back a session a durable store knows: saved by a previous process, or by another replica."""
        durable = self._durable_store()
        state = await durable.load_session(session_id) if durable is not None else None
        if state is None:
            return None
        prefix = f"{session_id[:8]}-{secrets.token_hex(4)}"  # new streams never reuse a stored stream's id
        session = HttpSession(
            self, session_id, back_channel=True, protocol_version=state["protocol_version"], stream_prefix=prefix
        )
        session.core.client_info = mt.Implementation.model_validate(state["client_info"])
        session.core.client_capabilities = mt.ClientCapabilities.model_validate(state["client_capabilities"])
        if "log_level" in state and isinstance(session.core, ServerSession):
            session.core.log_level = session.saved_level = state["log_level"]
        self.sessions[session_id] = session
        if self._shared_store() is not None:
            await durable.touch_session(session_id, self.config.session_idle_timeout)
        logger.info("session %s restored from the store", session_id[:8])
        return session

    async def save(self, session: HttpSession) -> None:
        """Write a session's state to the durable store (after initialize; after logging/setLevel if shared)."""
        durable = self._durable_store()
        core = session.core
        if durable is None or session.id is None or core.client_info is None:
            return
        state = {
            "protocol_version": core.protocol_version,
            "client_info": core.client_info.model_dump(mode="json", by_alias=True, exclude_none=True),
            "client_capabilities": core.client_capabilities.model_dump(mode="json", by_alias=True, exclude_none=True),
            "log_level": getattr(core, "log_level", None),
        }
        await durable.save_session(session.id, state, self.config.session_idle_timeout)
        self._start_inbox()

    # -- POST ---------------------------------------------------------------------------------------
    async def _post(self, headers: dict[str, str], receive: Receive, send: Send, cors: dict[str, str]) -> None:
        rejected = check_content_type(headers.get("content-type")) or check_accept(
            headers.get("accept"), need_json=True, need_sse=not self.config.json_response
        )
        body = None
        if rejected is None:
            body = await read_body(headers, receive, self.config.max_body_bytes)
            if isinstance(body, Rejection):
                rejected = body
        if rejected is not None or body is None or isinstance(body, Rejection):
            await _send_rejection(send, rejected or Rejection(400, "Bad Request"), cors)
            return
        parsed = _parse_body(body)
        if isinstance(parsed, Rejection):
            await _send_rejection(send, parsed, cors)
            return
        messages, batch = parsed
        version = headers.get("mcp-protocol-version")
        first = messages[0]
        if version in MODERN_PROTOCOL_VERSIONS or (
            not batch and isinstance(first, JSONRPCRequest) and is_modern_request(first.method, first.params)
        ):
            await self._post_modern(headers, first if not batch else None, receive, send, cors)
            return
        rejected = check_handshake_version(version)
        if rejected is None and batch:
            rejected = Rejection(400, "Bad Request: JSON-RPC batches are not supported; send one message per POST")
        if rejected is not None:
            await _send_rejection(send, rejected, cors)
            return
        if isinstance(first, JSONRPCRequest) and first.method == "initialize":
            await self._initialize(headers, first, receive, send, cors)
            return
        if not self.config.stateful:
            session = HttpSession(
                self, None, back_channel=False, protocol_version=version or DEFAULT_NEGOTIATED_VERSION, headers=headers
            )
            try:
                await self._answer(session, messages, headers, receive, send, cors)
            finally:
                await session.close()
            return
        found = await self._lookup(headers)
        if isinstance(found, Rejection):
            await _send_rejection(send, found, cors)
            return
        await self._answer(found, messages, headers, receive, send, {**cors, **self._session_headers(found)})

    def _session_headers(self, session: HttpSession) -> dict[str, str]:
        if session.id is None:
            return {}
        extra = {"Mcp-Session-Id": session.id}
        if session.core.protocol_version is not None:
            extra["MCP-Protocol-Version"] = session.core.protocol_version
        return extra

    async def _initialize(
        self, headers: dict[str, str], request: JSONRPCRequest, receive: Receive, send: Send, cors: dict[str, str]
    ) -> None:
        generator = self.config.session_id_generator
        if generator is not None and "mcp-session-id" in headers:
            await _send_rejection(send, Rejection(400, "Bad Request: initialize must not carry Mcp-Session-Id"), cors)
            return
        if generator is not None and len(self.sessions) >= self.config.max_sessions:
            await _send_rejection(
                send,
                Rejection(503, "Service Unavailable: too many sessions", code=None, headers={"Retry-After": "5"}),
                cors,
            )
            return
        session_id = generator() if generator is not None else None
        session = HttpSession(self, session_id, back_channel=session_id is not None, headers=headers)
        collector = session.new_stream(json_mode=True)
        await session.feed([request], collector)
        await collector.finished.wait()
        response = collector.responses[0]
        if session_id is None or not isinstance(response, JSONRPCResponse):
            await session.close()
            extra = cors
        else:
            session.last_seen = self.config.clock()  # idle from the answer on, not from the request (a slow core)
            self.sessions[session_id] = session
            try:
                await self.save(session)
            except StoreUnavailableError as exc:
                logger.warning("%s", exc)
                await self._end_session(session_id, forget=False)
                await _send_rejection(send, _STORE_DOWN, cors)
                return
            if self.config.on_session_initialized is not None:
                self.config.on_session_initialized(session_id)
            extra = {**cors, **self._session_headers(session)}
        if self.config.json_response:
            await _send_json(send, 200, message_to_obj(response), extra)
            return
        stream = session.new_stream()
        priming = await session.prime(stream)
        event_id = await session.store.store_event(stream.id, response) if session.store is not None else None
        session.finish(stream)
        await _send_start(send, 200, {**_SSE_HEADERS, **extra})
        await _send_body(send, priming + encode_event(response, event_id), more=False)

    async def _answer(
        self,
        session: HttpSession,
        messages: list[TransportMessage],
        headers: Mapping[str, str],
        receive: Receive,
        send: Send,
        extra: dict[str, str],
    ) -> None:
        """Feed a POST's messages and answer: 202, JSON, or an SSE stream.

        A JSON-mode endpoint still streams a request that asked for progress
        (sent a progress token) when the client accepts SSE: JSON cannot carry
        the notifications the client explicitly asked for.
        """
        if not any(isinstance(m, JSONRPCRequest) for m in messages):
            await session.feed(messages, None)
            await _send_plain(send, 202, b"", extra)
            return
        if self.config.json_response and not _wants_progress_stream(messages, headers):
            collector = session.new_stream(json_mode=True)
            await session.feed(messages, collector)
            if not collector.finished.is_set():
                await asyncio.sleep(0)  # most requests answer within one loop turn: then no waiter tasks at all
            if not collector.finished.is_set() and not await _wait_or_disconnect(collector.finished.wait(), receive):
                return
            responses = collector.responses
            if len(responses) == 1 and isinstance(responses[0], JSONRPCResponse):
                body = encode_message(responses[0]).encode()  # a result dict serialized already: no model dump
                await _send_plain(send, 200, body, {**extra, "Content-Type": "application/json"})
            elif responses:
                payload = [message_to_obj(m) for m in responses]
                await _send_json(send, 200, payload[0] if len(payload) == 1 else payload, extra)
            else:
                await _send_plain(send, 202, b"", extra)  # every request was cancelled
            return
        stream = session.new_stream()
        queue = stream.attach()
        priming = await session.prime(stream)
        await session.feed(messages, stream)
        if queue.empty():
            await asyncio.sleep(0)  # as above: a request answered within one loop turn is written in one go
        chunks = [priming]
        while not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, str):  # finished (or closed early): the whole stream is in hand
                break
            event_id, message = item
            chunks.append(encode_event(message, event_id))
        else:  # still running: stream the rest as it comes (no event was skipped: skip_through is -1)
            await self._write_stream(stream, queue, send, receive, extra, b"".join(chunks))
            return
        body = b"".join(chunks)
        await _send_start(send, 200, {**_SSE_HEADERS, **extra, "Content-Length": str(len(body))})  # not chunked
        try:
            await _send_body(send, body, more=False)
        except OSError:
            pass  # the client went away: as in _write_stream, the events stay in the store
        finally:
            if stream.queue is queue and (stream.finished.is_set() or stream.tailed):
                stream.detach()

    async def _write_stream(
        self,
        stream: _Stream,
        queue: asyncio.Queue[_QueueItem],
        send: Send,
        receive: Receive,
        extra: dict[str, str],
        head: bytes,
        skip_through: int = -1,
        tail: Any = None,
    ) -> None:
        """Write an SSE stream until it finishes, is closed early, or the client goes away.

        A client that goes away does not cancel anything: the stream's later
        events wait in the event store for a resumption. ``tail``: the shared
        store to follow for a tailed stream (its events after ``skip_through``).
        """
        await _send_start(send, 200, {**_SSE_HEADERS, **extra})
        await _send_body(send, head)
        watcher = asyncio.create_task(_watch_disconnect(receive, queue))
        follower = asyncio.create_task(_follow(tail, stream.id, skip_through, queue)) if tail is not None else None
        try:
            while True:
                item = await queue.get()
                if isinstance(item, str):
                    if item == _DISCONNECTED and stream.queue is queue:
                        stream.detach()
                    break
                event_id, message = item
                if event_id is not None:
                    parsed = parse_event_id(event_id)
                    if parsed is not None and parsed[1] <= skip_through:
                        continue  # already replayed from the store
                try:
                    await _send_body(send, encode_event(message, event_id))
                except OSError:
                    if stream.queue is queue:
                        stream.detach()
                    return
            with contextlib.suppress(OSError):
                await _send_body(send, b"", more=False)
        finally:
            watcher.cancel()
            if follower is not None:
                follower.cancel()
            if stream.queue is queue and (stream.finished.is_set() or stream.tailed):
                stream.detach()

    # -- GET ----------------------------------------------------------------------------------------
    async def _get(self, headers: dict[str, str], receive: Receive, send: Send, cors: dict[str, str]) -> None:
        if not self.config.stateful:
            await _send_rejection(send, _STATELESS_GET_DELETE, cors)
            return
        rejected = check_accept(headers.get("accept"), need_json=False, need_sse=True) or check_handshake_version(
            headers.get("mcp-protocol-version")
        )
        if rejected is not None:
            await _send_rejection(send, rejected, cors)
            return
        found = await self._lookup(headers)
        if isinstance(found, Rejection):
            await _send_rejection(send, found, cors)
            return
        session = found
        extra = {**cors, **self._session_headers(session)}
        last_event_id = headers.get("last-event-id")
        if last_event_id is not None:
            await self._resume(session, last_event_id, receive, send, extra)
            return
        current = session.standalone
        if current is not None and current.queue is not None and not current.finished.is_set():
            await _send_rejection(
                send, Rejection(409, "Conflict: a standalone SSE stream is already open for this session"), extra
            )
            return
        if current is not None:
            session.finish(current)
        stream = session.new_stream(standalone=True)
        session.standalone = stream
        queue = stream.attach()
        priming, seq = await session.prime_at(stream)
        shared = self._shared_store()
        if shared is not None and session.id is not None:
            replaced = await shared.set_standalone(session.id, stream.id)
            if replaced is not None:
                await shared.end_stream(replaced)  # its reader, on whichever replica, ends
        follow = shared if stream.tailed else None
        await self._write_stream(stream, queue, send, receive, extra, priming, seq if follow else -1, follow)

    async def _resume(
        self, session: HttpSession, last_event_id: str, receive: Receive, send: Send, extra: dict[str, str]
    ) -> None:
        parsed = parse_event_id(last_event_id)
        stream = session.streams.get(parsed[0]) if parsed is not None else None
        if stream is None and parsed is not None:
            stream = await self._adopt_stream(session, parsed[0])
        if stream is None or session.store is None or parsed is None:
            await _send_rejection(send, Rejection(400, "Bad Request: unknown Last-Event-ID for this session"), extra)
            return
        if stream.queue is not None:
            await _send_rejection(send, Rejection(409, "Conflict: this stream is already being read"), extra)
            return
        queue = stream.attach()  # live events from now on; the store covers everything before
        replayed: list[bytes] = []
        last_seq = parsed[1]

        async def collect(event_id: str, message: TransportMessage) -> None:
            nonlocal last_seq
            replayed.append(encode_event(message, event_id))
            seq = parse_event_id(event_id)
            if seq is not None:
                last_seq = max(last_seq, seq[1])

        await session.store.replay_events_after(last_event_id, collect)
        if stream.finished.is_set():
            queue.put_nowait(_FINISHED)
        follow = session.store if stream.tailed and not stream.finished.is_set() else None
        await self._write_stream(stream, queue, send, receive, extra, b"".join(replayed), last_seq, follow)

    async def _adopt_stream(self, session: HttpSession, stream_id: str) -> _Stream | None:
        """A stream of this session that only the durable store knows (written by a previous process).

        A GET stream comes back to life as the session's standalone stream; a
        POST stream is finished (its request ended with that process): replay only.
        In a shared store another replica may still write it: it is followed until its end.
        """
        durable = self._durable_store()
        if durable is None or session.id is None or not stream_id.startswith(session.id[:8] + "-"):
            return None
        if not await durable.has_stream(stream_id):
            return None
        standalone = stream_id.rpartition("-")[2].startswith("g")
        if session.shared:
            stream = _Stream(id=stream_id, standalone=standalone, tailed=True)
            session.streams[stream_id] = stream
            return stream
        stream = _Stream(id=stream_id, standalone=standalone)
        session.streams[stream_id] = stream
        current = session.standalone
        if standalone and (current is None or current.finished.is_set()):
            session.standalone = stream
        else:
            stream.finish()
        return stream

    # -- DELETE -------------------------------------------------------------------------------------
    async def _delete(self, headers: dict[str, str], send: Send, cors: dict[str, str]) -> None:
        if not self.config.stateful:
            await _send_rejection(send, _STATELESS_GET_DELETE, cors)
            return
        found = await self._lookup(headers)
        if isinstance(found, Rejection):
            await _send_rejection(send, found, cors)
            return
        assert found.id is not None
        await self._end_session(found.id)
        await _send_plain(send, 200, b"", cors)

    # -- the 2026-07-28 path --------------------------------------------------------------------------
    async def _post_modern(
        self,
        headers: dict[str, str],
        message: TransportMessage | None,
        receive: Receive,
        send: Send,
        cors: dict[str, str],
    ) -> None:
        if message is None or _is_response(message):
            rejected = Rejection(400, "Bad Request: send one JSON-RPC request or notification per POST")
            await _send_rejection(send, rejected, cors)
            return
        if isinstance(message, JSONRPCNotification):
            version = headers.get("mcp-protocol-version")
            if version not in MODERN_PROTOCOL_VERSIONS:
                await _send_rejection(send, check_handshake_version(version) or Rejection(400, "Bad Request"), cors)
                return
            await _send_plain(send, 202, b"", cors)
            return
        assert isinstance(message, JSONRPCRequest)
        ladder = _modern_ladder(message, headers, self.server)
        if ladder is None and message.method == "subscriptions/listen":
            ladder = check_accept(headers.get("accept"), need_json=False, need_sse=True)
        if ladder is not None:
            await _send_json(send, ladder.status, message_to_obj(ladder.error(message.id)), cors)
            return
        queue: asyncio.Queue[TransportMessage] = asyncio.Queue()

        async def sink(out: TransportMessage, related: RequestId | None) -> None:
            if related == message.id:
                queue.put_nowait(out)

        core = self.new_core(sink, back_channel=False, headers=headers, sessionless=True)
        try:
            await core.handle(message)
            use_sse = (
                not self.config.json_response
                or message.method == "subscriptions/listen"
                or _wants_progress_stream([message], headers)
            )
            first = await _wait_or_disconnect(queue.get(), receive)
            if first is None:
                return  # the client closed the stream: that is the cancellation
            if _is_response(first) or not use_sse:
                while not _is_response(first):
                    first = await queue.get()
                status = ERROR_STATUS.get(first.error.code, 200) if isinstance(first, JSONRPCError) else 200
                await _send_json(send, status, message_to_obj(first), cors)
                return
            stream_queue: asyncio.Queue[_QueueItem] = asyncio.Queue()
            stream_queue.put_nowait((None, first))

            async def pump() -> None:
                while True:
                    out = await queue.get()
                    stream_queue.put_nowait((None, out))
                    if _is_response(out):
                        stream_queue.put_nowait(_FINISHED)
                        return

            pumping = asyncio.create_task(pump())
            try:
                await self._write_stream(_Stream("modern"), stream_queue, send, receive, cors, b"")
            finally:
                pumping.cancel()
        finally:
            await core.close()


def _modern_ladder(request: JSONRPCRequest, headers: Mapping[str, str], server: Server) -> Rejection | None:
    """Envelope shape (-32602), then header consistency (-32020, ``Mcp-Param-*`` too), then version (-32022)."""
    version_error: RequestError | None = None
    try:
        parse_envelope(request.params)
    except RequestError as exc:
        if exc.code != UNSUPPORTED_PROTOCOL_VERSION:
            return _bad_request(exc)
        version_error = exc
    try:
        check_routing_headers(request.method, request.params, headers)
        tool = server.tools.get(str((request.params or {}).get("name"))) if request.method == "tools/call" else None
        if tool is not None:
            check_param_headers(tool.input_schema, request.params, headers)
    except RequestError as exc:
        return _bad_request(exc)
    return _bad_request(version_error) if version_error is not None else None


def _bad_request(exc: RequestError) -> Rejection:
    """A 400 whose JSON-RPC error is ``exc``."""
    return Rejection(400, exc.message, code=exc.code, data=exc.data)


def _wants_progress_stream(messages: list[TransportMessage], headers: Mapping[str, str]) -> bool:
    """Whether a request asked for progress and the client accepts an SSE answer."""
    if not accepted_types(headers.get("accept"))[1]:
        return False
    for message in messages:
        if isinstance(message, JSONRPCRequest):
            meta = (message.params or {}).get("_meta")
            if isinstance(meta, dict) and meta.get("progressToken") is not None:
                return True
    return False


def _parse_body(body: bytes) -> tuple[list[TransportMessage], bool] | Rejection:
    """Decode a POST body into messages (and whether it was a batch), or a 400 (id null: no request is answered)."""
    decoded = decode_or_error(body, allow_batch=True, what="body")
    if isinstance(decoded, JSONRPCError):
        return Rejection(400, decoded.error.message, code=decoded.error.code)
    return decoded


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes | Rejection:
    """The whole request body, or a rejection: 413 past ``limit`` (declared or counted), 400 on a disconnect."""
    too_big = Rejection(413, f"Payload Too Large: the limit is {limit} bytes")
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return too_big
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return Rejection(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return too_big
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _follow(store: Any, stream_id: str, after: int, queue: asyncio.Queue[_QueueItem]) -> None:
    """Feed a tailed stream's events from the shared store into its writer's queue, then its end."""
    try:
        async for event_id, message in store.tail(stream_id, after):
            queue.put_nowait((event_id, message))
    except Exception as exc:  # the store went away: end this response, the client resumes from its last id
        logger.warning("cannot follow stream %s in the store: %s", stream_id, exc)
    queue.put_nowait(_FINISHED)


async def _watch_disconnect(receive: Receive, queue: asyncio.Queue[_QueueItem]) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            queue.put_nowait(_DISCONNECTED)
            return


async def _wait_or_disconnect(awaitable: Any, receive: Receive) -> Any:
    """Await ``awaitable`` unless the client disconnects first (then None)."""
    work = asyncio.ensure_future(awaitable)
    disconnect_queue: asyncio.Queue[_QueueItem] = asyncio.Queue()
    watcher = asyncio.create_task(_watch_disconnect(receive, disconnect_queue))
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            return work.result() if work.result() is not None else True
        work.cancel()
        return None
    finally:
        watcher.cancel()


def _headers_list(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _send_start(send: Send, status: int, headers: Mapping[str, str]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _headers_list(headers)})


async def _send_body(send: Send, body: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def _send_plain(send: Send, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    await _send_start(send, status, {**headers, "Content-Length": str(len(body))})
    await _send_body(send, body, more=False)


async def _send_json(send: Send, status: int, obj: Any, headers: Mapping[str, str]) -> None:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    await _send_plain(send, status, body, {**headers, "Content-Type": "application/json"})


async def _send_rejection(send: Send, rejection: Rejection, headers: Mapping[str, str]) -> None:
    body = rejection.body()
    await _send_plain(
        send, rejection.status, body, {**headers, **rejection.headers, "Content-Type": rejection.media_type}
    )

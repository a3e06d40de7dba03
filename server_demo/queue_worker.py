"""The queue worker: serves the demo core to every client whose requests reach its streams.

``python -m server_demo worker --redis URL [--capability NAME ...] [--visibility-timeout SECONDS]``
runs one. It reads ``mcp.requests.global`` and each capability's stream through the consumer group
:data:`~server_demo.queue_core.GROUP` (``XREADGROUP``), keeps a
:class:`~server_demo.core.ServerSession` per client (made from the envelope's
:class:`~server_demo.queue_core.SessionInfo`, so it serves sessions it never saw the handshake of),
and writes what the session sends to the client's response stream.

A response goes out in one atomic script: ``SET NX`` the "answered" marker, ``XADD`` the response
only when the marker is new, then ``XACK`` and ``XDEL`` the request entry: an entry is acknowledged
only once its response is written, and a request served twice (a worker thought dead finishing
late) is answered once. Every ``visibility_timeout / 3`` the worker re-claims its in-flight entries
to itself (``XCLAIM ... JUSTID``: their idle time restarts) and claims other workers' entries idle
longer than the timeout (``XPENDING IDLE`` then ``XCLAIM`` with the same min-idle time, so two
workers never both win one); :func:`~server_demo.queue_core.plan_reclaim` decides. The worker's
discovery record (``mcp.server.discovery``) is refreshed every ``heartbeat_interval``. Every worker
seals 2026-07-28 ``requestState`` with the pool's key (``mcp.server.state-key``), so a retry
served by another worker opens it.

Server-to-client requests go out with an id qualified by the worker id and a ``replyTo`` naming
``mcp.replies.<worker id>``, which the worker reads together with the control stream
(cancellations, a client closing). A malformed entry is answered with an Invalid Request error
when its sender can be addressed, acknowledged, logged once, and serving goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp_types as mt
import redis.asyncio as aioredis
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST
from pydantic import ValidationError
from redis import exceptions as redis_errors

from pyodide_transport.errors import ConnectionClosedError, TransportError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    error_response,
    make_request,
    make_response,
)

from .core import RequestContext, Server, ServerSession, ToolReturn
from .demo import build_demo_server
from .queue import RESPONSE_TTL_MS, BatchedWriter, Op, raw_command, stream_entries
from .queue_core import (
    CONTROL_STREAM,
    DISCOVERY_KEY,
    GROUP,
    STATE_KEY,
    EnvelopeDecodeError,
    PendingEntry,
    RequestEnvelope,
    ResponseEnvelope,
    SessionInfo,
    WorkerRecord,
    answered_key,
    cancelled_key,
    check_capability,
    check_id,
    decide_serve,
    decode_control,
    decode_reply,
    decode_request,
    encode_record,
    encode_response,
    live_workers,
    plan_reclaim,
    qualify_id,
    reply_stream,
    request_stream,
    response_stream,
    unqualify_id,
)

__all__ = ["ANSWER_SCRIPT", "QueueWorker", "build_worker_server", "main", "parse_args", "register_calc_tools"]

logger = logging.getLogger("server_demo.queue_worker")

RESPONSE_MAXLEN = 10_000

ANSWER_SCRIPT = """
local first = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
if first then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, 7))
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
if ARGV[3] ~= '' then
  redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
  redis.call('XDEL', KEYS[3], ARGV[3])
end
if first then return 1 end
return 0
"""
"""KEYS: marker, response stream, request stream. ARGV: marker TTL ms, group, entry id ('' for none),
unused, response MAXLEN, response TTL ms, then the response entry's field/value pairs. Returns 1 when
this call wrote the response, 0 when the marker was there (another delivery answered already)."""


def register_calc_tools(server: Server) -> None:
    """Tools of the ``calc`` capability (``calc_add``, ``calc_multiply``): what ``--capability calc`` routes."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    }

    @server.tool(
        "calc_add", description="Add two numbers (routed to workers with capability calc).", input_schema=schema
    )
    async def calc_add(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return str(args["a"] + args["b"])

    @server.tool(
        "calc_multiply",
        description="Multiply two numbers (routed to workers with capability calc).",
        input_schema=schema,
    )
    async def calc_multiply(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return str(args["a"] * args["b"])


def build_worker_server(**options: Any) -> Server:
    """The demo server plus the ``calc_`` tools: what every worker (and the front door's checks) serves."""
    server = build_demo_server(**options)
    register_calc_tools(server)
    return server


@dataclass
class _Client:
    """One client's session on this worker, and the entries its running requests came from."""

    session: ServerSession
    inbox: str
    session_json: str = ""
    entries: dict[RequestId, tuple[str, str]] = field(default_factory=dict)
    cancelled: set[RequestId] = field(default_factory=set)
    last_used: float = 0.0


class QueueWorker:
    """One worker of the pool (see the module docstring).

    Args:
        server: The feature registry every session serves.
        redis: The client (``decode_responses=True``).
        worker_id: This worker's consumer name (default ``w-<uuid>``).
        capabilities: Streams served beyond ``global``.
        visibility_timeout: Seconds an entry may sit unacknowledged with a silent owner before another
            worker claims it.
        heartbeat_interval: Seconds between discovery records (default a third of the timeout, at most 2).
        max_in_flight: Requests run at once at most (what one ``XREADGROUP`` may take).
        max_deliveries: Deliveries after which an entry is a poison message (answered with an error).
        answered_ttl: Seconds an "answered" marker lives.
        batching: Batch the stream writes.
        block_ms: How long one blocking read waits (the stop latency).
        session_idle: Seconds an idle client session is kept.
        max_sessions: Client sessions kept at most (the least recently used idle ones go first).
        clock: Wall-clock seconds (discovery heartbeats).
    """

    def __init__(
        self,
        server: Server,
        redis: aioredis.Redis,
        *,
        worker_id: str | None = None,
        capabilities: Sequence[str] = (),
        visibility_timeout: float = 30.0,
        heartbeat_interval: float | None = None,
        max_in_flight: int = 16,
        max_deliveries: int = 5,
        answered_ttl: float = 600.0,
        batching: bool = True,
        block_ms: int = 500,
        session_idle: float = 600.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server = server
        self.redis = redis
        self.worker_id = check_id(worker_id or f"w-{uuid.uuid4().hex[:12]}", "worker id")
        self.capabilities = tuple(dict.fromkeys(check_capability(c) for c in capabilities))
        self.streams = (request_stream(), *(request_stream(c) for c in self.capabilities))
        self.reply_stream = reply_stream(self.worker_id)
        self.visibility_ms = max(1, int(visibility_timeout * 1000))
        self.heartbeat_interval = heartbeat_interval or min(max(visibility_timeout / 3, 0.1), 2.0)
        self.max_in_flight = max_in_flight
        self.max_deliveries = max_deliveries
        self.answered_ttl_ms = int(answered_ttl * 1000)
        self.block_ms = block_ms
        self.session_idle = session_idle
        self.max_sessions = max_sessions
        self.clock = clock
        self.writer = BatchedWriter(redis, batching=batching)
        self.served: dict[str, int] = dict.fromkeys(self.streams, 0)
        self.reclaimed = 0
        self.rejected = 0
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._in_flight: dict[tuple[str, str], tuple[str, RequestId]] = {}
        self._listening: set[tuple[str, str]] = set()  # subscriptions/listen: open for long, no slot taken
        self._room = asyncio.Event()
        self._drained = asyncio.Event()
        self._background: set[asyncio.Future[None]] = set()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the consumer groups, publish the discovery record, start the loops.

        Raises:
            NetworkError: Redis is unreachable.
        """
        await self._create_groups()
        await self._share_state_key()
        await self._heartbeat()
        loop = asyncio.get_running_loop()
        control_from = await self._control_tail()
        self._tasks = [
            loop.create_task(self._read_requests(), name=f"{self.worker_id}-requests"),
            loop.create_task(self._read_replies(control_from), name=f"{self.worker_id}-replies"),
            loop.create_task(self._maintain(), name=f"{self.worker_id}-maintenance"),
        ]

    async def _share_state_key(self) -> None:
        """Seal ``requestState`` with the pool's key (ours if we are first: ``SET NX``), not a key of our own."""
        await self.redis.set(STATE_KEY, self.server.state_key.hex(), nx=True)
        shared = await self.redis.get(STATE_KEY)
        try:
            self.server.state_key = bytes.fromhex(str(shared))
        except ValueError:
            logger.error("worker %s: %s is not hex; sealing with a key of our own", self.worker_id, STATE_KEY)

    async def _create_groups(self) -> None:
        for stream in self.streams:
            try:
                await raw_command(self.redis, "XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
            except redis_errors.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def stop(self, *, drain: float = 3.0) -> None:
        """Stop taking requests, let running ones finish (up to ``drain`` seconds), leave discovery.

        Requests still running then are stopped without an answer and released: their entries' idle
        time is set past the visibility timeout, so another worker claims them at once.
        """
        self._stopping.set()
        with contextlib.suppress(redis_errors.RedisError, OSError):
            await self._heartbeat(status="draining")
        if self._room_left() < self.max_in_flight:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        unfinished = list(self._in_flight)
        for client in list(self._clients.values()):
            await client.session.close()
        self._clients.clear()
        with contextlib.suppress(TransportError):
            await self.writer.drain()
        with contextlib.suppress(TransportError):
            await self._release(unfinished)
        with contextlib.suppress(redis_errors.RedisError, OSError):
            await self.redis.hdel(DISCOVERY_KEY, self.worker_id)
            await self.redis.delete(self.reply_stream)

    async def _release(self, entries: Sequence[tuple[str, str]]) -> None:
        """Hand entries back: ``XCLAIM ... IDLE`` past the timeout, so the next reclaim scan takes them."""
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        idle = self.visibility_ms * 10
        ops: list[Op] = [
            ("XCLAIM", stream, GROUP, self.worker_id, 0, *ids, "IDLE", idle, "JUSTID")
            for stream, ids in by_stream.items()
        ]
        if ops:
            logger.warning("worker %s: released %d unfinished request(s) to the pool", self.worker_id, len(entries))
            await self.writer.write(ops)

    async def run(self, on_ready: Callable[[QueueWorker], None] | None = None, *, drain: float = 3.0) -> None:
        """Start, call ``on_ready``, serve until :meth:`request_stop` (or a loop fails), then :meth:`stop`."""
        await self.start()
        if on_ready is not None:
            on_ready(self)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([stopping, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in self._tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    logger.error("worker %s: a loop failed", self.worker_id, exc_info=task.exception())
        finally:
            stopping.cancel()
            await self.stop(drain=drain)

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop (a signal handler)."""
        self._stopping.set()

    def record(self, status: str = "online") -> WorkerRecord:
        """This worker's discovery record now."""
        ttl = max(self.heartbeat_interval * 3, self.visibility_ms / 1000)
        return WorkerRecord(
            self.worker_id,
            self.capabilities,
            "draining" if status == "draining" else "online",
            self.clock(),
            ttl,
            dict(self.served),
            len(self._in_flight),
        )

    async def _heartbeat(self, status: str | None = None) -> None:
        status = status or ("draining" if self._stopping.is_set() else "online")
        await self.redis.hset(DISCOVERY_KEY, self.worker_id, encode_record(self.record(status)))

    async def _control_tail(self) -> str:
        newest = await self.redis.xrevrange(CONTROL_STREAM, count=1)
        return str(newest[0][0]) if newest else "0-0"

    # -- requests -------------------------------------------------------------------------------------
    async def _read_requests(self) -> None:
        while not self._stopping.is_set():
            room = self._room_left()
            if room <= 0:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), self.block_ms / 1000)
                continue
            try:
                response = await self.redis.xreadgroup(
                    GROUP, self.worker_id, dict.fromkeys(self.streams, ">"), count=room, block=self.block_ms
                )
            except (redis_errors.RedisError, OSError) as exc:
                logger.warning("worker %s: reading requests failed: %s", self.worker_id, exc)
                await asyncio.sleep(0.5)
                if "NOGROUP" in str(exc):  # the streams were deleted (a flushed Redis): start over
                    with contextlib.suppress(redis_errors.RedisError, OSError):
                        await self._create_groups()
                continue
            await self._take(stream_entries(response))

    async def _take(self, entries: list[tuple[str, str, dict[str, str] | None]], *, reclaimed: bool = False) -> None:
        """Decode, check the markers (one round trip for the lot), then serve, skip or reject each entry."""
        good: list[tuple[str, str, RequestEnvelope]] = []
        for stream, entry_id, fields in entries:
            if fields is None:  # deleted while pending: nothing to serve
                await self._ack(stream, entry_id)
                continue
            try:
                good.append((stream, entry_id, decode_request(fields)))
            except EnvelopeDecodeError as exc:
                await self._reject(stream, entry_id, exc)
        checks: list[Op] = []
        for _, _, env in good:
            if isinstance(env.message, JSONRPCRequest):
                checks.append(("EXISTS", answered_key(env.client, env.message.id)))
                checks.append(("EXISTS", cancelled_key(env.client, env.message.id)))
        try:
            marks = await self.writer.write(checks) if checks else []
        except TransportError as exc:
            logger.warning("worker %s: marker check failed (%s); serving anyway", self.worker_id, exc)
            marks = [0] * len(checks)
        at = 0
        for stream, entry_id, env in good:
            if isinstance(env.message, JSONRPCRequest):
                decision = decide_serve(answered=bool(marks[at]), cancelled=bool(marks[at + 1]))
                at += 2
                if decision != "serve":
                    logger.info("worker %s: %s %s (%s)", self.worker_id, decision, env.message.id, entry_id)
                    await self._ack(stream, entry_id)
                    continue
                if reclaimed:
                    self.reclaimed += 1
                    rid = env.message.id
                    logger.info("worker %s: serving reclaimed request %r of %s", self.worker_id, rid, env.client)
            await self._serve(stream, entry_id, env)

    async def _serve(self, stream: str, entry_id: str, env: RequestEnvelope) -> None:
        client = self._client(env)
        message = env.message
        self.served[stream] = self.served.get(stream, 0) + 1
        if isinstance(message, JSONRPCRequest):
            if message.id in client.entries:  # the same id twice at once: the first one answers
                logger.info("worker %s: request %r of %s is running already", self.worker_id, message.id, env.client)
                await self._ack(stream, entry_id)
                return
            client.entries[message.id] = (stream, entry_id)
            self._in_flight[(stream, entry_id)] = (env.client, message.id)
            if message.method == "subscriptions/listen":
                self._listening.add((stream, entry_id))
            try:
                await client.session.handle(message)
            except ConnectionClosedError:
                self._finish(client, message.id)
                await self._ack(stream, entry_id)
            return
        try:
            await client.session.handle(message)
        finally:
            await self._ack(stream, entry_id)

    def _client(self, env: RequestEnvelope) -> _Client:
        """The client's session here (made on its first message); adopts what the envelope says."""
        client = self._clients.get(env.client)
        info = env.session
        if client is None or client.session.closed:
            client = self._new_client(env.client, env.inbox, info)
            self._clients[env.client] = client
            self._evict()
        self._clients.move_to_end(env.client)
        client.inbox = env.inbox
        client.last_used = time.monotonic()
        session_json = info.to_json()
        if session_json != client.session_json:
            client.session_json = session_json
            self._adopt(client.session, info)
        return client

    def _new_client(self, client_id: str, inbox: str, info: SessionInfo) -> _Client:
        holder: list[_Client] = []

        async def sink(message: TransportMessage, related: RequestId | None) -> None:
            await self._send(holder[0], client_id, message)

        def done(request_id: RequestId) -> None:
            current = holder[0]
            if request_id not in current.entries:
                return  # answered
            if request_id in current.cancelled:  # the client cancelled it: no response is due, acknowledge it
                current.cancelled.discard(request_id)
                entry = self._finish(current, request_id)
                assert entry is not None
                task = asyncio.ensure_future(self._ack(*entry))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            # else stopped by our shutdown: left pending for another worker (see stop)

        session = ServerSession(
            self.server,
            sink,
            back_channel=info.back_channel,
            protocol_version=info.protocol_version,
            on_request_done=done,
        )
        client = _Client(session, inbox)
        holder.append(client)
        return client

    @staticmethod
    def _adopt(session: ServerSession, info: SessionInfo) -> None:
        if info.protocol_version is not None:
            session.protocol_version = info.protocol_version
        try:
            session.client_capabilities = mt.ClientCapabilities.model_validate(dict(info.capabilities))
            if info.client_info is not None:
                session.client_info = mt.Implementation.model_validate(dict(info.client_info))
        except ValidationError as exc:
            logger.info("a client's session info does not validate (%s); kept what was there", exc.error_count())
        if info.log_level is not None:
            session.log_level = info.log_level
        session.back_channel = info.back_channel

    def _evict(self) -> None:
        """Close the least recently used idle sessions beyond ``max_sessions`` (their state is in the envelopes)."""
        for client_id in list(self._clients):
            if len(self._clients) <= self.max_sessions:
                return
            client = self._clients[client_id]
            if not client.entries:
                del self._clients[client_id]
                task = asyncio.ensure_future(client.session.close())
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    def _room_left(self) -> int:
        """How many more requests may run (open ``subscriptions/listen`` streams take no slot)."""
        return self.max_in_flight - (len(self._in_flight) - len(self._listening))

    def _finish(self, client: _Client, request_id: RequestId) -> tuple[str, str] | None:
        entry = client.entries.pop(request_id, None)
        if entry is not None:
            self._in_flight.pop(entry, None)
            self._listening.discard(entry)
            self._room.set()
            if self._room_left() >= self.max_in_flight:  # only open listen streams are left
                self._drained.set()
        return entry

    # -- writing --------------------------------------------------------------------------------------
    async def _send(self, client: _Client, client_id: str, message: TransportMessage) -> None:
        """What a session sends: a response answers its entry (once); anything else goes on the response stream."""
        try:
            if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id in client.entries:
                entry = self._finish(client, message.id)
                assert message.id is not None
                await self._answer(client_id, client.inbox, message.id, message, entry)
                return
            await self._publish(client_id, client.inbox, message)
        except TransportError as exc:
            raise ConnectionClosedError(f"cannot write to {response_stream(client.inbox)}: {exc}") from None

    async def _publish(self, client_id: str, inbox: str, message: TransportMessage) -> None:
        """``XADD`` one message to a response stream (a server-to-client request qualified and answered to us)."""
        reply_to = None
        if isinstance(message, JSONRPCRequest):  # unique across the pool, answered on our reply stream
            message = make_request(qualify_id(self.worker_id, message.id), message.method, message.params)
            reply_to = self.reply_stream
        stream = response_stream(inbox)
        fields = encode_response(ResponseEnvelope(client_id, message, self.worker_id, reply_to))
        pairs = [p for item in fields.items() for p in item]
        await self.writer.write(
            [("XADD", stream, "MAXLEN", "~", RESPONSE_MAXLEN, "*", *pairs), ("PEXPIRE", stream, RESPONSE_TTL_MS)]
        )

    async def _answer(
        self,
        client_id: str,
        inbox: str,
        request_id: RequestId,
        message: TransportMessage,
        entry: tuple[str, str] | None,
    ) -> bool:
        """Write the response unless answered already, then acknowledge its entry: one atomic script."""
        stream, entry_id = entry if entry is not None else ("", "")
        fields = encode_response(ResponseEnvelope(client_id, message, self.worker_id))
        pairs = [p for item in fields.items() for p in item]
        keys = (answered_key(client_id, request_id), response_stream(inbox), stream or response_stream(inbox))
        args: tuple[str | int, ...] = (
            self.answered_ttl_ms,
            GROUP,
            entry_id,
            "",
            RESPONSE_MAXLEN,
            RESPONSE_TTL_MS,
            *pairs,
        )
        (wrote,) = await self.writer.write([("EVAL", ANSWER_SCRIPT, 3, *keys, *args)])
        if not wrote:
            logger.info("worker %s: %r of %s was answered already; not again", self.worker_id, request_id, client_id)
        return bool(wrote)

    async def _ack(self, stream: str, entry_id: str) -> None:
        try:
            await self.writer.write([("XACK", stream, GROUP, entry_id), ("XDEL", stream, entry_id)])
        except TransportError as exc:
            logger.warning("worker %s: could not acknowledge %s on %s: %s", self.worker_id, entry_id, stream, exc)

    async def _reject(self, stream: str, entry_id: str, exc: EnvelopeDecodeError) -> None:
        """A malformed entry: tell its sender when it can be addressed, acknowledge it, log it once."""
        self.rejected += 1
        logger.warning("worker %s: malformed entry %s on %s: %s", self.worker_id, entry_id, stream, exc)
        if exc.addressable and exc.client is not None and exc.inbox is not None:
            error = error_response(exc.request_id, INVALID_REQUEST, f"Invalid Request: {exc}")
            try:
                if exc.request_id is not None:
                    await self._answer(exc.client, exc.inbox, exc.request_id, error, (stream, entry_id))
                    return
                await self._publish(exc.client, exc.inbox, error)
            except TransportError as failure:
                logger.warning("worker %s: could not tell %s: %s", self.worker_id, exc.client, failure)
        await self._ack(stream, entry_id)

    # -- replies and control ----------------------------------------------------------------------------
    async def _read_replies(self, control_from: str) -> None:
        cursors = {self.reply_stream: "0-0", CONTROL_STREAM: control_from}
        while True:  # also while draining: running requests may still wait for replies or be cancelled
            try:
                streams: dict[Any, Any] = dict(cursors)
                response = await self.redis.xread(streams, count=128, block=self.block_ms)
            except (redis_errors.RedisError, OSError) as exc:
                logger.warning("worker %s: reading replies failed: %s", self.worker_id, exc)
                await asyncio.sleep(0.5)
                continue
            for stream, entry_id, fields in stream_entries(response):
                cursors[stream] = entry_id
                try:
                    if stream == CONTROL_STREAM:
                        await self._control(fields or {})
                    else:
                        await self._reply(fields or {})
                except EnvelopeDecodeError as exc:
                    logger.warning("worker %s: malformed entry %s on %s: %s", self.worker_id, entry_id, stream, exc)
            with contextlib.suppress(redis_errors.RedisError, OSError):
                if cursors[self.reply_stream] != "0-0":
                    await raw_command(self.redis, "XTRIM", self.reply_stream, "MINID", cursors[self.reply_stream])

    async def _reply(self, fields: dict[str, str]) -> None:
        reply = decode_reply(fields)
        client = self._clients.get(reply.client)
        message = reply.message
        inner = unqualify_id(self.worker_id, message.id)
        if client is None or inner is None:
            logger.info("worker %s: a reply for %s nobody here waits for", self.worker_id, reply.client)
            return
        if isinstance(message, JSONRPCResponse):
            await client.session.handle(make_response(inner, message.result))
        else:
            assert isinstance(message, JSONRPCError)
            error = message.error
            await client.session.handle(error_response(inner, error.code, error.message, error.data))

    async def _control(self, fields: dict[str, str]) -> None:
        control = decode_control(fields)
        client = self._clients.get(control.client)
        if client is None:
            return
        if control.kind == "close":  # nobody reads the answers any more: stop its requests, acknowledge them
            client.cancelled.update(client.entries)
            del self._clients[control.client]
            await client.session.close()
            return
        if control.message is not None:
            cancelled = (control.message.params or {}).get("requestId")
            if isinstance(cancelled, str | int) and cancelled in client.entries:
                client.cancelled.add(cancelled)
            await client.session.handle(control.message)

    # -- visibility, reclaims, heartbeat ----------------------------------------------------------------
    async def _maintain(self) -> None:
        interval = min(self.visibility_ms / 3000, self.heartbeat_interval)
        next_beat = 0.0
        while True:  # also while draining: running requests' entries must stay ours
            try:
                await self._extend()
                await self._reclaim()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.heartbeat_interval
                    await self._heartbeat()
                    await self._prune()
            except (redis_errors.RedisError, OSError, TransportError) as exc:
                logger.warning("worker %s: maintenance failed: %s", self.worker_id, exc)
            await asyncio.sleep(max(interval, 0.02))

    async def _extend(self) -> None:
        """Restart the idle clock of our in-flight entries: a live worker's entries are never claimed."""
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in self._in_flight:
            by_stream.setdefault(stream, []).append(entry_id)
        ops: list[Op] = [("XCLAIM", s, GROUP, self.worker_id, 0, *ids, "JUSTID") for s, ids in by_stream.items()]
        if ops:
            await self.writer.write(ops)

    async def _reclaim(self) -> None:
        if self._stopping.is_set():
            return
        own = {entry_id for _, entry_id in self._in_flight}
        for stream in self.streams:
            room = self._room_left()
            if room <= 0:
                return
            rows = await self.redis.xpending_range(stream, GROUP, "-", "+", room, idle=self.visibility_ms)
            pending = [
                PendingEntry(
                    str(r["message_id"]), str(r["consumer"]), int(r["time_since_delivered"]), int(r["times_delivered"])
                )
                for r in rows
            ]
            plan = plan_reclaim(
                pending, me=self.worker_id, min_idle_ms=self.visibility_ms, max_deliveries=self.max_deliveries, own=own
            )
            if plan.claim:
                claimed = await self.redis.xclaim(stream, GROUP, self.worker_id, self.visibility_ms, list(plan.claim))
                await self._take(stream_entries([(stream, claimed)]), reclaimed=True)
            if plan.give_up:
                claimed = await self.redis.xclaim(stream, GROUP, self.worker_id, self.visibility_ms, list(plan.give_up))
                for _, entry_id, fields in stream_entries([(stream, claimed)]):
                    await self._give_up(stream, entry_id, fields)

    async def _give_up(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
        """A poison message: answer it with an error (once) and acknowledge it."""
        try:
            env = decode_request(fields or {})
        except EnvelopeDecodeError as exc:
            await self._reject(stream, entry_id, exc)
            return
        logger.error("worker %s: giving up on %s after %d deliveries", self.worker_id, entry_id, self.max_deliveries)
        if isinstance(env.message, JSONRPCRequest):
            text = f"the request was delivered {self.max_deliveries} times and no worker finished it"
            error = error_response(env.message.id, INTERNAL_ERROR, text)
            with contextlib.suppress(TransportError):
                await self._answer(env.client, env.inbox, env.message.id, error, (stream, entry_id))
                return
        await self._ack(stream, entry_id)

    async def _prune(self) -> None:
        """Drop discovery records of workers dead for long, and idle client sessions."""
        raw = await self.redis.hgetall(DISCOVERY_KEY)
        records = {str(k): str(v) for k, v in raw.items()}
        alive = {r.worker_id for r in live_workers(records, self.clock() - 10 * self.heartbeat_interval)}
        dead = [w for w in records if w not in alive and w != self.worker_id]
        if dead:
            await self.redis.hdel(DISCOVERY_KEY, *dead)
        now = time.monotonic()
        for client_id, client in list(self._clients.items()):
            if not client.entries and now - client.last_used > self.session_idle:
                del self._clients[client_id]
                await client.session.close()


# -- the command line ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``python -m server_demo worker ...``."""
    parser = argparse.ArgumentParser(prog="python -m server_demo worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", required=True, metavar="URL", help="Redis URL, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--capability", action="append", default=[], metavar="NAME", help="also serve mcp.requests.NAME (repeatable)"
    )
    parser.add_argument(
        "--visibility-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="a dead worker's unacknowledged request is claimed by another after this long (default 30)",
    )
    parser.add_argument("--heartbeat-interval", type=float, default=None, metavar="SECONDS", help="discovery refresh")
    parser.add_argument("--worker-id", default=None, metavar="ID", help="consumer name (default: w-<random>)")
    parser.add_argument("--max-in-flight", type=int, default=16, metavar="N", help="requests run at once (default 16)")
    parser.add_argument(
        "--drain",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="on SIGTERM, let running requests finish this long, then hand them to the pool (default 3)",
    )
    parser.add_argument("--no-batching", action="store_true", help="one round trip per stream write")
    parser.add_argument("--log-level", default="info", help="logging level (default info)")
    args = parser.parse_args(argv)
    try:
        for name in args.capability:
            check_capability(name)
        if args.worker_id is not None:
            check_id(args.worker_id, "worker id")
    except TransportError as exc:
        parser.error(str(exc))
    if args.visibility_timeout <= 0:
        parser.error("--visibility-timeout must be positive")
    return args


async def _serve(args: argparse.Namespace) -> None:
    redis = aioredis.Redis.from_url(args.redis, decode_responses=True)
    worker = QueueWorker(
        build_worker_server(),
        redis,
        worker_id=args.worker_id,
        capabilities=args.capability,
        visibility_timeout=args.visibility_timeout,
        heartbeat_interval=args.heartbeat_interval,
        max_in_flight=args.max_in_flight,
        batching=not args.no_batching,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)

    def ready(w: QueueWorker) -> None:
        streams = ", ".join(w.streams)
        timeout = f"visibility timeout {args.visibility_timeout:g} s"
        print(f"queue worker {w.worker_id} ready: {streams} ({timeout})", flush=True)

    try:
        await worker.run(ready, drain=args.drain)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    """Run one worker until SIGTERM or SIGINT."""
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args))
    except (redis_errors.RedisError, OSError) as exc:
        raise SystemExit(f"python -m server_demo worker: redis: {exc}") from None


if __name__ == "__main__":
    main()

"""The queue transport's client shell: MCP over Redis Streams (``redis.asyncio``).

:class:`QueueClientTransport` is a :class:`~pyodide_transport.transport.Transport`: ``send`` publishes
a request or notification on its capability's request stream (a cancellation on the workers'
control stream, an answer to a worker's request on that worker's reply stream) and ``receive``
returns what the workers wrote on the client's response stream, a second response for one id
dropped. Every decision is :mod:`server_demo.queue_core`'s; this module moves the bytes.

:class:`QueueLink` is the Redis side several transports may share: one connection pool, one
:class:`BatchedWriter` (queued ``XADD`` s go out in one pipeline round trip, flushed when the batch
is full or on the next event-loop turn), one reader of one response stream, demultiplexed by
client id (a front door's many sessions share one), and the cached discovery records that
capability routing reads. Failures are this package's exceptions: Redis unreachable is a
:class:`~pyodide_transport.errors.NetworkError` from ``send``, a lost reader a
:class:`~pyodide_transport.errors.ConnectionClosedError` from ``receive``, a malformed response
entry a :class:`~pyodide_transport.errors.RemoteProtocolError` from ``receive`` (once; reading goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from pyodide_transport.errors import ConnectionClosedError, NetworkError, RemoteProtocolError, TransportError
from pyodide_transport.memory import Inbox
from pyodide_transport.messages import JSONRPCError, JSONRPCResponse, RequestId, TransportMessage

from .queue_core import (
    CONTROL_STREAM,
    DISCOVERY_KEY,
    REPLY_PREFIX,
    ClientCore,
    ControlEnvelope,
    EnvelopeDecodeError,
    ResponseEnvelope,
    WriteBatch,
    cancelled_key,
    check_id,
    decode_response,
    encode_control,
    live_capabilities,
    response_stream,
)

__all__ = [
    "BatchedWriter",
    "Op",
    "QueueClientTransport",
    "QueueLink",
    "connect_queue",
    "redis_failure",
    "stream_entries",
]

logger = logging.getLogger("server_demo.queue")

Op: TypeAlias = tuple[str | int | float, ...]
"""One Redis command and its arguments, as ``execute_command`` takes them."""

REQUEST_MAXLEN = 100_000
"""Approximate cap of a request stream (workers delete what they acknowledged; this is a safety net)."""
CONTROL_MAXLEN = 10_000
RESPONSE_TTL_MS = 10 * 60 * 1000
"""A response or reply stream nobody reads any more expires after this long."""
CANCELLED_TTL_MS = 10 * 60 * 1000


def redis_failure(exc: Exception, what: str) -> TransportError:
    """The package exception for a redis-py one: unreachable is a NetworkError, a refusal a RemoteProtocolError."""
    if isinstance(exc, redis_errors.ResponseError):
        return RemoteProtocolError(f"redis refused {what}: {exc}")
    return NetworkError(f"redis unreachable ({what}): {type(exc).__name__}: {exc}")


def stream_entries(response: Any) -> list[tuple[str, str, dict[str, str] | None]]:
    """``(stream, entry id, fields)`` of an ``XREAD`` / ``XREADGROUP`` reply (RESP2 list or RESP3 dict)."""
    found: list[tuple[str, str, dict[str, str] | None]] = []
    if not response:
        return found
    items = response.items() if isinstance(response, dict) else response
    for stream, entries in items:
        for entry_id, fields in entries:
            found.append((str(stream), str(entry_id), dict(fields) if fields is not None else None))
    return found


async def raw_command(redis: aioredis.Redis, *args: str | int | float) -> Any:
    """One Redis command as is (``execute_command``, which redis-py leaves untyped)."""
    return await redis.execute_command(*args)  # type: ignore[no-untyped-call]


@dataclass
class _Unit:
    ops: Sequence[Op]
    future: asyncio.Future[list[Any]]


class BatchedWriter:
    """Queues writes and sends them in one pipeline round trip (the seed's batching transport).

    Each :meth:`write` is a unit of commands whose results come back together; units queued in
    the same event-loop turn share a round trip; a batch of ``max_ops`` commands goes at once.
    ``batching=False`` sends every unit on its own (the benchmark's baseline).
    """

    def __init__(self, redis: aioredis.Redis, *, max_ops: int = 128, batching: bool = True) -> None:
        self.redis = redis
        self.batching = batching
        self._batch: WriteBatch[_Unit] = WriteBatch(max_ops)
        self._scheduled = False
        self._flushing: set[asyncio.Task[None]] = set()
        self.round_trips = 0
        self.commands = 0

    async def write(self, ops: Sequence[Op]) -> list[Any]:
        """Send ``ops`` (in order, after everything queued before) and return their results.

        Raises:
            NetworkError: Redis is unreachable.
            RemoteProtocolError: Redis refused one of the commands.
        """
        loop = asyncio.get_running_loop()
        unit = _Unit(ops, loop.create_future())
        if not self.batching:
            await self._execute([unit])
        elif self._batch.add(unit, len(ops)):
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await unit.future

    def _flush(self) -> None:
        self._scheduled = False
        units = self._batch.take()
        if units:
            task = asyncio.ensure_future(self._execute(units))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _execute(self, units: list[_Unit]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for unit in units:
            for op in unit.ops:
                pipe.execute_command(*op)
        self.round_trips += 1
        self.commands += sum(len(u.ops) for u in units)
        try:
            results = await pipe.execute(raise_on_error=False)
        except (redis_errors.RedisError, OSError) as exc:
            for unit in units:
                if not unit.future.done():
                    unit.future.set_exception(redis_failure(exc, f"{len(unit.ops)} command(s)"))
            return
        at = 0
        for unit in units:
            mine = results[at : at + len(unit.ops)]
            at += len(unit.ops)
            if unit.future.done():
                continue
            failed = next((r for r in mine if isinstance(r, Exception)), None)
            if failed is not None:
                unit.future.set_exception(redis_failure(failed, str(unit.ops[0][0])))
            else:
                unit.future.set_result(list(mine))

    async def drain(self) -> None:
        """Send what is queued and wait for every round trip in flight."""
        self._flush()
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)


class QueueLink:
    """The Redis side of one or more :class:`QueueClientTransport` s: pool, writer, reader, discovery cache.

    Args:
        redis: The client (``decode_responses=True``).
        inbox: The response stream's id (default: a fresh ``c-<uuid>``); workers write there.
        batching: Batch writes (see :class:`BatchedWriter`).
        max_ops: Commands per batch at most.
        discovery_refresh: Seconds a read of the discovery records is reused for routing.
        block_ms: How long one ``XREAD`` waits (the reader's stop latency).
        clock: Wall-clock seconds (discovery heartbeats are wall-clock times).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        inbox: str | None = None,
        batching: bool = True,
        max_ops: int = 128,
        discovery_refresh: float = 1.0,
        block_ms: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.inbox = check_id(inbox or f"c-{uuid.uuid4().hex}", "inbox id")
        self.stream = response_stream(self.inbox)
        self.writer = BatchedWriter(redis, max_ops=max_ops, batching=batching)
        self._clients: dict[str, QueueClientTransport] = {}
        self._reader: asyncio.Task[None] | None = None
        self._refresh = discovery_refresh
        self._block_ms = block_ms
        self._clock = clock
        self._capabilities: frozenset[str] = frozenset()
        self._fetched = float("-inf")
        self._fetching: asyncio.Future[frozenset[str]] | None = None
        self.closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> QueueLink:
        """A link on its own Redis client (closed with the link)."""
        link = cls(aioredis.Redis.from_url(url, decode_responses=True), **options)
        link._owns_redis = True
        return link

    _owns_redis = False

    def start(self) -> None:
        """Start reading the response stream (idempotent; needs a running loop)."""
        if self._reader is None and not self.closed:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    def register(self, transport: QueueClientTransport) -> None:
        """Deliver what the workers write for ``transport.client_id`` to it."""
        if self.closed:
            raise ConnectionClosedError("the queue link is closed")
        self._clients[transport.client_id] = transport
        self.start()

    def unregister(self, transport: QueueClientTransport) -> None:
        """Stop delivering to ``transport``."""
        if self._clients.get(transport.client_id) is transport:
            del self._clients[transport.client_id]

    async def capabilities(self) -> frozenset[str]:
        """The capabilities live workers declared (cached ``discovery_refresh`` seconds).

        Raises:
            NetworkError: Redis is unreachable.
        """
        now = self._clock()
        if now - self._fetched < self._refresh:
            return self._capabilities
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch_capabilities())
        fetching = self._fetching
        try:
            return await asyncio.shield(fetching)
        finally:
            if self._fetching is fetching and fetching.done():
                self._fetching = None

    async def _fetch_capabilities(self) -> frozenset[str]:
        try:
            raw = await self.redis.hgetall(DISCOVERY_KEY)
        except (redis_errors.RedisError, OSError) as exc:
            raise redis_failure(exc, "reading the discovery records") from None
        records = {str(k): str(v) for k, v in raw.items()}
        self._capabilities = live_capabilities(records, self._clock())
        self._fetched = self._clock()
        return self._capabilities

    async def _read(self) -> None:
        last = "0-0"
        failures = 0
        while not self.closed:
            try:
                response = await self.redis.xread({self.stream: last}, count=256, block=self._block_ms)
                failures = 0
            except asyncio.CancelledError:
                raise
            except (redis_errors.RedisError, OSError) as exc:
                failures += 1
                if failures < 5:  # a blip: redis-py reconnects on the next command
                    await asyncio.sleep(0.1 * failures)
                    continue
                self._fail_all(
                    ConnectionClosedError(f"lost the queue's response stream: {redis_failure(exc, 'XREAD')}")
                )
                return
            entries = stream_entries(response)
            for _, entry_id, fields in entries:
                last = entry_id
                self._dispatch(fields or {})
            if entries:
                with contextlib.suppress(redis_errors.RedisError, OSError):
                    await raw_command(self.redis, "XTRIM", self.stream, "MINID", last)

    def _dispatch(self, fields: dict[str, str]) -> None:
        try:
            envelope = decode_response(fields)
        except EnvelopeDecodeError as exc:
            target = self._clients.get(exc.client) if exc.client is not None else None
            if target is not None:
                target._deliver_error(exc)
            else:
                logger.warning("dropped a malformed entry on %s: %s", self.stream, exc)
            return
        target = self._clients.get(envelope.client)
        if target is None:
            logger.debug("dropped a message for client %s (not here any more)", envelope.client)
            return
        target._deliver(envelope)

    def _fail_all(self, exc: ConnectionClosedError) -> None:
        for transport in list(self._clients.values()):
            transport._lost(exc)

    async def close(self) -> None:
        """Stop reading, close every transport on the link, delete the response stream."""
        if self.closed:
            return
        self.closed = True
        self._fail_all(ConnectionClosedError("the queue link closed"))
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        with contextlib.suppress(TransportError):
            await self.writer.drain()
        with contextlib.suppress(redis_errors.RedisError, OSError):
            await self.redis.delete(self.stream)
        if self._owns_redis:
            with contextlib.suppress(redis_errors.RedisError, OSError):
                await self.redis.aclose()


_Item: TypeAlias = TransportMessage | TransportError | None


class QueueClientTransport:
    """An MCP client's end of the queue: a :class:`~pyodide_transport.transport.Transport`.

    Args:
        link: The Redis side (shared, or this transport's own: see :meth:`connect`).
        client_id: Workers key this client's session by it (default: a fresh ``c-<uuid>``).
        protocol_version: Pre-set the negotiated version (no handshake on this client).
        back_channel: Whether this client answers server-to-client requests.
        owns_link: Close ``link`` with this transport.
    """

    transport_type = "redis-queue"

    def __init__(
        self,
        link: QueueLink,
        *,
        client_id: str | None = None,
        protocol_version: str | None = None,
        back_channel: bool = True,
        owns_link: bool = False,
    ) -> None:
        self.link = link
        self.client_id = client_id or (link.inbox if owns_link else f"c-{uuid.uuid4().hex}")
        self.core = ClientCore(self.client_id, link.inbox, protocol_version=protocol_version, back_channel=back_channel)
        self._inbox: Inbox[_Item] = Inbox()
        self._owns_link = owns_link
        self._closed = False
        self.served_by: dict[RequestId, str] = {}
        """The worker that answered each request (by id; the newest 1024)."""
        link.register(self)

    @classmethod
    async def connect(
        cls, url: str, *, client_id: str | None = None, protocol_version: str | None = None, **options: Any
    ) -> QueueClientTransport:
        """A transport on its own :class:`QueueLink` (its response stream is ``mcp.responses.<client id>``).

        ``protocol_version`` pre-sets the session's version (no ``initialize``); ``options`` are the link's.

        Raises:
            NetworkError: Redis is unreachable.
        """
        link = QueueLink.from_url(url, inbox=client_id, **options)
        try:
            await link.redis.ping()
        except (redis_errors.RedisError, OSError) as exc:
            await link.close()
            raise redis_failure(exc, "PING") from None
        return cls(link, client_id=link.inbox, protocol_version=protocol_version, owns_link=True)

    async def send(self, message: TransportMessage) -> None:
        """Publish one message (see the module docstring for where it goes).

        Raises:
            ConnectionClosedError: The transport is closed.
            LocalProtocolError: An answer to a server request that never came.
            NetworkError: Redis is unreachable.
        """
        if self._closed:
            raise ConnectionClosedError("queue transport is closed")
        out = self.core.outgoing(message, await self.link.capabilities())
        pairs = [part for item in out.fields.items() for part in item]
        maxlen = CONTROL_MAXLEN if out.cancelled is not None else REQUEST_MAXLEN
        ops: list[Op] = [("XADD", out.stream, "MAXLEN", "~", maxlen, "*", *pairs)]
        if out.cancelled is not None:
            ops.append(("SET", cancelled_key(self.client_id, out.cancelled), "1", "PX", CANCELLED_TTL_MS))
        elif out.stream.startswith(REPLY_PREFIX):
            ops.append(("PEXPIRE", out.stream, RESPONSE_TTL_MS))
        await self.link.writer.write(ops)

    async def receive(self) -> TransportMessage:
        """The next message from the workers.

        Raises:
            ConnectionClosedError: Closed (or the reader lost Redis for good).
            RemoteProtocolError: One malformed entry on the response stream (reading goes on).
        """
        if self._closed and self._inbox.empty():
            raise ConnectionClosedError("queue transport is closed")
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)
            raise ConnectionClosedError("queue transport is closed")
        if isinstance(item, ConnectionClosedError):
            self._inbox.put_nowait(item)
            raise item
        if isinstance(item, TransportError):
            raise item
        return item

    def _deliver(self, envelope: ResponseEnvelope) -> None:
        message = self.core.incoming(envelope)
        if message is None:
            logger.info("client %s: dropped a second response from %s", self.client_id, envelope.worker)
            return
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self.served_by[message.id] = envelope.worker
            while len(self.served_by) > 1024:
                del self.served_by[next(iter(self.served_by))]
        self._inbox.put_nowait(message)

    def _deliver_error(self, exc: EnvelopeDecodeError) -> None:
        self._inbox.put_nowait(exc)

    def _lost(self, exc: ConnectionClosedError) -> None:
        if not self._closed:
            self._closed = True
            self._inbox.put_nowait(exc)

    async def close(self) -> None:
        """Tell the workers this session ended, stop receiving (idempotent)."""
        if self._closed and not self._owns_link:
            return
        was_open = not self._closed
        self._closed = True
        self._inbox.put_nowait(None)
        self.link.unregister(self)
        if was_open and not self.link.closed:
            pairs = [p for item in encode_control(ControlEnvelope("close", self.client_id)).items() for p in item]
            with contextlib.suppress(TransportError):
                await self.link.writer.write([("XADD", CONTROL_STREAM, "MAXLEN", "~", CONTROL_MAXLEN, "*", *pairs)])
        if self._owns_link:
            await self.link.close()

    def is_connected(self) -> bool:
        """Whether messages can be sent."""
        return not self._closed


async def connect_queue(url: str, **options: Any) -> QueueClientTransport:
    """``QueueClientTransport.connect(url, ...)``: a client transport on its own link."""
    return await QueueClientTransport.connect(url, **options)

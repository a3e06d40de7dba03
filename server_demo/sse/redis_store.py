"""A :class:`~server_demo.sse.event_store.SessionStore` on Redis, shared by every replica of the server.

Same semantics as the in-memory and SQLite stores (one test suite runs over the
three), plus what replicas need from each other:

* **Events** of an SSE stream are a Redis Stream (``<prefix>ev:<stream id>``):
  the priming event is an entry ``p``, a message an entry ``m`` (its JSON), and
  the end of the stream an entry ``e`` (:meth:`RedisStore.end_stream`). Our event
  id ``<stream>.<n>`` encodes the entry id ``<ms>-<seq>`` as ``n = ms * 10**6 + seq``,
  so ids stay ordered integers and any replica maps one back to its entry.
  :meth:`RedisStore.tail` replays and then follows a stream (``XREAD BLOCK``)
  until its end entry: a replica serves a GET with ``Last-Event-ID`` for a stream
  another replica writes, live.
* **Sessions** are hashes (``<prefix>s:<id>``: ``state`` JSON and the id of the
  session's current standalone GET stream) whose idle expiry is the key's TTL,
  renewed by every request (:meth:`RedisStore.touch_session`).
* **Subscriptions** are a set of sessions per URI and a set of URIs per session;
  :meth:`RedisStore.publish` writes a message to a session's standalone stream,
  whichever replica holds the client's GET.
* **Answers to server-to-client requests** (sampling, elicitation, roots) reach
  the replica that asked, whichever replica the client posted them to: the
  request ids name the replica, and the others hand the answer to its inbox
  (pub/sub, :meth:`RedisStore.send_to_replica`).
* **Secrets** every replica must agree on (the key that signs 2026-07-28
  ``requestState``) are created once (``SET NX``) and read by all
  (:meth:`RedisStore.shared_secret`).

Writes that belong together go in one pipeline (one round trip). Select it with
``python -m server_demo --store redis://HOST:PORT/DB``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import redis
import redis.asyncio as aioredis

from pyodide_transport.messages import TransportMessage, decode_message, encode_message

from .event_store import ReplayCallback, StoreUnavailableError, parse_event_id

__all__ = ["RedisStore", "entry_seq"]

_SEQ_SPAN = 1_000_000
"""Entries per millisecond an event id can tell apart (``XADD`` makes far fewer per stream)."""


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _translated(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Raise :class:`StoreUnavailableError` for the client library's connection errors (the adapter boundary)."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailableError(f"the Redis store cannot be reached: {exc}") from exc

    return wrapper


def entry_seq(entry_id: str | bytes) -> int:
    """Our event sequence number for a Redis Stream entry id ``<ms>-<seq>``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms) * _SEQ_SPAN + int(seq or 0)


def _entry_id(seq: int) -> str:
    """The entry id for one of our sequence numbers (the inverse of :func:`entry_seq`)."""
    if seq < 0:  # before every entry
        return "0-0"
    ms, part = divmod(seq, _SEQ_SPAN)
    return f"{ms}-{part}"


class RedisStore:
    """SSE events, sessions and subscriptions in Redis.

    Args:
        url: ``redis://HOST:PORT/DB``.
        max_events_per_stream: Streams are trimmed (approximately) to this many entries.
        stream_ttl: Seconds a stream with no new event is kept.
        key_prefix: Prefix of every key (several deployments can share one Redis).
        block_ms: How long one ``XREAD BLOCK`` of :meth:`tail` waits before it looks again.

    Attributes:
        durable: True: sessions outlive any one process.
        shared: True: every replica reads and writes the same sessions and streams.
    """

    durable = True
    shared = True

    def __init__(
        self,
        url: str,
        *,
        max_events_per_stream: int = 1000,
        stream_ttl: float = 3600,
        key_prefix: str = "pt:",
        block_ms: int = 5000,
    ) -> None:
        self.url = url
        self.max_events_per_stream = max_events_per_stream
        self.stream_ttl_ms = int(stream_ttl * 1000)
        self.prefix = key_prefix
        self.block_ms = block_ms
        self._redis: Any = aioredis.Redis.from_url(url)  # Any: redis-py's stubs type replies as unions of everything

    # -- keys ---------------------------------------------------------------------------------------
    def _events(self, stream_id: str) -> str:
        return f"{self.prefix}ev:{stream_id}"

    def _session(self, session_id: str) -> str:
        return f"{self.prefix}s:{session_id}"

    def _subscribed(self, uri: str) -> str:
        return f"{self.prefix}sub:{uri}"

    def _session_uris(self, session_id: str) -> str:
        return f"{self.prefix}subs:{session_id}"

    # -- EventStore -----------------------------------------------------------------------------------
    @_translated
    async def store_event(self, stream_id: str, message: TransportMessage | None) -> str:
        """Append an event (``None``: the priming event) and return ``<stream>.<n>``."""
        fields = {"m": encode_message(message)} if message is not None else {"p": ""}
        return f"{stream_id}.{entry_seq(await self._append(stream_id, fields))}"

    @_translated
    async def store_last_event(self, stream_id: str, message: TransportMessage) -> str:
        """Append a stream's last message and its end entry in one round trip; return the message's id."""
        return f"{stream_id}.{entry_seq(await self._append(stream_id, {'m': encode_message(message)}, end=True))}"

    async def _append(self, stream_id: str, fields: dict[str, str], *, end: bool = False) -> bytes:
        key = self._events(stream_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, fields, maxlen=self.max_events_per_stream, approximate=True)
            if end:
                pipe.xadd(key, {"e": ""}, maxlen=self.max_events_per_stream, approximate=True)
            pipe.pexpire(key, self.stream_ttl_ms)
            entry_id = (await pipe.execute())[0]
        assert isinstance(entry_id, bytes)
        return entry_id

    @_translated
    async def replay_events_after(self, last_event_id: str, send: ReplayCallback) -> str | None:
        """Send every message of the stream after ``last_event_id``; None if the id is unknown."""
        parsed = parse_event_id(last_event_id)
        if parsed is None or not await self.has_stream(parsed[0]):
            return None
        stream_id, after = parsed
        entries = await self._redis.xrange(self._events(stream_id), min=f"({_entry_id(after)}", max="+")
        for entry_id, fields in entries:
            text = fields.get(b"m")
            if text is not None:
                await send(f"{stream_id}.{entry_seq(entry_id)}", decode_message(text.decode()))
        return stream_id

    @_translated
    async def end_stream(self, stream_id: str) -> None:
        """Mark a stream finished, so a replica following it (:meth:`tail`) ends its response."""
        await self._append(stream_id, {"e": ""})

    async def tail(self, stream_id: str, after: int) -> AsyncIterator[tuple[str, TransportMessage]]:
        """Every message of the stream after sequence ``after``, live, until its end entry.

        The caller stops it by closing the generator (the client went away).
        """
        key = self._events(stream_id)
        last = _entry_id(after)
        while True:
            try:
                got = await self._redis.xread({key: last}, count=100, block=self.block_ms)
            except (redis.RedisError, OSError) as exc:
                raise StoreUnavailableError(f"the Redis store cannot be reached: {exc}") from exc
            for _, entries in got:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    if b"e" in fields:
                        return
                    text = fields.get(b"m")
                    if text is not None:
                        yield f"{stream_id}.{entry_seq(entry_id)}", decode_message(text.decode())

    @_translated
    async def has_stream(self, stream_id: str) -> bool:
        """Whether the stream exists (it has at least its priming event)."""
        return bool(await self._redis.exists(self._events(stream_id)))

    @_translated
    async def forget_stream(self, stream_id: str) -> None:
        """Drop a stream's events."""
        await self._redis.delete(self._events(stream_id))

    # -- sessions -------------------------------------------------------------------------------------
    @_translated
    async def save_session(self, session_id: str, state: dict[str, Any], ttl: float) -> None:
        """Remember a session's state for ``ttl`` idle seconds (the key's TTL)."""
        key = self._session(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "state", json.dumps(state))
            pipe.pexpire(key, int(ttl * 1000))
            await pipe.execute()

    @_translated
    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        """The state saved for ``session_id``; None if unknown or expired."""
        text = await self._redis.hget(self._session(session_id), "state")
        if text is None:
            return None
        state: dict[str, Any] = json.loads(text)
        return state

    @_translated
    async def touch_session(self, session_id: str, ttl: float) -> bool:
        """Renew the session's TTL; False if the key is gone (expired, or ended by another replica)."""
        return bool(await self._redis.pexpire(self._session(session_id), int(ttl * 1000)))

    @_translated
    async def refresh_session(self, session_id: str, ttl: float) -> dict[str, Any] | None:
        """Renew the session's TTL and read its state in one round trip; None if it is gone."""
        key = self._session(session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(key, "state")
            pipe.pexpire(key, int(ttl * 1000))
            text, renewed = await pipe.execute()
        if text is None or not renewed:
            return None
        state: dict[str, Any] = json.loads(text)
        return state

    @_translated
    async def forget_session(self, session_id: str, stream_prefix: str) -> None:
        """Drop the session, its subscriptions and its streams (found with ``SCAN``: this is rare)."""
        uris = await self._redis.smembers(self._session_uris(session_id))
        keys = [k async for k in self._redis.scan_iter(match=self._events(_glob_escape(stream_prefix)) + "*")]
        async with self._redis.pipeline(transaction=False) as pipe:
            for uri in uris:
                pipe.srem(self._subscribed(uri.decode()), session_id)
            pipe.delete(self._session(session_id), self._session_uris(session_id), *keys)
            await pipe.execute()

    @_translated
    async def set_standalone(self, session_id: str, stream_id: str) -> str | None:
        """Make ``stream_id`` the session's standalone stream; returns the one it replaces."""
        key = self._session(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, "standalone")
            pipe.hset(key, "standalone", stream_id)
            previous, _ = await pipe.execute()
        return previous.decode() if isinstance(previous, bytes) and previous.decode() != stream_id else None

    @_translated
    async def publish(self, session_id: str, message: TransportMessage) -> bool:
        """Write ``message`` to the session's standalone stream; False if it has none (nothing written)."""
        stream_id = await self._redis.hget(self._session(session_id), "standalone")
        if stream_id is None:
            return False
        await self.store_event(stream_id.decode(), message)
        return True

    # -- subscriptions --------------------------------------------------------------------------------
    @_translated
    async def subscribe(self, session_id: str, uri: str) -> None:
        """Record one subscription (both directions, one round trip)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self._subscribed(uri), session_id)
            pipe.sadd(self._session_uris(session_id), uri)
            await pipe.execute()

    @_translated
    async def unsubscribe(self, session_id: str, uri: str) -> None:
        """Forget one subscription."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.srem(self._subscribed(uri), session_id)
            pipe.srem(self._session_uris(session_id), uri)
            await pipe.execute()

    @_translated
    async def subscribers(self, uri: str) -> set[str]:
        """The live sessions subscribed to ``uri`` (expired ones are dropped from the set here)."""
        members = [m.decode() for m in await self._redis.smembers(self._subscribed(uri))]
        if not members:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id in members:
                pipe.exists(self._session(session_id))
            alive = await pipe.execute()
        gone = [s for s, ok in zip(members, alive, strict=True) if not ok]
        if gone:
            await self._redis.srem(self._subscribed(uri), *gone)
        return {s for s, ok in zip(members, alive, strict=True) if ok}

    # -- replica to replica ---------------------------------------------------------------------------
    @_translated
    async def send_to_replica(self, replica: str, payload: str) -> bool:
        """Hand ``payload`` to a replica's inbox (pub/sub: at most once); False if no replica of that name listens."""
        return bool(await self._redis.publish(f"{self.prefix}replica:{replica}", payload))

    async def replica_inbox(self, replica: str, ready: asyncio.Event | None = None) -> AsyncIterator[str]:
        """What other replicas send to ``replica``, until the caller closes the generator."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"{self.prefix}replica:{replica}")
        if ready is not None:
            ready.set()
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield message["data"].decode()
        finally:
            await pubsub.aclose()

    # -- shared secrets -------------------------------------------------------------------------------
    @_translated
    async def shared_secret(self, name: str, size: int = 32) -> bytes:
        """A random secret every replica agrees on: the first to ask creates it."""
        key = f"{self.prefix}secret:{name}"
        await self._redis.set(key, secrets.token_bytes(size), nx=True)
        value = await self._redis.get(key)
        assert isinstance(value, bytes)
        return value

    @_translated
    async def ping(self) -> None:
        """Fail now (``redis.ConnectionError``) if Redis cannot be reached."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def _glob_escape(text: str) -> str:
    """``text`` with Redis glob characters escaped, for ``SCAN MATCH``."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)

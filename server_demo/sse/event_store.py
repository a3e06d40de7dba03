"""Resumable SSE and session state: the :class:`EventStore` and :class:`SessionStore` interfaces, in memory.

Event ids have the form ``<stream id>.<sequence>``, so an id names its stream
and replay can never cross into another stream. The priming event of a stream
is stored too (with no message) so its id is a valid resumption point.

A :class:`SessionStore` also keeps what a session needs to be served by another
process (its negotiated version, client info and capabilities, log level) with
an idle lifetime (a TTL renewed by :meth:`SessionStore.touch_session`), and
which sessions subscribe to which resource. Three implement it with the same
semantics (one test suite runs over all three): :class:`InMemoryEventStore`
(one process), :class:`~server_demo.sse.sqlite_store.SQLiteEventStore` (survives a
restart) and :class:`~server_demo.sse.redis_store.RedisStore` (shared by replicas).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pyodide_transport.messages import TransportMessage

__all__ = ["EventStore", "InMemoryEventStore", "SessionStore", "StoreUnavailableError", "parse_event_id"]

ReplayCallback = Callable[[str, TransportMessage], Awaitable[None]]


class StoreUnavailableError(Exception):
    """A shared store cannot be reached (the HTTP endpoint answers 503), in place of the client library's errors."""


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    """Split ``<stream>.<seq>``; None if the id is not one of ours."""
    stream_id, dot, seq = event_id.rpartition(".")
    if not dot or not stream_id or not seq.isdigit():
        return None
    return stream_id, int(seq)


class EventStore(Protocol):
    """Where SSE events wait for a client that may reconnect."""

    async def store_event(self, stream_id: str, message: TransportMessage | None) -> str:
        """Store one event of a stream (``None`` for the priming event) and return its id."""
        ...

    async def replay_events_after(self, last_event_id: str, send: ReplayCallback) -> str | None:
        """Send every event of ``last_event_id``'s stream that came after it, in order.

        Returns:
            The stream id, or None if the event id is unknown (nothing is sent).
        """
        ...


class SessionStore(EventStore, Protocol):
    """An event store that also keeps sessions and resource subscriptions.

    Attributes:
        durable: Sessions outlive this process (the HTTP endpoint restores them on demand).
        shared: Other processes (replicas) read and write the same sessions and streams.
    """

    durable: bool
    shared: bool

    async def has_stream(self, stream_id: str) -> bool:
        """Whether any event of ``stream_id`` is stored."""
        ...

    async def forget_stream(self, stream_id: str) -> None:
        """Drop a stream's events."""
        ...

    async def save_session(self, session_id: str, state: dict[str, Any], ttl: float) -> None:
        """Remember a session's state (JSON-serializable) for ``ttl`` idle seconds."""
        ...

    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        """The state saved for ``session_id``; None if unknown or expired."""
        ...

    async def touch_session(self, session_id: str, ttl: float) -> bool:
        """Renew a session's idle lifetime; False if it is unknown or expired (or was forgotten)."""
        ...

    async def forget_session(self, session_id: str, stream_prefix: str) -> None:
        """Drop a session, its subscriptions and every stream whose id starts with ``stream_prefix``."""
        ...

    async def subscribe(self, session_id: str, uri: str) -> None:
        """Record that ``session_id`` wants ``notifications/resources/updated`` for ``uri``."""
        ...

    async def unsubscribe(self, session_id: str, uri: str) -> None:
        """Forget one subscription."""
        ...

    async def subscribers(self, uri: str) -> set[str]:
        """The live sessions subscribed to ``uri``."""
        ...

    async def close(self) -> None:
        """Release the store's resources."""
        ...


class InMemoryEventStore:
    """Events, sessions and subscriptions in memory, bounded per stream and in number of streams.

    Args:
        max_events_per_stream: Older events of a stream are dropped beyond this.
        max_streams: The least recently written streams are forgotten beyond this.
        clock: Seconds, for session lifetimes (injectable for tests).
    """

    durable = False
    shared = False

    def __init__(
        self, max_events_per_stream: int = 1000, max_streams: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_events_per_stream = max_events_per_stream
        self.max_streams = max_streams
        self.clock = clock
        self._streams: OrderedDict[str, list[tuple[int, TransportMessage | None]]] = OrderedDict()
        self._next_seq: dict[str, int] = {}
        self._sessions: dict[str, tuple[dict[str, Any], float]] = {}  # id -> (state, expires at)
        self._subscriptions: dict[str, set[str]] = {}  # uri -> session ids

    async def store_event(self, stream_id: str, message: TransportMessage | None) -> str:
        """Append an event to its stream and return ``<stream>.<seq>``."""
        events = self._streams.get(stream_id)
        if events is None:
            events = self._streams[stream_id] = []
            while len(self._streams) > self.max_streams:
                old, _ = self._streams.popitem(last=False)
                self._next_seq.pop(old, None)
        else:
            self._streams.move_to_end(stream_id)
        seq = self._next_seq.get(stream_id, 0)
        self._next_seq[stream_id] = seq + 1
        events.append((seq, message))
        if len(events) > self.max_events_per_stream:
            del events[: len(events) - self.max_events_per_stream]
        return f"{stream_id}.{seq}"

    async def replay_events_after(self, last_event_id: str, send: ReplayCallback) -> str | None:
        """Replay the events of one stream after ``last_event_id``."""
        parsed = parse_event_id(last_event_id)
        if parsed is None or parsed[0] not in self._streams:
            return None
        stream_id, after = parsed
        for seq, message in list(self._streams[stream_id]):
            if seq > after and message is not None:
                await send(f"{stream_id}.{seq}", message)
        return stream_id

    async def has_stream(self, stream_id: str) -> bool:
        """Whether any event of ``stream_id`` is stored."""
        return stream_id in self._streams

    async def forget_stream(self, stream_id: str) -> None:
        """Drop a stream's events (its session ended)."""
        self._streams.pop(stream_id, None)
        self._next_seq.pop(stream_id, None)

    # -- sessions -----------------------------------------------------------------------------------
    async def save_session(self, session_id: str, state: dict[str, Any], ttl: float) -> None:
        """Remember a session's state for ``ttl`` idle seconds."""
        self._sessions[session_id] = (dict(state), self.clock() + ttl)

    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        """The state saved for ``session_id``; None if unknown or expired."""
        entry = self._live(session_id)
        return dict(entry[0]) if entry is not None else None

    async def touch_session(self, session_id: str, ttl: float) -> bool:
        """Renew a session's idle lifetime; False if it is unknown or expired."""
        entry = self._live(session_id)
        if entry is None:
            return False
        self._sessions[session_id] = (entry[0], self.clock() + ttl)
        return True

    async def forget_session(self, session_id: str, stream_prefix: str) -> None:
        """Drop a session, its subscriptions and its streams."""
        self._sessions.pop(session_id, None)
        for stream_id in [s for s in self._streams if s.startswith(stream_prefix)]:
            await self.forget_stream(stream_id)
        for uri in list(self._subscriptions):
            await self.unsubscribe(session_id, uri)

    def _live(self, session_id: str) -> tuple[dict[str, Any], float] | None:
        entry = self._sessions.get(session_id)
        if entry is not None and entry[1] <= self.clock():
            del self._sessions[session_id]
            return None
        return entry

    # -- subscriptions ------------------------------------------------------------------------------
    async def subscribe(self, session_id: str, uri: str) -> None:
        """Record one subscription."""
        self._subscriptions.setdefault(uri, set()).add(session_id)

    async def unsubscribe(self, session_id: str, uri: str) -> None:
        """Forget one subscription."""
        sessions = self._subscriptions.get(uri)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._subscriptions[uri]

    async def subscribers(self, uri: str) -> set[str]:
        """The live sessions subscribed to ``uri``."""
        return {s for s in self._subscriptions.get(uri, ()) if self._live(s) is not None}

    async def close(self) -> None:
        """Nothing to release."""

"""Resumable SSE: the :class:`EventStore` interface and an in-memory implementation.

Event ids have the form ``<stream id>.<sequence>``, so an id names its stream
and replay can never cross into another stream. The priming event of a stream
is stored too (with no message) so its id is a valid resumption point.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from pyodide_transport.messages import TransportMessage

__all__ = ["EventStore", "InMemoryEventStore", "parse_event_id"]

ReplayCallback = Callable[[str, TransportMessage], Awaitable[None]]


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


class InMemoryEventStore:
    """Events in memory, bounded per stream and in number of streams (oldest dropped first).

    Args:
        max_events_per_stream: Older events of a stream are dropped beyond this.
        max_streams: The least recently written streams are forgotten beyond this.
    """

    def __init__(self, max_events_per_stream: int = 1000, max_streams: int = 10_000) -> None:
        self.max_events_per_stream = max_events_per_stream
        self.max_streams = max_streams
        self._streams: OrderedDict[str, list[tuple[int, TransportMessage | None]]] = OrderedDict()
        self._next_seq: dict[str, int] = {}

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

    def forget_stream(self, stream_id: str) -> None:
        """Drop a stream's events (its session ended)."""
        self._streams.pop(stream_id, None)
        self._next_seq.pop(stream_id, None)

"""Server-side SSE: event framing for JSON-RPC messages and the resumable event store.

The framing is :func:`pyodide_transport.sse.encode_sse_event`, the inverse of the
client's decoder, so both ends agree on the format by construction.
"""

from __future__ import annotations

from pyodide_transport.messages import TransportMessage, encode_message
from pyodide_transport.sse import encode_sse_event

from .event_store import EventStore, InMemoryEventStore, parse_event_id

__all__ = ["EventStore", "InMemoryEventStore", "encode_event", "encode_priming_event", "parse_event_id"]


def encode_event(message: TransportMessage, event_id: str | None = None) -> bytes:
    """One ``event: message`` frame carrying a JSON-RPC message (single-line JSON)."""
    return encode_sse_event(encode_message(message), event="message", id=event_id)


def encode_priming_event(event_id: str, retry_ms: int | None) -> bytes:
    """The priming event: an id and empty data (and the reconnection delay), so the client can resume from it."""
    return encode_sse_event("", id=event_id, retry=retry_ms)

"""Server-side SSE: event encoding and the resumable event store."""

from __future__ import annotations

from pyodide_transport.messages import TransportMessage, encode_message

from .event_store import EventStore, InMemoryEventStore, parse_event_id

__all__ = ["EventStore", "InMemoryEventStore", "encode_event", "encode_priming_event", "parse_event_id"]


def encode_event(message: TransportMessage, event_id: str | None = None) -> bytes:
    """One ``event: message`` frame carrying a JSON-RPC message (single-line JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: message\ndata: {encode_message(message)}\n\n".encode()


def encode_priming_event(event_id: str, retry_ms: int | None) -> bytes:
    """The priming event: an id and empty data (and the reconnection delay)."""
    retry = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    return f"id: {event_id}\n{retry}data: \n\n".encode()

"""A durable :class:`~server_demo.sse.event_store.EventStore` on stdlib ``sqlite3``: resumption survives a restart.

Events are kept per stream like :class:`~server_demo.sse.event_store.InMemoryEventStore`
(ids ``<stream>.<seq>``, the priming event stored with no message, replay never
crosses streams). Besides events it keeps what a session needs to be restored
by a new server process (negotiated version, client info and capabilities), so a
client that reconnects with ``Mcp-Session-Id`` and ``Last-Event-ID`` after a
restart gets its session back and the events it missed.

The database runs in WAL mode with ``synchronous=NORMAL``: a commit survives
the server process being killed (not necessarily a power cut), and a write
costs no fsync. Calls are synchronous and short (one local file, no network);
the demo server accepts that small block of its event loop.

Select it with ``python -m server_demo --event-store sqlite:PATH``
(:func:`event_store_from_spec`).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from pyodide_transport.messages import TransportMessage, decode_message, encode_message

from .event_store import EventStore, InMemoryEventStore, ReplayCallback, parse_event_id

__all__ = ["SQLiteEventStore", "event_store_from_spec"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    stream_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message TEXT,
    PRIMARY KEY (stream_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    state TEXT NOT NULL
) WITHOUT ROWID;
"""


class SQLiteEventStore:
    """SSE events and session records in one SQLite file.

    Args:
        path: The database file (created if missing); ``":memory:"`` for tests.
        max_events_per_stream: Older events of a stream are deleted beyond this.

    Attributes:
        durable: Always true: the HTTP endpoint keeps sessions and events across restarts.
    """

    durable = True

    def __init__(self, path: str | Path, max_events_per_stream: int = 1000) -> None:
        self.path = str(path)
        self.max_events_per_stream = max_events_per_stream
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one statement, one commit
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._next_seq: dict[str, int] = {}

    # -- EventStore -----------------------------------------------------------------------------
    async def store_event(self, stream_id: str, message: TransportMessage | None) -> str:
        """Append an event to its stream and return ``<stream>.<seq>``."""
        seq = self._next_seq.get(stream_id)
        if seq is None:
            row = self._db.execute("SELECT MAX(seq) FROM events WHERE stream_id = ?", (stream_id,)).fetchone()
            seq = 0 if row[0] is None else int(row[0]) + 1
        self._next_seq[stream_id] = seq + 1
        text = encode_message(message) if message is not None else None
        self._db.execute("INSERT INTO events (stream_id, seq, message) VALUES (?, ?, ?)", (stream_id, seq, text))
        if seq >= self.max_events_per_stream and seq % 64 == 0:  # trim now and then, not on every write
            self._db.execute(
                "DELETE FROM events WHERE stream_id = ? AND seq <= ?", (stream_id, seq - self.max_events_per_stream)
            )
        return f"{stream_id}.{seq}"

    async def replay_events_after(self, last_event_id: str, send: ReplayCallback) -> str | None:
        """Replay the events of one stream after ``last_event_id`` (None: unknown id, nothing sent)."""
        parsed = parse_event_id(last_event_id)
        if parsed is None or not self.has_stream(parsed[0]):
            return None
        stream_id, after = parsed
        rows = self._db.execute(
            "SELECT seq, message FROM events WHERE stream_id = ? AND seq > ? AND message IS NOT NULL ORDER BY seq",
            (stream_id, after),
        ).fetchall()
        for seq, text in rows:
            await send(f"{stream_id}.{seq}", decode_message(text))
        return stream_id

    def has_stream(self, stream_id: str) -> bool:
        """Whether any event of ``stream_id`` is stored."""
        row = self._db.execute("SELECT 1 FROM events WHERE stream_id = ? LIMIT 1", (stream_id,)).fetchone()
        return row is not None

    def forget_stream(self, stream_id: str) -> None:
        """Drop a stream's events (its session ended)."""
        self._db.execute("DELETE FROM events WHERE stream_id = ?", (stream_id,))
        self._next_seq.pop(stream_id, None)

    # -- sessions ---------------------------------------------------------------------------------
    def save_session(self, session_id: str, state: dict[str, Any]) -> None:
        """Remember a session's state (JSON-serializable) so a restarted server can restore it."""
        self._db.execute(
            "INSERT OR REPLACE INTO sessions (session_id, state) VALUES (?, ?)", (session_id, json.dumps(state))
        )

    def load_session(self, session_id: str) -> dict[str, Any] | None:
        """The state saved for ``session_id``, or None."""
        row = self._db.execute("SELECT state FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        if row is None:
            return None
        state: dict[str, Any] = json.loads(row[0])
        return state

    def forget_session(self, session_id: str, stream_prefix: str) -> None:
        """Drop a session's record and every stream whose id starts with ``stream_prefix``."""
        escaped = stream_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self._db.execute("DELETE FROM events WHERE stream_id LIKE ? ESCAPE '\\'", (escaped + "%",))
        self._db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
        for stream_id in [s for s in self._next_seq if s.startswith(stream_prefix)]:
            del self._next_seq[stream_id]

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def event_store_from_spec(spec: str) -> EventStore:
    """``memory`` -> :class:`InMemoryEventStore`; ``sqlite:PATH`` -> :class:`SQLiteEventStore`.

    Raises:
        ValueError: Any other spec.
    """
    if spec == "memory":
        return InMemoryEventStore()
    kind, colon, path = spec.partition(":")
    if kind == "sqlite" and colon and path:
        return SQLiteEventStore(path)
    raise ValueError(f"unknown event store {spec!r}: use 'memory' or 'sqlite:PATH'")

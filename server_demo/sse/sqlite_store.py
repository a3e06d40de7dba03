"""A durable :class:`~server_demo.sse.event_store.EventStore` on stdlib ``sqlite3``: resumption survives a restart.

Events are kept per stream like :class:`~server_demo.sse.event_store.InMemoryEventStore`
(ids ``<stream>.<seq>``, the priming event stored with no message, replay never
crosses streams). Besides events it keeps what a session needs to be restored
by a new server process (negotiated version, client info and capabilities), with
its idle expiry time, and the sessions' resource subscriptions, so a client that
reconnects with ``Mcp-Session-Id`` and ``Last-Event-ID`` after a restart gets its
session back and the events it missed.

The database runs in WAL mode with ``synchronous=NORMAL``: a commit survives
the server process being killed (not necessarily a power cut), and a write
costs no fsync. Calls are synchronous and short (one local file, no network);
the demo server accepts that small block of its event loop.

Select it with ``python -m server_demo --store sqlite:PATH``
(:func:`~server_demo.sse.spec.store_from_spec`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyodide_transport.messages import TransportMessage, decode_message, encode_message

from .event_store import ReplayCallback, parse_event_id

__all__ = ["SQLiteEventStore"]

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
CREATE TABLE IF NOT EXISTS subscriptions (
    uri TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (uri, session_id)
) WITHOUT ROWID;
"""


class SQLiteEventStore:
    """SSE events, session records and subscriptions in one SQLite file.

    Args:
        path: The database file (created if missing); ``":memory:"`` for tests.
        max_events_per_stream: Older events of a stream are deleted beyond this.
        clock: Wall-clock seconds for session expiry (it must survive a restart).

    Attributes:
        durable: Always true: the HTTP endpoint keeps sessions and events across restarts.
        shared: False: one process at a time uses the file.
    """

    durable = True
    shared = False

    def __init__(
        self, path: str | Path, max_events_per_stream: int = 1000, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = str(path)
        self.max_events_per_stream = max_events_per_stream
        self.clock = clock
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one statement, one commit
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "expires_at" not in columns:  # a file written before sessions expired
            self._db.execute("ALTER TABLE sessions ADD COLUMN expires_at REAL")
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
        if parsed is None or not await self.has_stream(parsed[0]):
            return None
        stream_id, after = parsed
        rows = self._db.execute(
            "SELECT seq, message FROM events WHERE stream_id = ? AND seq > ? AND message IS NOT NULL ORDER BY seq",
            (stream_id, after),
        ).fetchall()
        for seq, text in rows:
            await send(f"{stream_id}.{seq}", decode_message(text))
        return stream_id

    async def has_stream(self, stream_id: str) -> bool:
        """Whether any event of ``stream_id`` is stored."""
        row = self._db.execute("SELECT 1 FROM events WHERE stream_id = ? LIMIT 1", (stream_id,)).fetchone()
        return row is not None

    async def forget_stream(self, stream_id: str) -> None:
        """Drop a stream's events (its session ended)."""
        self._db.execute("DELETE FROM events WHERE stream_id = ?", (stream_id,))
        self._next_seq.pop(stream_id, None)

    # -- sessions ---------------------------------------------------------------------------------
    async def save_session(self, session_id: str, state: dict[str, Any], ttl: float) -> None:
        """Remember a session's state (JSON-serializable) for ``ttl`` idle seconds."""
        self._db.execute(
            "INSERT OR REPLACE INTO sessions (session_id, state, expires_at) VALUES (?, ?, ?)",
            (session_id, json.dumps(state), self.clock() + ttl),
        )

    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        """The state saved for ``session_id``; None if unknown or expired."""
        row = self._db.execute(
            "SELECT state FROM sessions WHERE session_id = ? AND (expires_at IS NULL OR expires_at > ?)",
            (session_id, self.clock()),
        ).fetchone()
        if row is None:
            return None
        state: dict[str, Any] = json.loads(row[0])
        return state

    async def touch_session(self, session_id: str, ttl: float) -> bool:
        """Renew a session's idle lifetime; False if it is unknown or expired."""
        now = self.clock()
        cursor = self._db.execute(
            "UPDATE sessions SET expires_at = ? WHERE session_id = ? AND (expires_at IS NULL OR expires_at > ?)",
            (now + ttl, session_id, now),
        )
        return cursor.rowcount > 0

    async def forget_session(self, session_id: str, stream_prefix: str) -> None:
        """Drop a session's record, its subscriptions and every stream whose id starts with ``stream_prefix``."""
        escaped = stream_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self._db.execute("DELETE FROM events WHERE stream_id LIKE ? ESCAPE '\\'", (escaped + "%",))
        self._db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
        self._db.execute("DELETE FROM subscriptions WHERE session_id = ?", (session_id,))
        for stream_id in [s for s in self._next_seq if s.startswith(stream_prefix)]:
            del self._next_seq[stream_id]

    # -- subscriptions ------------------------------------------------------------------------------
    async def subscribe(self, session_id: str, uri: str) -> None:
        """Record one subscription."""
        self._db.execute("INSERT OR IGNORE INTO subscriptions (uri, session_id) VALUES (?, ?)", (uri, session_id))

    async def unsubscribe(self, session_id: str, uri: str) -> None:
        """Forget one subscription."""
        self._db.execute("DELETE FROM subscriptions WHERE uri = ? AND session_id = ?", (uri, session_id))

    async def subscribers(self, uri: str) -> set[str]:
        """The live sessions subscribed to ``uri``."""
        rows = self._db.execute(
            "SELECT s.session_id FROM subscriptions s JOIN sessions USING (session_id)"
            " WHERE s.uri = ? AND (expires_at IS NULL OR expires_at > ?)",
            (uri, self.clock()),
        ).fetchall()
        return {row[0] for row in rows}

    async def close(self) -> None:
        """Close the database."""
        self._db.close()

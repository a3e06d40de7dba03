"""``--store SPEC``: the :class:`~server_demo.sse.event_store.SessionStore` that keeps sessions and events."""

from __future__ import annotations

from .event_store import InMemoryEventStore, SessionStore

__all__ = ["store_from_spec"]


def store_from_spec(spec: str) -> SessionStore:
    """``memory``, ``sqlite:PATH`` or ``redis://HOST:PORT/DB`` (also ``rediss://``, ``unix://``).

    Raises:
        ValueError: Any other spec (the message lists the accepted ones).
    """
    if spec == "memory":
        return InMemoryEventStore()
    kind, colon, rest = spec.partition(":")
    if kind == "sqlite" and colon and rest:
        from .sqlite_store import SQLiteEventStore

        return SQLiteEventStore(rest)
    if kind in ("redis", "rediss", "unix") and rest.startswith("//") and len(rest) > 2:
        from .redis_store import RedisStore  # the redis client is a server extra: imported only when asked for

        return RedisStore(spec)
    raise ValueError(f"unknown store {spec!r}: use 'memory', 'sqlite:PATH' or 'redis://HOST:PORT/DB'")

"""SQLiteEventStore: the in-memory store's contract, plus durability across reopening the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyodide_transport.messages import TransportMessage, make_notification
from server_demo.__main__ import parse_args
from server_demo.sse.event_store import InMemoryEventStore
from server_demo.sse.sqlite_store import SQLiteEventStore, event_store_from_spec


async def replay(store: SQLiteEventStore, last_event_id: str) -> tuple[str | None, list[tuple[str, str]]]:
    got: list[tuple[str, str]] = []

    async def send(event_id: str, message: TransportMessage) -> None:
        got.append((event_id, getattr(message, "method", "")))

    stream = await store.replay_events_after(last_event_id, send)
    return stream, got


def note(i: int) -> TransportMessage:
    return make_notification(f"n/{i}")


async def test_replay_after_an_id_stays_in_its_stream(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "e.db")
    prime_a = await store.store_event("a-1", None)
    prime_b = await store.store_event("a-g2", None)
    ids = [await store.store_event("a-1", note(i)) for i in range(3)]
    await store.store_event("a-g2", note(99))
    assert prime_a == "a-1.0" and ids == ["a-1.1", "a-1.2", "a-1.3"]
    assert await replay(store, prime_a) == ("a-1", [("a-1.1", "n/0"), ("a-1.2", "n/1"), ("a-1.3", "n/2")])
    assert await replay(store, ids[1]) == ("a-1", [("a-1.3", "n/2")])
    assert await replay(store, prime_b) == ("a-g2", [("a-g2.1", "n/99")])
    for unknown in ("zzz.0", "garbage", "a-1.", ".3"):
        assert await replay(store, unknown) == (None, [])
    store.close()


async def test_events_and_sessions_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    store = SQLiteEventStore(path)
    first = await store.store_event("sess0001-1", None)
    await store.store_event("sess0001-1", note(1))
    store.save_session("sess0001xyz", {"protocol_version": "2025-11-25", "client_info": {"name": "c"}})
    store.close()

    again = SQLiteEventStore(path)
    assert await replay(again, first) == ("sess0001-1", [("sess0001-1.1", "n/1")])
    assert await again.store_event("sess0001-1", note(2)) == "sess0001-1.2", "sequence numbers continue"
    assert again.load_session("sess0001xyz") == {"protocol_version": "2025-11-25", "client_info": {"name": "c"}}
    again.forget_session("sess0001xyz", "sess0001-")
    assert again.load_session("sess0001xyz") is None
    assert not again.has_stream("sess0001-1")
    assert await replay(again, first) == (None, [])
    again.close()


async def test_old_events_are_trimmed(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "e.db", max_events_per_stream=64)
    for i in range(200):
        await store.store_event("s-1", note(i))
    _, events = await replay(store, "s-1.0")
    assert 64 <= len(events) < 200 and events[-1] == ("s-1.199", "n/199")
    store.close()


def test_event_store_spec_and_cli(tmp_path: Path) -> None:
    assert isinstance(event_store_from_spec("memory"), InMemoryEventStore)
    store = event_store_from_spec(f"sqlite:{tmp_path / 'x.db'}")
    assert isinstance(store, SQLiteEventStore) and store.durable
    store.close()
    for bad in ("sqlite:", "redis://x", ""):
        with pytest.raises(ValueError, match="unknown event store"):
            event_store_from_spec(bad)
    assert parse_args([]).event_store == "memory"
    assert parse_args(["--event-store", "sqlite:/tmp/e.db"]).event_store == "sqlite:/tmp/e.db"

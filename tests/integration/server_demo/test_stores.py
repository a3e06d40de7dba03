"""One suite over the three session stores: in memory, SQLite and Redis (a real ``redis-server``).

Events: ids name their stream, replay stays within it and after the given id,
unknown ids replay nothing. Sessions: saved, loaded, renewed, expired after
their idle lifetime, forgotten with their streams and subscriptions.
Subscriptions: who is subscribed to what, expired sessions left out. Then what
only one kind does: the memory store's limits, SQLite surviving a reopen,
Redis following a stream another writer appends to, and a secret all replicas share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyodide_transport.messages import TransportMessage, make_notification
from server_demo.__main__ import parse_args
from server_demo.sse import encode_event, encode_priming_event
from server_demo.sse.event_store import InMemoryEventStore, SessionStore, parse_event_id
from server_demo.sse.redis_store import RedisStore, entry_seq
from server_demo.sse.spec import store_from_spec
from server_demo.sse.sqlite_store import SQLiteEventStore


class Clock:
    """A settable clock for the memory and SQLite stores; Redis expires keys on its own clock."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """Each kind of store, empty."""
    made: SessionStore
    if request.param == "memory":
        made = InMemoryEventStore(clock=Clock())
    elif request.param == "sqlite":
        made = SQLiteEventStore(tmp_path / "events.db", clock=Clock())
    else:
        made = RedisStore(request.getfixturevalue("redis_url"))
    try:
        yield made
    finally:
        await made.close()


async def expire(store: SessionStore, seconds: float) -> None:
    """Let ``seconds`` of idle time pass for ``store``."""
    clock = getattr(store, "clock", None)
    if isinstance(clock, Clock):
        clock.now += seconds
    else:
        await asyncio.sleep(seconds)


async def replay(store: SessionStore, last: str) -> tuple[str | None, list[tuple[str, str]]]:
    got: list[tuple[str, str]] = []

    async def send(event_id: str, message: TransportMessage) -> None:
        got.append((event_id, getattr(message, "method", "")))

    stream = await store.replay_events_after(last, send)
    return stream, got


def note(i: int) -> TransportMessage:
    return make_notification(f"n/{i}")


def seq(event_id: str) -> int:
    parsed = parse_event_id(event_id)
    assert parsed is not None
    return parsed[1]


async def test_replay_after_an_id_stays_in_its_stream(store: SessionStore) -> None:
    prime_a = await store.store_event("sess0001-1", None)
    prime_b = await store.store_event("sess0001-g2", None)
    ids = [await store.store_event("sess0001-1", note(i)) for i in range(3)]
    await store.store_event("sess0001-g2", note(99))
    assert all(e.startswith("sess0001-1.") for e in [prime_a, *ids])
    assert [seq(e) for e in [prime_a, *ids]] == sorted({seq(e) for e in [prime_a, *ids]}), "ids ascend"
    assert await replay(store, prime_a) == ("sess0001-1", [(ids[0], "n/0"), (ids[1], "n/1"), (ids[2], "n/2")])
    assert await replay(store, ids[1]) == ("sess0001-1", [(ids[2], "n/2")])
    assert (await replay(store, prime_b))[1][0][1] == "n/99"
    for unknown in ("zzz.0", "garbage", "sess0001-1.", ".3", "nope-9.12"):
        assert await replay(store, unknown) == (None, [])
    assert await store.has_stream("sess0001-1") and not await store.has_stream("sess0001-7")
    await store.forget_stream("sess0001-g2")
    assert await replay(store, prime_b) == (None, [])


async def test_sessions_are_saved_renewed_expired_and_forgotten(store: SessionStore) -> None:
    state = {"protocol_version": "2025-11-25", "client_info": {"name": "c"}, "log_level": "info"}
    await store.save_session("sess0001xyz", state, ttl=0.6)
    await store.store_event("sess0001-1", note(1))
    await store.subscribe("sess0001xyz", "demo://counter")
    assert await store.load_session("sess0001xyz") == state
    assert await store.load_session("other") is None
    assert not await store.touch_session("other", 10)
    await expire(store, 0.35)
    assert await store.touch_session("sess0001xyz", 0.6), "still alive: renewed"
    await expire(store, 0.35)
    assert await store.load_session("sess0001xyz") == state, "renewed, so alive past its first lifetime"
    assert await store.subscribers("demo://counter") == {"sess0001xyz"}
    await store.forget_session("sess0001xyz", "sess0001-")
    assert await store.load_session("sess0001xyz") is None
    assert not await store.has_stream("sess0001-1")
    assert await store.subscribers("demo://counter") == set()
    await store.save_session("sess0002xyz", state, ttl=0.3)
    await expire(store, 0.5)
    assert await store.load_session("sess0002xyz") is None, "idle past its lifetime"
    assert not await store.touch_session("sess0002xyz", 10), "an expired session is not renewed"


async def test_subscriptions_name_live_sessions(store: SessionStore) -> None:
    for session_id in ("a", "b", "c"):
        await store.save_session(session_id, {"protocol_version": "2025-11-25"}, ttl=60)
    await store.subscribe("a", "demo://x")
    await store.subscribe("b", "demo://x")
    await store.subscribe("b", "demo://x")  # twice is once
    await store.subscribe("c", "demo://y")
    await store.subscribe("ghost", "demo://x")  # a session the store does not know
    assert await store.subscribers("demo://x") == {"a", "b"}
    await store.unsubscribe("a", "demo://x")
    await store.unsubscribe("a", "demo://never")
    assert await store.subscribers("demo://x") == {"b"}
    assert await store.subscribers("demo://y") == {"c"}
    assert await store.subscribers("demo://none") == set()


async def test_memory_limits_drop_the_oldest() -> None:
    store = InMemoryEventStore(max_events_per_stream=2, max_streams=2)
    first = await store.store_event("a", None)
    for i in range(3):
        await store.store_event("a", note(i))
    assert (await replay(store, first))[1] == [("a.2", "n/1"), ("a.3", "n/2")]
    await store.store_event("b", None)
    await store.store_event("c", None)  # "a" is the least recently written: forgotten
    assert (await replay(store, first))[0] is None


async def test_sqlite_events_and_sessions_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    store = SQLiteEventStore(path)
    first = await store.store_event("sess0001-1", None)
    await store.store_event("sess0001-1", note(1))
    await store.save_session("sess0001xyz", {"protocol_version": "2025-11-25"}, ttl=60)
    await store.close()
    again = SQLiteEventStore(path)
    assert await replay(again, first) == ("sess0001-1", [("sess0001-1.1", "n/1")])
    assert await again.store_event("sess0001-1", note(2)) == "sess0001-1.2", "sequence numbers continue"
    assert await again.load_session("sess0001xyz") == {"protocol_version": "2025-11-25"}
    await again.close()


async def test_sqlite_old_events_are_trimmed(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "e.db", max_events_per_stream=64)
    for i in range(200):
        await store.store_event("s-1", note(i))
    _, events = await replay(store, "s-1.0")
    assert 64 <= len(events) < 200 and events[-1] == ("s-1.199", "n/199")
    await store.close()


async def test_redis_follows_a_stream_another_replica_writes(redis_url: str) -> None:
    reader, writer = RedisStore(redis_url, block_ms=200), RedisStore(redis_url)
    try:
        prime = await writer.store_event("sess0001-g1", None)
        early = await writer.store_event("sess0001-g1", note(0))
        got: list[tuple[str, str]] = []

        async def follow() -> None:
            async for event_id, message in reader.tail("sess0001-g1", seq(prime)):
                got.append((event_id, getattr(message, "method", "")))

        task = asyncio.create_task(follow())
        later = [await writer.store_event("sess0001-g1", note(i)) for i in (1, 2)]
        await writer.end_stream("sess0001-g1")
        await asyncio.wait_for(task, 10)
        assert got == [(early, "n/0"), (later[0], "n/1"), (later[1], "n/2")], "in order, once each, then the end"
        assert await replay(reader, early) == ("sess0001-g1", [(later[0], "n/1"), (later[1], "n/2")])
        assert entry_seq("1700000000000-3") == 1700000000000 * 1_000_000 + 3
        last = await writer.store_last_event("sess0001-2", note(7))  # a response and its stream's end: one write
        assert [e async for e, _ in reader.tail("sess0001-2", -1)] == [last], "the message, then the end"
        await writer.save_session("s1", {}, ttl=60)
        assert not await writer.publish("s1", note(5)), "no standalone stream yet: nothing written"
        assert await writer.set_standalone("s1", "sess0001-g1") is None
        assert await writer.set_standalone("s1", "sess0001-g9") == "sess0001-g1", "the stream it replaces"
        assert await writer.publish("s1", note(6))
        assert (await replay(reader, "sess0001-g9.0"))[1][0][1] == "n/6"
        key = await writer.shared_secret("k")
        assert len(key) == 32 and await reader.shared_secret("k") == key, "the first to ask creates it"
    finally:
        await reader.close()
        await writer.close()


async def test_store_spec_and_cli(tmp_path: Path) -> None:
    assert isinstance(store_from_spec("memory"), InMemoryEventStore)
    sqlite = store_from_spec(f"sqlite:{tmp_path / 'x.db'}")
    assert isinstance(sqlite, SQLiteEventStore) and sqlite.durable and not sqlite.shared
    await sqlite.close()
    redis_store = store_from_spec("redis://127.0.0.1:1/0")  # nothing is contacted until used
    assert isinstance(redis_store, RedisStore) and redis_store.shared
    await redis_store.close()
    for bad in ("sqlite:", "redis:", "redis://", "mysql://x", ""):
        with pytest.raises(ValueError, match="unknown store"):
            store_from_spec(bad)
    assert parse_args([]).store == "memory"
    assert parse_args(["--event-store", "sqlite:/tmp/e.db"]).store == "sqlite:/tmp/e.db", "the old flag still works"
    assert parse_args(["--store", "redis://h:1/2"]).store == "redis://h:1/2"


def test_parse_event_id_and_encoding() -> None:
    assert parse_event_id("abc-1.7") == ("abc-1", 7)
    assert parse_event_id("x") is None
    assert encode_priming_event("s.0", 500) == b"id: s.0\nretry: 500\ndata: \n\n"
    frame = encode_event(make_notification("n", {"text": "two\nlines"}), "s.1").decode()
    assert frame.startswith("id: s.1\nevent: message\ndata: {")
    assert frame.endswith("\n\n") and frame.count("\n") == 4  # JSON escapes the newline: one data line

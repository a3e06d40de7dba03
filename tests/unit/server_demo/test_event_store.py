"""The in-memory event store: ids name their stream, replay stays within it, limits hold."""

from __future__ import annotations

from pyodide_transport.messages import TransportMessage, make_notification
from server_demo.sse import encode_event, encode_priming_event
from server_demo.sse.event_store import InMemoryEventStore, parse_event_id


async def replay(store: InMemoryEventStore, last: str) -> tuple[str | None, list[tuple[str, TransportMessage]]]:
    got: list[tuple[str, TransportMessage]] = []

    async def send(event_id: str, message: TransportMessage) -> None:
        got.append((event_id, message))

    stream = await store.replay_events_after(last, send)
    return stream, got


async def test_replay_after_an_id_stays_in_its_stream() -> None:
    store = InMemoryEventStore()
    prime_a = await store.store_event("a", None)
    a1 = await store.store_event("a", make_notification("n", {"i": 1}))
    await store.store_event("b", make_notification("n", {"i": 99}))
    await store.store_event("a", make_notification("n", {"i": 2}))
    stream, got = await replay(store, prime_a)
    assert stream == "a"
    assert [m.params for _, m in got] == [{"i": 1}, {"i": 2}]  # type: ignore[union-attr]
    stream, got = await replay(store, a1)
    assert [eid for eid, _ in got] == ["a.2"]


async def test_unknown_ids_replay_nothing() -> None:
    store = InMemoryEventStore()
    await store.store_event("a", None)
    for bad in ("zzz.0", "garbage", "a.", ".3"):
        assert await replay(store, bad) == (None, [])


async def test_limits_drop_the_oldest() -> None:
    store = InMemoryEventStore(max_events_per_stream=2, max_streams=2)
    first = await store.store_event("a", None)
    for i in range(3):
        await store.store_event("a", make_notification("n", {"i": i}))
    _, got = await replay(store, first)
    assert [m.params for _, m in got] == [{"i": 1}, {"i": 2}]  # type: ignore[union-attr]
    await store.store_event("b", None)
    await store.store_event("c", None)  # "a" is the least recently written: forgotten
    assert (await replay(store, first))[0] is None
    store.forget_stream("b")
    assert (await replay(store, "b.0"))[0] is None


def test_parse_event_id_and_encoding() -> None:
    assert parse_event_id("abc-1.7") == ("abc-1", 7)
    assert parse_event_id("x") is None
    assert encode_priming_event("s.0", 500) == b"id: s.0\nretry: 500\ndata: \n\n"
    frame = encode_event(make_notification("n", {"text": "two\nlines"}), "s.1").decode()
    assert frame.startswith("id: s.1\nevent: message\ndata: {")
    assert frame.endswith("\n\n") and frame.count("\n") == 4  # JSON escapes the newline: one data line

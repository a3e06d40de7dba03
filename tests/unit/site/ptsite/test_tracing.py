from __future__ import annotations

import itertools

from ptsite.tracing import TraceEntry, TracingTransport, describe

from pyodide_transport import InMemoryTransport
from pyodide_transport.messages import make_notification, make_request, make_response


async def test_records_both_directions_with_durations() -> None:
    entries: list[TraceEntry] = []
    ticks = itertools.count()
    client_end, server_end = InMemoryTransport.create_pair()
    traced = TracingTransport(client_end, entries.append, clock=lambda: next(ticks) * 0.25, wall_clock=lambda: 1e9)
    assert traced.transport_type == "memory" and traced.is_connected()

    await traced.send(make_request(1, "tools/list"))
    await server_end.send(make_notification("notifications/message", {"level": "info", "data": "hi"}))
    await server_end.send(make_request("s1", "ping"))
    await server_end.send(make_response(1, {"tools": []}))
    for _ in range(3):
        await traced.receive()
    await traced.send(make_response("s1", {}))

    assert [(e.seq, e.direction, e.kind, e.method, e.msg_id) for e in entries] == [
        (1, "out", "request", "tools/list", "1"),
        (2, "in", "notification", "notifications/message", ""),
        (3, "in", "request", "ping", "s1"),
        (4, "in", "response", "tools/list", "1"),
        (5, "out", "response", "ping", "s1"),
    ]
    assert entries[3].duration == 0.75 and entries[4].duration == 0.5
    assert entries[0].duration is None
    assert entries[3].summary() == "← response tools/list #1 (750 ms)"
    assert entries[0].summary() == "→ request tools/list #1"
    assert entries[0].body == {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert '"method": "tools/list"' in entries[0].pretty()
    await traced.close()
    assert not traced.is_connected() and not server_end.is_connected()


def test_durations_for_humans() -> None:
    assert describe(0.0005) == "500 µs"
    assert describe(0.012) == "12 ms"
    assert describe(1.44) == "1.4 s"


def test_other_attributes_come_from_the_inner_transport() -> None:
    inner, _ = InMemoryTransport.create_pair()
    inner.session_id = "abc"  # type: ignore[attr-defined]
    assert TracingTransport(inner, lambda e: None).session_id == "abc"

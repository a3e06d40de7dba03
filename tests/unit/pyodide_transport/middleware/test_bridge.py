"""bridge(a, b): forwarding both ways, shutdown from either side, errors once, bounded in-flight messages."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pyodide_transport import Client, InMemoryTransport
from pyodide_transport.errors import ConnectionClosedError, NetworkError, RemoteProtocolError, TransportError
from pyodide_transport.messages import JSONRPCError, TransportMessage, make_notification, make_request
from pyodide_transport.middleware import CircuitBreakerTransport, Middleware, PolicyTransport, bridge

try:
    from middleware_helpers import FakeClock, ScriptedWire, TinyServer, wait_until
except ImportError:  # pragma: no cover - another import mode
    from .middleware_helpers import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        FakeClock,
        ScriptedWire,
        TinyServer,
        wait_until,
    )


def _gateway() -> tuple[InMemoryTransport, InMemoryTransport, InMemoryTransport, InMemoryTransport]:
    """client end, the bridge's client-facing end, the bridge's backend end, server end."""
    client_end, front = InMemoryTransport.create_pair()
    back, server_end = InMemoryTransport.create_pair()
    return client_end, front, back, server_end


async def test_a_client_talks_to_a_server_through_the_bridge() -> None:
    client_end, front, back, server_end = _gateway()
    errors: list[tuple[str, TransportError]] = []
    task = asyncio.ensure_future(bridge(front, back, on_error=lambda s, e: errors.append((s, e))))
    async with TinyServer(server_end) as server:
        async with Client(client_end, protocol_version="2025-11-25") as client:
            assert (await client.list_tools()).tools[0].name == "echo"
            result = await client.call_tool("echo", {"m": 1})
            assert "{'m': 1}" in result.content[0].text  # type: ignore[union-attr]
            assert (await server.ask("ping")).id == "srv-1"  # server -> client through the bridge too
        await asyncio.wait_for(task, 1.0)  # the client closed: the bridge ends
    assert not back.is_connected() and not server_end.is_connected()
    assert errors == []


@pytest.mark.parametrize("closing", ["front", "back"])
async def test_either_side_closing_closes_the_other(closing: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pyodide_transport.middleware")
    client_end, front, back, server_end = _gateway()
    errors: list[tuple[str, TransportError]] = []
    task = asyncio.ensure_future(
        bridge(front, back, on_error=lambda s, e: errors.append((s, e)), names=("front", "back"))
    )
    await asyncio.sleep(0)
    await (client_end if closing == "front" else server_end).close()
    await asyncio.wait_for(task, 1.0)
    assert not front.is_connected() and not back.is_connected()
    assert not client_end.is_connected() and not server_end.is_connected()
    assert errors == []  # a side closing is not an error
    assert f"bridge: {closing} closed" in caplog.text


async def test_a_failing_send_is_reported_once_and_ends_the_bridge(caplog: pytest.LogCaptureFixture) -> None:
    a, b = ScriptedWire(), ScriptedWire()
    b.failing = NetworkError("backend unreachable")
    errors: list[tuple[str, TransportError]] = []
    task = asyncio.ensure_future(bridge(a, b, on_error=lambda s, e: errors.append((s, e))))
    a.inbox.put_nowait(make_notification("n1"))
    a.inbox.put_nowait(make_notification("n2"))
    await asyncio.wait_for(task, 1.0)
    assert [(side, type(e).__name__) for side, e in errors] == [("b", "NetworkError")]
    assert caplog.text.count("backend unreachable") == 1
    assert a.closed and b.closed


async def test_receive_errors_that_lose_requests_are_reported_and_forwarding_goes_on() -> None:
    a, b = ScriptedWire(), ScriptedWire()
    errors: list[tuple[str, TransportError]] = []
    task = asyncio.ensure_future(bridge(a, b, on_error=lambda s, e: errors.append((s, e))))
    a.inbox.put_nowait(ConnectionClosedError("stream dropped").losing((4,)))
    a.inbox.put_nowait(RemoteProtocolError("bad frame"))
    a.inbox.put_nowait(make_notification("after"))
    await wait_until(lambda: b.sent, "the forwarded notification")
    assert [getattr(m, "method", None) for m in b.sent] == ["after"]
    assert [type(e).__name__ for _, e in errors] == ["ConnectionClosedError", "RemoteProtocolError"]
    await a.close()
    await asyncio.wait_for(task, 1.0)
    assert len(errors) == 2  # closing is not reported, nor what follows from it


async def test_a_side_that_keeps_failing_to_receive_counts_as_gone() -> None:
    a, b = ScriptedWire(), ScriptedWire()
    errors: list[tuple[str, TransportError]] = []
    for _ in range(64):
        a.inbox.put_nowait(RemoteProtocolError("garbage"))
    await asyncio.wait_for(bridge(a, b, on_error=lambda s, e: errors.append((s, e))), 2.0)
    assert len(errors) == 65 and "64 receive errors in a row" in str(errors[-1][1])
    assert a.closed and b.closed


async def test_local_refusals_are_answered_to_the_sender_and_forwarding_goes_on() -> None:
    clock = FakeClock()
    a, wire = ScriptedWire(), ScriptedWire()
    breaker = CircuitBreakerTransport(wire, failure_threshold=1, cool_down=7.0, clock=clock)
    b = PolicyTransport(breaker, deny_methods={"x/*"})
    errors: list[tuple[str, TransportError]] = []
    task = asyncio.ensure_future(bridge(a, b, on_error=lambda s, e: errors.append((s, e))))
    a.inbox.put_nowait(make_request(1, "x/y"))
    a.inbox.put_nowait(make_notification("x/n"))  # refused too, and nobody to answer
    await wait_until(lambda: a.sent, "the policy answer")
    (answer,) = a.sent
    assert isinstance(answer, JSONRPCError) and answer.id == 1 and answer.error.code == -32600
    assert answer.error.data == {"rule": "method", "reason": "method rule: outgoing request 'x/y' is denied"}

    breaker.breaker.failed(clock())  # the backend failed elsewhere: the circuit opens
    a.inbox.put_nowait(make_request(2, "tools/list"))
    await wait_until(lambda: len(a.sent) == 2, "the circuit answer")
    answer = a.sent[1]
    assert isinstance(answer, JSONRPCError) and answer.id == 2 and answer.error.code == -32603
    assert answer.error.data == {"retry_after": 7.0}

    breaker.reset()
    a.inbox.put_nowait(make_notification("ok"))
    await wait_until(lambda: wire.sent, "the forwarded notification")
    assert [getattr(m, "method", None) for m in wire.sent] == ["ok"]
    assert [(side, type(e).__name__) for side, e in errors] == [
        ("b", "PolicyError"),
        ("b", "PolicyError"),
        ("b", "CircuitOpenError"),
    ]
    await a.close()
    await asyncio.wait_for(task, 1.0)
    assert wire.closed


class Counting(Middleware):
    """Counts what passes and how many sends are in flight at once."""

    layer = "counting"

    def __init__(self, inner: ScriptedWire) -> None:
        super().__init__(inner)
        self.received = 0

    async def receive(self) -> TransportMessage:
        message = await self.inner.receive()
        self.received += 1
        return message


async def test_backpressure_a_slow_side_bounds_the_messages_in_flight() -> None:
    fast, slow = ScriptedWire(), ScriptedWire()
    slow.gate = asyncio.Event()
    source = Counting(fast)
    task = asyncio.ensure_future(bridge(source, slow))
    for i in range(50):
        fast.inbox.put_nowait(make_notification(f"n{i}"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert source.received == 1 and slow.in_flight == 1  # one taken, waiting on the slow side
    assert fast.inbox.qsize() == 49  # the rest wait where they were: no queue in the bridge
    for step in range(49):
        slow.gate.set()
        slow.gate = asyncio.Event()
        await wait_until(lambda s=step: len(slow.sent) == s + 1, "the next forward")
        assert source.received - len(slow.sent) <= 1
    slow.gate.set()
    slow.gate = None
    await wait_until(lambda: len(slow.sent) == 50, "every message")
    assert slow.max_in_flight == 1
    await fast.close()
    await asyncio.wait_for(task, 1.0)


async def test_cancelling_the_bridge_closes_both_sides() -> None:
    a, b = ScriptedWire(), ScriptedWire()
    task = asyncio.ensure_future(bridge(a, b))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.closed and b.closed


class Buggy(Middleware):
    layer = "buggy"

    async def receive(self) -> TransportMessage:
        raise ZeroDivisionError("a bug")


async def test_a_bug_in_a_transport_propagates_after_both_sides_closed() -> None:
    a, b = ScriptedWire(), ScriptedWire()
    with pytest.raises(ZeroDivisionError):
        await asyncio.wait_for(bridge(Buggy(a), b), 1.0)
    assert a.closed and b.closed

"""memory.py: an ordered, connected pair; closing either end closes both, after draining."""

from __future__ import annotations

import asyncio

import pytest

from pyodide_transport import ConnectionClosedError, InMemoryTransport, Transport
from pyodide_transport.memory import Watchdog
from pyodide_transport.messages import make_notification, make_request


async def test_pair_delivers_in_order_both_ways() -> None:
    a, b = InMemoryTransport.create_pair()
    assert isinstance(a, Transport) and a.transport_type == "memory"
    for i in range(3):
        await a.send(make_request(i, "ping"))
    await b.send(make_notification("hello"))
    assert [(await b.receive()).id for _ in range(3)] == [0, 1, 2]  # type: ignore[union-attr]
    assert (await a.receive()).method == "hello"  # type: ignore[union-attr]


async def test_close_drains_then_fails_every_later_receive() -> None:
    a, b = InMemoryTransport.create_pair()
    await a.send(make_notification("last"))
    await a.close()
    assert not a.is_connected() and not b.is_connected()
    assert (await b.receive()).method == "last"  # type: ignore[union-attr]
    for _ in range(2):
        with pytest.raises(ConnectionClosedError):
            await b.receive()
    with pytest.raises(ConnectionClosedError):
        await b.send(make_notification("late"))
    await a.close()  # idempotent
    await b.close()


async def test_close_wakes_a_pending_receive() -> None:
    a, b = InMemoryTransport.create_pair()
    waiting = asyncio.ensure_future(b.receive())
    await asyncio.sleep(0)
    await b.close()
    with pytest.raises(ConnectionClosedError):
        await waiting
    with pytest.raises(ConnectionClosedError):
        await a.receive()


async def test_watchdog_fires_once_at_the_earliest_deadline_and_can_be_cancelled() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    done = asyncio.Event()

    def on_fire(_: asyncio.AbstractEventLoop) -> None:
        fired.append(loop.time())
        done.set()

    dog = Watchdog(on_fire)
    start = loop.time()
    dog.arm(loop, start + 10)
    dog.arm(loop, start + 0.01)  # earlier: re-armed
    dog.arm(loop, start + 5)  # later: ignored
    await asyncio.wait_for(done.wait(), 5)
    assert len(fired) == 1 and fired[0] < start + 5
    dog.arm(loop, loop.time() + 0.01)
    dog.cancel()
    dog.cancel()  # idempotent
    await asyncio.sleep(0.05)
    assert len(fired) == 1

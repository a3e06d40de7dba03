"""port.py: MessagePortTransport over in-memory endpoints (the JS ones run in tests/pyodide/test_port_in_pyodide.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import pyodide_transport
from pyodide_transport import (
    ConnectionClosedError,
    LocalProtocolError,
    MessageTooLargeError,
    RemoteProtocolError,
    Transport,
)
from pyodide_transport.messages import encode_message, make_notification, make_request
from pyodide_transport.port import (
    MemoryPort,
    MessagePortTransport,
    OwnerFailed,
    PeerClosed,
    Undeliverable,
    memory_port_pair,
    open_worker_port,
)
from tests.pyodide import transport_scenarios as scenarios


def pair(**options: Any) -> tuple[MessagePortTransport, MessagePortTransport, MemoryPort, MemoryPort]:
    p1, p2 = memory_port_pair()
    return MessagePortTransport(p1, **options), MessagePortTransport(p2, **options), p1, p2


class FakeOwner:
    """A PortOwner: ``fail(detail)`` plays the worker's ``error`` event."""

    def __init__(self) -> None:
        self.watchers: list[Callable[[str], None]] = []
        self.unwatched = 0
        self.terminated = False

    def watch(self, on_error: Callable[[str], None]) -> Callable[[], None]:
        self.watchers.append(on_error)

        def unwatch() -> None:
            self.unwatched += 1
            self.watchers.remove(on_error)

        return unwatch

    def fail(self, detail: str) -> None:
        for watcher in list(self.watchers):
            watcher(detail)

    def terminate(self) -> None:
        self.terminated = True


async def test_is_a_transport_and_exported() -> None:
    a, b, _, _ = pair()
    assert isinstance(a, Transport) and a.transport_type == "message-port"
    assert pyodide_transport.MessagePortTransport is MessagePortTransport
    assert pyodide_transport.open_worker_port is open_worker_port
    assert {"MessagePortTransport", "open_worker_port"} <= set(pyodide_transport.__all__)
    await a.close()
    await b.close()


async def test_1000_messages_arrive_in_order_both_ways() -> None:
    a, b, p1, _ = pair()
    for i in range(1000):
        await a.send(make_request(i, "ping"))
        await b.send(make_notification("n", {"i": i}))
    assert p1.posted == 1000  # one postMessage per message
    assert [(await b.receive()).id for _ in range(1000)] == list(range(1000))  # type: ignore[union-attr]
    got = [(await a.receive()).params["i"] for _ in range(1000)]  # type: ignore[union-attr, index]
    assert got == list(range(1000))
    await a.close()


async def test_each_message_is_its_json_text() -> None:
    p1, p2 = memory_port_pair()
    a = MessagePortTransport(p1)
    seen: list[Any] = []
    p2.listen(seen.append)
    message = make_request(7, "tools/list")
    await a.send(message)
    await asyncio.sleep(0)
    assert seen == [encode_message(message)] and isinstance(seen[0], str)
    await a.close()
    await asyncio.sleep(0)
    assert seen[-1] == PeerClosed("closed")


@pytest.mark.parametrize("closer", ["a", "b"])
async def test_close_from_either_side_reaches_the_other_with_the_reason(closer: str) -> None:
    a, b, _, _ = pair()
    closing, other = (a, b) if closer == "a" else (b, a)
    pending = asyncio.ensure_future(other.receive())
    await asyncio.sleep(0)
    await closing.close(reason="server shutting down")
    with pytest.raises(ConnectionClosedError) as caught:
        await asyncio.wait_for(pending, 2)
    assert caught.value.reason == "server shutting down" and "server shutting down" in str(caught.value)
    assert not other.is_connected() and not closing.is_connected()
    for transport in (closing, other):
        with pytest.raises(ConnectionClosedError):
            await transport.send(make_notification("late"))
        with pytest.raises(ConnectionClosedError):
            await transport.receive()  # and again: every later call fails
    await other.close()  # after the peer's close: nothing more is posted
    await closing.close()


async def test_the_peer_reads_what_came_before_the_close() -> None:
    a, b, _, _ = pair()
    for i in range(3):
        await a.send(make_request(i, "ping"))
    await a.close()
    assert [(await b.receive()).id for _ in range(3)] == [0, 1, 2]  # type: ignore[union-attr]
    with pytest.raises(ConnectionClosedError):
        await b.receive()


async def test_close_wakes_our_own_pending_receive_and_releases_the_port() -> None:
    a, b, p1, _ = pair()
    pending = asyncio.ensure_future(a.receive())
    await asyncio.sleep(0)
    await a.close()
    with pytest.raises(ConnectionClosedError, match="closed"):
        await asyncio.wait_for(pending, 2)
    assert p1.closed
    await b.close()


async def test_close_is_idempotent_and_tells_the_peer_once() -> None:
    a, b, p1, p2 = pair()
    await a.close()
    await a.close()
    assert p1.posted == 1 and p1.closed
    await asyncio.sleep(0)
    assert p2.closed  # the peer let go of its end on the close message, without being asked
    await b.close()
    assert p2.posted == 0  # nobody left to tell


async def test_bad_input_is_a_clear_error_and_nothing_after_it_is_lost() -> None:
    a, b, _, p2 = pair(max_message_size=200)
    p2.inject("not json")
    p2.inject('{"jsonrpc": "2.0"}')
    p2.inject(encode_message(make_notification("big", {"x": "y" * 300})))
    p2.inject(Undeliverable("a message could not be deserialized (messageerror)"))
    p2.inject(Undeliverable("an object, not a string"))
    await a.send(make_request(1, "ping"))
    errors = []
    for _ in range(5):
        with pytest.raises(RemoteProtocolError) as caught:
            await b.receive()
        errors.append(caught.value)
    assert "invalid JSON" in str(errors[0])
    assert "none of method, result, error" in str(errors[1])
    assert isinstance(errors[2], MessageTooLargeError) and "max_message_size=200" in str(errors[2])
    assert "messageerror" in str(errors[3]) and "not a string" in str(errors[4])
    assert (await b.receive()).id == 1  # type: ignore[union-attr]
    assert b.is_connected()
    await a.close()


async def test_a_batch_arrives_as_its_messages() -> None:
    a, b, _, p2 = pair()
    p2.inject(f"[{encode_message(make_request(1, 'ping'))},{encode_message(make_notification('n'))}]")
    assert (await b.receive()).id == 1  # type: ignore[union-attr]
    assert (await b.receive()).method == "n"  # type: ignore[union-attr]
    await a.close()


async def test_an_oversize_send_is_refused_and_nothing_is_posted() -> None:
    a, b, p1, _ = pair(max_message_size=100)
    with pytest.raises(LocalProtocolError, match="max_message_size=100"):
        await a.send(make_notification("big", {"x": "y" * 200}))
    assert p1.posted == 0 and a.is_connected()
    await a.send(make_notification("small"))
    assert (await b.receive()).method == "small"  # type: ignore[union-attr]
    await a.close()


async def test_messages_posted_before_the_transport_exists_are_kept() -> None:
    p1, p2 = memory_port_pair()
    p1.post(encode_message(make_notification("early")))
    await asyncio.sleep(0)
    b = MessagePortTransport(p2)
    assert (await b.receive()).method == "early"  # type: ignore[union-attr]
    await b.close()


async def test_a_worker_error_ends_the_transport_naming_it() -> None:
    owner = FakeOwner()
    p1, p2 = memory_port_pair()
    page = MessagePortTransport(p1, owner=owner)
    worker = MessagePortTransport(p2)
    pending = asyncio.ensure_future(page.receive())
    await asyncio.sleep(0)
    owner.fail("ReferenceError: boom is not defined (worker.js:3)")
    with pytest.raises(ConnectionClosedError, match="the worker failed: ReferenceError: boom") as caught:
        await asyncio.wait_for(pending, 2)
    assert "boom" in caught.value.reason
    assert not page.is_connected() and owner.unwatched == 1 and p1.closed
    with pytest.raises(ConnectionClosedError, match="worker failed"):
        await page.send(make_notification("late"))
    with pytest.raises(ConnectionClosedError, match="worker error: ReferenceError"):
        await worker.receive()  # the worker end hears of it, if it still runs
    owner.fail("again")  # no longer watched: nothing happens
    await page.close()
    assert not owner.terminated and owner.unwatched == 1


async def test_an_error_without_a_message_still_says_what_happened() -> None:
    owner = FakeOwner()
    p1, _ = memory_port_pair()
    page = MessagePortTransport(p1, owner=owner)
    owner.fail("")
    with pytest.raises(ConnectionClosedError, match="worker failed: an error event without a message"):
        await page.receive()


async def test_an_endpoint_may_report_the_owner_failure_itself() -> None:
    a, b, _, p2 = pair()
    p2.inject(OwnerFailed("out of memory"))
    with pytest.raises(ConnectionClosedError, match="worker failed: out of memory"):
        await b.receive()
    await a.close()


async def test_closing_stops_watching_the_owner_but_never_terminates_it() -> None:
    owner = FakeOwner()
    p1, _ = memory_port_pair()
    page = MessagePortTransport(p1, owner=owner)
    await page.close()
    assert owner.unwatched == 1 and not owner.watchers and not owner.terminated


def test_what_is_not_a_port_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="PortEndpoint"):
        MessagePortTransport(object())
    p1, _ = memory_port_pair()
    with pytest.raises(TypeError, match="PortOwner"):
        MessagePortTransport(p1, owner=object())
    assert p1.closed  # what was set up is released again
    with pytest.raises(ValueError, match="max_message_size"):
        MessagePortTransport(memory_port_pair()[0], max_message_size=0)


def test_open_worker_port_needs_pyodide() -> None:
    with pytest.raises(LocalProtocolError, match="Pyodide"):
        open_worker_port(object())


# -------------------------------------------- the transport suite: the demo server at the other end


@pytest.mark.parametrize("stack", scenarios.STACKS)
@pytest.mark.parametrize("era", ["auto", scenarios.HANDSHAKE])
@pytest.mark.parametrize("scenario", list(scenarios.SUITE))
async def test_suite_over_a_port(scenario: str, era: str, stack: str) -> None:
    outcome = await scenarios.run_stacked(scenario, scenarios.connect_over_port, scenarios.PORT_URL, era, stack)
    if scenario == "initialize":
        assert outcome["transport"] == "message-port"
        assert outcome["era"] == ("modern" if era == "auto" else "handshake")
    assert await scenarios.port_servers_done() <= 1  # the server loop ends with the client
    assert not [t for t in scenarios._port_servers if not t.done()]

"""The wrappers stack in any order around a real Client and a tiny server, each doing its job."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from pyodide_transport import (
    CircuitBreakerTransport,
    Client,
    InMemoryTransport,
    LoggingTransport,
    Policy,
    PolicyTransport,
    RateLimit,
    Transport,
    bridge,
)
from pyodide_transport.errors import CircuitOpenError, MCPError, NetworkError, PolicyError
from pyodide_transport.messages import TransportMessage
from pyodide_transport.middleware import LogRecord, Middleware, layers

try:
    from middleware_helpers import FakeClock, TinyServer
except ImportError:  # pragma: no cover - another import mode
    from .middleware_helpers import FakeClock, TinyServer  # type: ignore[no-redef,import-not-found,unused-ignore]


class Unplugged(Middleware):
    """The innermost layer: a wire that can be unplugged (``send`` fails like a dead network)."""

    layer = "unplugged"
    unplugged = False
    session_id = "sess-0123456789"

    async def send(self, message: TransportMessage) -> None:
        if self.unplugged:
            raise NetworkError("unplugged")
        await self.inner.send(message)


Wrap = Callable[[Transport], Transport]
ORDERS = list(itertools.permutations(["logging", "policy", "breaker"]))


@pytest.mark.parametrize("order", ORDERS, ids=["+".join(o) for o in ORDERS])
async def test_any_order_works_with_a_real_client(order: tuple[str, ...]) -> None:
    clock = FakeClock()
    records: list[LogRecord] = []
    changes: list[tuple[str, str]] = []
    wrappers: dict[str, Wrap] = {
        "logging": lambda t: LoggingTransport(t, on_record=records.append, clock=clock),
        "policy": lambda t: PolicyTransport(t, deny_methods={"prompts/*"}, clock=clock),
        "breaker": lambda t: CircuitBreakerTransport(
            t, failure_threshold=2, cool_down=10.0, clock=clock, on_state_change=lambda o, n: changes.append((o, n))
        ),
    }
    client_end, server_end = InMemoryTransport.create_pair()
    wire = Unplugged(client_end)
    transport: Transport = wire
    for name in reversed(order):  # order[0] is outermost
        transport = wrappers[name](transport)
    assert layers(transport) == (*order, "unplugged", "memory")
    assert transport.transport_type == "memory"
    assert transport.session_id == "sess-0123456789"  # type: ignore[attr-defined]

    async with TinyServer(server_end) as server, Client(transport, protocol_version="2025-11-25") as client:
        assert (await client.list_tools()).tools
        with pytest.raises(PolicyError):  # policy: refused at once, the connection goes on
            await asyncio.wait_for(client.list_prompts(), 1.0)
        assert (await client.list_tools()).tools

        wire.unplugged = True  # breaker: two failures open it, then it fails fast
        for _ in range(2):
            with pytest.raises(NetworkError):
                await client.list_tools()
        with pytest.raises(CircuitOpenError):
            await client.list_tools()
        assert changes == [("closed", "open")]
        # a policy refusal never reaches (or counts in) the breaker, whatever the order
        if order.index("policy") < order.index("breaker"):
            with pytest.raises(PolicyError):
                await client.list_prompts()

        wire.unplugged = False
        clock.advance(10.0)
        assert (await client.list_tools()).tools
        assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
        assert server.requests("prompts/list") == []

    outgoing = [(r.method, r.error) for r in records if r.direction == "out" and r.kind == "request"]
    assert ("tools/list", None) in outgoing
    if order.index("logging") < order.index("policy"):  # logging outside sees the refusal
        assert ("prompts/list", "PolicyError") in outgoing
    else:
        assert all(method != "prompts/list" for method, _ in outgoing)
    if order.index("logging") < order.index("breaker"):
        assert ("tools/list", "CircuitOpenError") in outgoing
    assert all(r.session == "sess-012…" for r in records)


async def test_a_policed_gateway_bridge() -> None:
    """The seed's gateway: a client-facing side bridged to a backend behind a policy and a log."""
    records: list[LogRecord] = []
    client_end, front = InMemoryTransport.create_pair()
    back, server_end = InMemoryTransport.create_pair()
    backend = LoggingTransport(
        PolicyTransport(back, deny_methods={"tools/call"}, rate=RateLimit(1000, burst=100)),
        on_record=records.append,
    )
    task = asyncio.ensure_future(bridge(front, backend))
    async with TinyServer(server_end) as server, Client(client_end, protocol_version="2025-11-25") as client:
        assert (await client.list_tools()).tools
        # across the gateway the refusal can only travel as a JSON-RPC error, at once
        with pytest.raises(MCPError) as info:
            await asyncio.wait_for(client.call_tool("echo", {}), 1.0)
        assert info.value.code == -32600 and info.value.data["rule"] == "method"
        assert server.requests("tools/call") == []
        assert (await client.list_tools()).tools
    await asyncio.wait_for(task, 1.0)
    assert any(r.method == "tools/call" and r.error == "PolicyError" for r in records)


def test_policy_is_exported_from_the_package() -> None:
    assert Policy.of(deny_methods=["x"]).deny_methods == frozenset({"x"})

"""PolicyTransport with a real Client: refusals both ways fail only what they refuse."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mcp_types import ListRootsResult, Root
from mcp_types.jsonrpc import JSONRPCError, JSONRPCResponse

from pyodide_transport import Client, InMemoryTransport
from pyodide_transport.errors import PolicyError
from pyodide_transport.messages import TransportMessage, make_notification, make_request, make_response
from pyodide_transport.middleware import Direction, Policy, PolicyTransport, RateLimit

try:
    from middleware_helpers import FakeClock, ScriptedWire, TinyServer, wait_until
except ImportError:  # pragma: no cover - another import mode
    from .middleware_helpers import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        FakeClock,
        ScriptedWire,
        TinyServer,
        wait_until,
    )

VERSION = "2025-11-25"


async def test_refused_outgoing_request_fails_at_once_and_the_connection_goes_on() -> None:
    refused: list[tuple[PolicyError, TransportMessage]] = []
    client_end, server_end = InMemoryTransport.create_pair()
    transport = PolicyTransport(client_end, deny_methods={"tools/call"}, on_refused=lambda e, m: refused.append((e, m)))
    async with TinyServer(server_end) as server, Client(transport, protocol_version=VERSION) as client:
        with pytest.raises(PolicyError) as info:
            await asyncio.wait_for(client.call_tool("echo", {"m": 1}), 1.0)
        assert info.value.rule == "method" and info.value.direction == "out"
        assert "'tools/call' is denied" in str(info.value)
        assert (await client.list_tools()).tools[0].name == "echo"  # the connection keeps working
        assert server.requests("tools/call") == []
        assert [(e.rule, getattr(m, "method", None)) for e, m in refused] == [("method", "tools/call")]


async def test_refused_outgoing_notification_raises_too() -> None:
    wire = ScriptedWire()
    transport = PolicyTransport(wire, allow_methods={"tools/*"})
    with pytest.raises(PolicyError) as info:
        await transport.send(make_notification("notifications/roots/list_changed"))
    assert info.value.direction == "out" and wire.sent == []
    await transport.send(make_notification("notifications/initialized"))  # lifecycle passes an allow list
    assert len(wire.sent) == 1


async def test_refused_incoming_request_is_answered_with_a_json_rpc_error(caplog: pytest.LogCaptureFixture) -> None:
    asked: list[str] = []

    async def roots() -> ListRootsResult:
        asked.append("roots")
        return ListRootsResult(roots=[Root(uri="file:///tmp")])

    client_end, server_end = InMemoryTransport.create_pair()
    transport = PolicyTransport(client_end, inbound=Policy.of(deny_methods={"roots/list"}))
    caplog.set_level(logging.WARNING, "pyodide_transport.middleware")
    async with (
        TinyServer(server_end) as server,
        Client(transport, protocol_version=VERSION, roots_handler=roots) as client,
    ):
        answer = await server.ask("roots/list")
        assert isinstance(answer, JSONRPCError) and answer.id == "srv-1"
        assert answer.error.code == -32600 and "method rule" in answer.error.message
        assert answer.error.data["rule"] == "method"
        assert asked == []  # never delivered to the client
        assert isinstance(await server.ask("ping"), JSONRPCResponse)  # other server requests still answered
        assert (await client.list_tools()).tools
    assert "policy refused incoming request roots/list #srv-1 (method)" in caplog.text


async def test_refused_incoming_notification_is_dropped_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    logs: list[Any] = []
    refused: list[PolicyError] = []
    client_end, server_end = InMemoryTransport.create_pair()
    transport = PolicyTransport(
        client_end, inbound=Policy(max_message_size=200), on_refused=lambda e, m: refused.append(e)
    )
    caplog.set_level(logging.WARNING, "pyodide_transport.middleware")
    async with (
        TinyServer(server_end) as server,
        Client(transport, protocol_version=VERSION, on_log=logs.append) as client,
    ):
        await server.transport.send(make_notification("notifications/message", {"level": "info", "data": "x" * 500}))
        await server.transport.send(make_notification("notifications/message", {"level": "info", "data": "small"}))
        await wait_until(lambda: logs, "the small log message")
        assert [p.data for p in logs] == ["small"]
        assert [(e.rule, e.direction) for e in refused] == [("size", "in")]
        assert (await client.list_tools()).tools
    assert "policy refused incoming notification notifications/message (size): dropped" in caplog.text
    assert "x" * 50 not in caplog.text  # never the payload


async def test_refused_incoming_response_fails_exactly_its_request() -> None:
    client_end, server_end = InMemoryTransport.create_pair()
    big = {"content": [{"type": "text", "text": "y" * 5000}]}
    transport = PolicyTransport(client_end, inbound=Policy(max_message_size=2000))
    async with (
        TinyServer(server_end, {"tools/call": big}),
        Client(transport, protocol_version=VERSION, request_timeout=5) as client,
    ):
        with pytest.raises(PolicyError) as info:
            await asyncio.wait_for(client.call_tool("echo", {}), 1.0)  # fails at once, no timeout
        assert info.value.rule == "size" and info.value.direction == "in"
        assert info.value.request_ids == (2,)  # initialize was #1
        assert (await client.list_tools()).tools  # the connection goes on


async def test_rate_limit_with_a_fake_clock() -> None:
    clock = FakeClock()
    client_end, server_end = InMemoryTransport.create_pair()
    async with TinyServer(server_end):
        client = Client(
            PolicyTransport(client_end, rate=RateLimit(1.0, burst=3), clock=clock), protocol_version=VERSION
        )
        await client.connect()  # initialize + notifications/initialized: two tokens
        try:
            await client.list_tools()  # the third
            with pytest.raises(PolicyError) as info:
                await client.list_tools()
            assert info.value.rule == "rate" and "next one allowed in 1 s" in str(info.value)
            clock.advance(1.0)
            assert (await client.list_tools()).tools
            with pytest.raises(PolicyError):
                await client.list_tools()
        finally:
            await client.close()


async def test_inspect_rewrites_results_and_refuses_outgoing() -> None:
    seen: list[tuple[Direction, str]] = []

    def inspect(direction: Direction, message: TransportMessage) -> TransportMessage | None:
        seen.append((direction, type(message).__name__))
        if direction == "out" and getattr(message, "method", None) == "prompts/list":
            return None
        if direction == "in" and isinstance(message, JSONRPCResponse) and "content" in message.result:
            text = message.result["content"][0]["text"].replace("alice@example.org", "[email]")
            return make_response(message.id, {"content": [{"type": "text", "text": text}]})
        return message

    client_end, server_end = InMemoryTransport.create_pair()
    pii = {"content": [{"type": "text", "text": "write to alice@example.org"}]}
    async with (
        TinyServer(server_end, {"tools/call": pii}),
        Client(PolicyTransport(client_end, inspect=inspect), protocol_version=VERSION) as client,
    ):
        result = await client.call_tool("echo", {})
        assert result.content[0].text == "write to [email]"  # type: ignore[union-attr]
        with pytest.raises(PolicyError) as info:
            await client.list_prompts()
        assert info.value.rule == "inspection" and info.value.direction == "out"
    assert ("out", "JSONRPCRequest") in seen and ("in", "JSONRPCResponse") in seen


async def test_an_inspect_hook_that_raises_refuses() -> None:
    def broken(direction: Direction, message: TransportMessage) -> TransportMessage | None:
        raise KeyError("oops")

    wire = ScriptedWire()
    with pytest.raises(PolicyError) as info:
        await PolicyTransport(wire, inspect=broken).send(make_request(1, "tools/list"))
    assert info.value.rule == "inspection" and "KeyError" in str(info.value) and wire.sent == []


async def test_incoming_refusals_without_a_client() -> None:
    wire = ScriptedWire()
    transport = PolicyTransport(wire, inbound=Policy.of(deny_methods={"sampling/*", "notifications/x"}))
    wire.inbox.put_nowait(make_notification("notifications/x"))
    wire.inbox.put_nowait(make_request(7, "sampling/createMessage"))
    wire.inbox.put_nowait(make_request(8, "ping"))
    delivered = await transport.receive()
    assert getattr(delivered, "id", None) == 8
    assert len(wire.sent) == 1 and isinstance(wire.sent[0], JSONRPCError) and wire.sent[0].id == 7


async def test_an_unanswerable_refused_request_is_logged_and_reading_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    wire = ScriptedWire()
    transport = PolicyTransport(wire, inbound=Policy.of(deny_methods={"roots/list"}))
    wire.closed = True  # the answer cannot be sent
    wire.inbox.put_nowait(make_request(1, "roots/list"))
    wire.inbox.put_nowait(make_notification("notifications/message", {"level": "info", "data": "x"}))
    caplog.set_level(logging.WARNING, "pyodide_transport.middleware")
    assert getattr(await transport.receive(), "method", None) == "notifications/message"
    assert "could not answer a refused request #1: ConnectionClosedError" in caplog.text


async def test_passes_through_the_rest() -> None:
    wire = ScriptedWire()
    transport = PolicyTransport(wire)
    assert transport.transport_type == "scripted" and transport.is_connected()
    assert transport.session_id == wire.session_id
    assert transport.outbound == Policy() and transport.inbound == Policy()
    with pytest.raises(AttributeError):
        _ = transport._private
    await transport.close()
    assert wire.closed and not transport.is_connected()


async def test_inbound_rate_limit_drops_notifications_but_never_responses() -> None:
    clock = FakeClock()
    refused: list[PolicyError] = []
    wire = ScriptedWire()
    transport = PolicyTransport(
        wire, inbound=Policy(rate=RateLimit(1.0, burst=1)), clock=clock, on_refused=lambda e, m: refused.append(e)
    )
    wire.inbox.put_nowait(make_notification("n1"))
    assert getattr(await transport.receive(), "method", None) == "n1"
    wire.inbox.put_nowait(make_notification("n2"))  # over the rate: dropped
    wire.inbox.put_nowait(make_response(5, {}))  # responses are not rate-limited
    assert getattr(await transport.receive(), "id", None) == 5
    clock.advance(1.0)
    wire.inbox.put_nowait(make_notification("n3"))
    assert getattr(await transport.receive(), "method", None) == "n3"
    assert [(e.rule, e.direction) for e in refused] == [("rate", "in")]

"""Backend pools and capability routing through a real gateway: replicas round-robin, routers merge upstreams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import mcp_types as mt
import pytest
from gateway_support import Gw, connect_gateway, demo_upstream, start_gateway, tool_text
from mcp_types.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND

from devtools.reliability import until
from devtools.servers import DemoServer
from pyodide_transport.client import Client
from pyodide_transport.errors import MCPError, TransportError


def _replica_url(gw: Gw, client: Client) -> str:
    """The replica URL behind a client's gateway session (logging -> policy -> breaker -> raw transport)."""
    session_id = client.transport.session_id  # type: ignore[attr-defined]
    forwarder: Any = gw.endpoint("pool").sessions[session_id].core
    return str(forwarder._transport.inner.inner.inner.url)


# -- the backend pool --------------------------------------------------------------------------------


@pytest.fixture
def replicas() -> Iterator[list[DemoServer]]:
    servers = [DemoServer("--no-oauth", "--no-gateway", site=None, quiet=True) for _ in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


async def test_replicas_round_robin_sessions_stay_pinned_and_a_dead_one_is_skipped(replicas: list[DemoServer]) -> None:
    urls = [f"{server.url}/mcp" for server in replicas]
    gw = await start_gateway({"pool": {"url": urls, "breaker": {"failures": 1, "coolDown": 60}}})
    clients: list[Client] = []
    try:
        async with httpx.AsyncClient(base_url=gw.server.base, timeout=10) as http:
            listing = (await http.get("/gateway")).json()
        [entry] = listing["upstreams"]
        assert entry["replicas"] == 2 and entry["kind"] == "http"
        assert "127.0.0.1:" not in json.dumps(listing)

        for i in range(4):
            client = await connect_gateway(gw.url("pool"))
            clients.append(client)
            assert tool_text(await client.call_tool("echo", {"message": f"m{i}"})) == f"m{i}"
        assert [_replica_url(gw, c) for c in clients] == [urls[0], urls[1], urls[0], urls[1]]
        upstream = gw.gateway.upstreams["pool"]
        assert upstream.opened == [2, 2]

        replicas[1].stop()  # the sessions pinned to it fail; the others go on
        for client in clients[1::2]:
            with pytest.raises((MCPError, TransportError)) as caught:
                await asyncio.wait_for(client.call_tool("echo", {"message": "x"}), 20)
            assert "pool" in str(caught.value) and "127.0.0.1" not in str(caught.value)
        for client in clients[0::2]:
            assert tool_text(await client.call_tool("echo", {"message": "a"})) == "a"
        assert upstream.breakers[1].state == "open" and upstream.breakers[0].state == "closed"

        for _ in range(3):  # replica 1's turn comes, and is skipped: its breaker is open
            client = await connect_gateway(gw.url("pool"))
            clients.append(client)
            assert tool_text(await client.call_tool("echo", {"message": "new"})) == "new"
            assert _replica_url(gw, client) == urls[0]
        assert upstream.opened == [5, 2]
    finally:
        for client in clients:
            await client.close()
        await gw.server.stop()


async def test_every_replica_dead_is_the_breakers_fast_error() -> None:
    from live_server import free_port

    urls = [f"http://127.0.0.1:{free_port()}/mcp" for _ in range(2)]
    gw = await start_gateway({"pool": {"url": urls, "breaker": {"failures": 1, "coolDown": 60}}})
    try:
        for _ in range(2):  # each replica fails once, opening its breaker
            with pytest.raises(TransportError) as caught:
                await connect_gateway(gw.url("pool"))
            assert "127.0.0.1" not in str(caught.value)
        assert [b.state for b in gw.gateway.upstreams["pool"].breakers] == ["open", "open"]
        with pytest.raises(MCPError, match="circuit open") as refused:
            await connect_gateway(gw.url("pool"))
        assert isinstance(refused.value.data, dict) and refused.value.data["retry_after"] > 0
    finally:
        await gw.server.stop()


# -- capability routing ------------------------------------------------------------------------------


@pytest.fixture
async def routed() -> AsyncIterator[Gw]:
    servers = {
        **demo_upstream("demo-a"),
        **demo_upstream("demo-b"),
        "all": {"routes": {"a_": "demo-a", "b_": "demo-b"}, "default": "demo-a"},
        "tools-only": {"routes": {"b_": "demo-b"}},
    }
    gw = await start_gateway(servers)
    try:
        yield gw
    finally:
        await gw.server.stop()


@pytest.mark.parametrize("kind", ["mcp", "ws"])
async def test_router_merges_two_upstreams(routed: Gw, kind: str) -> None:
    async def sampling(params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
        return mt.CreateMessageResult(role="assistant", content=mt.TextContent(text="forty-two"), model="m")

    async def elicit(params: Any) -> mt.ElicitResult:
        return mt.ElicitResult(action="accept", content={"name": "Ada", "colour": "red"})

    logs: list[Any] = []
    client = await connect_gateway(routed.url("all", kind), sampling_handler=sampling, elicitation_handler=elicit)
    client.on_log = logs.append
    try:
        assert client.server_info is not None and client.server_info.name == "gateway:all"
        capabilities = client.server_capabilities
        assert capabilities is not None and capabilities.tools is not None and capabilities.resources is not None
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"a_calculate", "b_calculate", "a_long_running", "b_ask_llm", "a_ask_user"} <= tools
        assert not any(t.startswith(("a_a_", "b_b_")) or "_" not in t for t in tools)
        result = await client.call_tool("b_calculate", {"a": 6, "b": 7, "operation": "multiply"})
        assert result.structured_content == {"result": 42, "expression": "6 * 7 = 42"}
        # the same id space towards the browser, two targets asking it things: both answered right
        asks = await asyncio.gather(
            client.call_tool("b_ask_llm", {"question": "q"}), client.call_tool("a_ask_user", {})
        )
        assert "forty-two" in tool_text(asks[0]) and tool_text(asks[1]) == "Hello Ada, you like red."
        progress: list[float] = []
        result = await client.call_tool(
            "a_long_running", {"steps": 3, "delay_ms": 5}, progress=lambda v, t, m: progress.append(v)
        )
        assert tool_text(result) == "completed 3 steps" and progress == [1, 2, 3]
        await client.call_tool("b_log_messages", {"count": 2})
        assert (await client.list_resources()).resources  # the default target's
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("zz_echo", {"message": "x"})
        assert unknown.value.code == INVALID_PARAMS and "zz_echo" in str(unknown.value)
        # cancellation reaches the target holding the call; the session goes on
        started = asyncio.Event()
        call = asyncio.ensure_future(
            client.call_tool("b_long_running", {"steps": 50, "delay_ms": 100}, progress=lambda v, t, m: started.set())
        )
        await asyncio.wait_for(started.wait(), 20)  # the call runs upstream
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert tool_text(await client.call_tool("a_echo", {"message": "still here"})) == "still here"
        assert tool_text(await client.call_tool("b_echo", {"message": "b too"})) == "b too"
        upstreams = routed.gateway.upstreams
        assert upstreams["demo-a"].live == 1 and upstreams["demo-b"].live == 1  # one connection each
    finally:
        await client.close()
    assert logs, "log notifications pass through"
    await until(lambda: all(u.live == 0 for u in routed.gateway.upstreams.values()))


async def test_router_without_a_default_answers_only_tools(routed: Gw) -> None:
    client = await connect_gateway(routed.url("tools-only"))
    try:
        assert {t.name for t in (await client.list_tools()).tools} >= {"b_echo", "b_calculate"}
        assert tool_text(await client.call_tool("b_echo", {"message": "hi"})) == "hi"
        with pytest.raises(MCPError) as missing:
            await client.list_resources()
        assert missing.value.code == METHOD_NOT_FOUND
        assert routed.gateway.upstreams["demo-a"].live == 0  # never opened: not a target
    finally:
        await client.close()


async def test_router_listing(routed: Gw) -> None:
    async with httpx.AsyncClient(base_url=routed.server.base, timeout=10) as http:
        listing = {u["name"]: u for u in (await http.get("/gateway")).json()["upstreams"]}
    assert listing["all"] == {
        "name": "all",
        "kind": "router",
        "endpoints": {"mcp": "/gateway/all/mcp", "ws": "/gateway/all/ws"},
        "routes": {"a_": "demo-a", "b_": "demo-b"},
        "default": "demo-a",
    }


async def test_router_in_the_modern_era(routed: Gw) -> None:
    client = await connect_gateway(routed.url("all"), era=None)  # tries 2026-07-28 first
    try:
        assert client.protocol_version == "2026-07-28"
        assert "b_calculate" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("b_calculate", {"a": 2, "b": 3, "operation": "add"})
        assert result.structured_content == {"result": 5, "expression": "2 + 3 = 5"}
    finally:
        await client.close()

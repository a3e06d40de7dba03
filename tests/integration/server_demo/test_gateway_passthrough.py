"""Gateway pass-through, breaker recovery and request-borne upstream attempts, on a real uvicorn server.

* Notifications and server-to-client requests reach the browser through ``/gateway/NAME/mcp`` and
  ``/ws`` in both protocol eras: resource updates of a subscription, ``roots/list`` answered by
  the client's roots handler, log messages at the level the client set, input-required results.
* A URL upstream's breaker opens when its server dies and closes again once a new one listens.
* A request cannot name a command or URL: nothing is spawned or fetched on its say-so, and the
  configured secrets never reach a response or the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import mcp_types as mt
import pytest
from gateway_support import (
    HANDSHAKE,
    Gw,
    child_processes,
    connect_gateway,
    demo_upstream,
    start_gateway,
    stdio_server,
    tool_text,
)
from live_server import LiveServer, free_port, modern_body, modern_headers, sse_events

from devtools.reliability import until
from devtools.servers import DemoServer
from pyodide_transport.client import Client
from pyodide_transport.errors import MCPError, TransportError
from server_demo.app import AppConfig, create_app
from server_demo.demo import COUNTER_URI
from server_demo.gateway import Upstream

MODERN = "2026-07-28"
ENV_SECRET = "env-s3cr3t-5e1f-must-not-leak"
HEADER_SECRET = "hdr-s3cr3t-9a7c-must-not-leak"
ORIGIN = {"Origin": "http://127.0.0.1:1"}

# A tiny stdio MCP server whose tool ``change`` announces that its tool, resource and prompt lists changed.
LIST_CHANGER = stdio_server(
    "changer",
    """
    for kind in ("tools", "resources", "prompts"):
        out({"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"})
    result = {"content": [{"type": "text", "text": "changed"}]}
    """,
    capabilities='{k: {"listChanged": True} for k in ("tools", "resources", "prompts")}',
    tools='[{"name": "change", "inputSchema": {"type": "object"}}]',
)


async def _connect(url: str, era: str | None = HANDSHAKE, **options: Any) -> Client:
    """``connect_gateway``, checking that the client speaks ``era`` (None: 2026-07-28)."""
    client = await connect_gateway(url, era=era, **options)
    assert client.protocol_version == (era or MODERN)
    return client


async def _wait(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    await until(predicate, limit)


@pytest.fixture
async def gw() -> AsyncIterator[Gw]:
    live = await start_gateway(demo_upstream())
    try:
        yield live
    finally:
        await live.server.stop()


KINDS = ["mcp", "ws"]
ERAS = [pytest.param(HANDSHAKE, id="handshake"), pytest.param(None, id="modern")]


# --------------------------------------------------------------------------- 1. pass-through


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("kind", KINDS)
async def test_server_requests_and_notifications_pass_through(gw: Gw, kind: str, era: str | None) -> None:
    """Roots, elicitation, logging at a level and resource updates, in one session of each kind and era."""
    asked: list[str] = []
    logs: list[mt.LoggingMessageNotificationParams] = []
    updated: list[str] = []

    async def roots() -> mt.ListRootsResult:
        asked.append("roots")
        return mt.ListRootsResult(roots=[mt.Root(uri="file:///srv/project", name="project")])

    async def elicit(params: mt.ElicitRequestFormParams | mt.ElicitRequestURLParams) -> mt.ElicitResult:
        asked.append(params.message)
        if "color" in params.message:
            return mt.ElicitResult(action="accept", content={"color": "teal"})
        return mt.ElicitResult(action="accept", content={"name": "Ada", "colour": "red"})

    client = await _connect(
        gw.url("demo-stdio", kind),
        era,
        roots_handler=roots,
        elicitation_handler=elicit,
        on_log=logs.append,
        on_resource_updated=updated.append,
    )
    try:
        # roots/list: a JSON-RPC request to the client (handshake) or an input-required result (modern)
        assert tool_text(await client.call_tool("list_client_roots", {})) == "project file:///srv/project"
        assert asked == ["roots"]

        # elicitation, the same two ways
        assert tool_text(await client.call_tool("ask_user", {})) == "Hello Ada, you like red."
        if era is None:  # two input-required rounds, each retry carrying the requestState sealed upstream
            assert tool_text(await client.call_tool("test_input_required_result_multi_round", {})) == "Ada likes teal"
            assert asked[1:] == [
                "Tell me about yourself",
                "Step 1: What is your name?",
                "Step 2: What is your favorite color?",
            ]
        else:
            assert asked[1:] == ["Tell me about yourself"]

        # logging/setLevel (handshake) or the level in every request's _meta (modern)
        await client.set_logging_level("warning")
        assert tool_text(await client.call_tool("log_messages", {"count": 4})) == "sent 4 log messages"
        await _wait(lambda: len(logs) >= 2)
        await asyncio.sleep(0.1)  # nothing else is on its way
        assert [(m.level, m.data) for m in logs] == [("warning", "log message 3 of 4"), ("error", "log message 4 of 4")]

        # resources/subscribe (handshake) or a subscriptions/listen stream (modern)
        caps = client.server_capabilities
        assert caps is not None and caps.resources is not None and caps.resources.subscribe is True
        assert caps.resources.list_changed is False  # the upstream's capabilities, passed through
        first = _counter(await client.read_resource(COUNTER_URI))
        await client.subscribe(COUNTER_URI)  # demo://counter ticks once a second while subscribed
        await _wait(lambda: COUNTER_URI in updated)
        assert _counter(await client.read_resource(COUNTER_URI)) > first
        assert set(updated) == {COUNTER_URI}
        await client.unsubscribe(COUNTER_URI)
    finally:
        await client.close()


def _counter(result: mt.ReadResourceResult) -> int:
    value: int = json.loads(getattr(result.contents[0], "text", ""))["value"]
    return value


@pytest.mark.parametrize("kind", ["mcp", "ws"])
async def test_modern_resource_updates_keep_coming_during_a_concurrent_call(gw: Gw, kind: str) -> None:
    updated: list[str] = []
    client = await _connect(gw.url("demo-stdio", kind), None, on_resource_updated=updated.append)
    try:
        await client.subscribe(COUNTER_URI)
        await _wait(lambda: bool(updated))
        before = len(updated)
        # 1.6 s of another request in flight: the counter (once a second) ticks meanwhile
        result = await client.call_tool("long_running", {"steps": 16, "delay_ms": 100})
        assert tool_text(result) == "completed 16 steps"
        endpoint = gw.endpoint("demo-stdio")
        dropped = endpoint.shared.core.dropped if endpoint.shared is not None else 0
        assert len(updated) > before, f"no resource update came during the call ({dropped} dropped by the gateway)"
    finally:
        await client.close()


async def test_modern_listen_notifications_name_the_browsers_request(gw: Gw) -> None:
    body = modern_body(5, "subscriptions/listen", {"notifications": {"resourceSubscriptions": [COUNTER_URI]}})
    headers = {**modern_headers("subscriptions/listen"), **ORIGIN}
    async with httpx.AsyncClient(timeout=20) as http:
        request = http.build_request("POST", gw.url("demo-stdio"), json=body, headers=headers)
        response = await http.send(request, stream=True)
        try:
            assert response.status_code == 200
            events = sse_events(response)
            first = (await asyncio.wait_for(anext(events), 10)).json()
        finally:
            await response.aclose()
    assert first["method"] == "notifications/subscriptions/acknowledged"
    # SEP-2575: every notification of the stream names the listen request, i.e. the id this browser sent
    assert first["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 5, first


async def test_list_changed_notifications_pass_through() -> None:
    live = await start_gateway({"changer": {"command": sys.executable, "args": ["-c", LIST_CHANGER]}})
    seen: list[str] = []
    try:
        for kind in KINDS:
            seen.clear()
            client = await _connect(
                live.url("changer", kind),
                on_tools_list_changed=lambda: seen.append("tools"),
                on_resources_list_changed=lambda: seen.append("resources"),
                on_prompts_list_changed=lambda: seen.append("prompts"),
            )
            try:
                assert tool_text(await client.call_tool("change", {})) == "changed"
                await _wait(lambda: len(seen) == 3)
                assert sorted(seen) == ["prompts", "resources", "tools"]
            finally:
                await client.close()
    finally:
        await live.server.stop()


# --------------------------------------------------------------------------- 2. breaker


def _state(upstream: Upstream) -> str:
    return upstream.breaker.state


async def test_breaker_opens_when_the_upstream_dies_and_closes_when_it_is_back() -> None:
    first = await asyncio.to_thread(DemoServer, site=None, quiet=True)
    port = first.port
    second: DemoServer | None = None
    live = await start_gateway(
        {"remote": {"url": f"http://127.0.0.1:{port}/mcp", "breaker": {"failures": 2, "coolDown": 0.5}}}
    )
    try:
        upstream = live.gateway.upstreams["remote"]
        client = await _connect(live.url("remote"))
        assert tool_text(await client.call_tool("echo", {"message": "up"})) == "up"
        await client.close()
        assert _state(upstream) == "closed"

        await asyncio.to_thread(first.stop)
        for _ in range(2):
            with pytest.raises(TransportError, match="remote"):
                await asyncio.wait_for(_connect(live.url("remote")), 10)
        assert _state(upstream) == "open"
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(MCPError, match="circuit open") as caught:
            await _connect(live.url("remote"))
        assert loop.time() - start < 1.0
        assert isinstance(caught.value.data, dict) and 0 < caught.value.data["retry_after"] <= 0.5

        second = await asyncio.to_thread(DemoServer, site=None, quiet=True, port=port)  # back, on the same port
        await asyncio.sleep(max(0.0, start + 0.6 - loop.time()))  # the cool-down is over
        client = await asyncio.wait_for(_connect(live.url("remote")), 10)
        try:
            assert _state(upstream) == "closed" and upstream.breaker.failures == 0
            assert tool_text(await client.call_tool("echo", {"message": "back"})) == "back"
        finally:
            await client.close()
    finally:
        await live.server.stop()
        first.stop()
        if second is not None:
            second.stop()


# --------------------------------------------------------------------------- 3. security

# A cheap stdio MCP server (starts in milliseconds): ``echo`` answers with its text. With GW_SECRET set it
# first prints it on stderr, which the gateway logs at DEBUG (scrubbed).
TINY = stdio_server(
    "tiny",
    'result = {"content": [{"type": "text", "text": msg["params"]["arguments"]["message"]}]}',
    prelude="""
    if os.environ.get("GW_SECRET"):
        print("my token is " + os.environ["GW_SECRET"], file=sys.stderr, flush=True)
    """,
)
TINY_CMDLINE = [sys.executable.encode(), b"-c", TINY.encode(), b""]


class Listener:
    """A TCP listener on a free loopback port that records whether anything connected."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(accepted, "127.0.0.1", free_port())
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    probe = Listener()
    await probe.start()
    try:
        yield probe
    finally:
        await probe.stop()


@pytest.fixture
async def tiny() -> AsyncIterator[Gw]:
    live = await start_gateway({"tiny": {"command": sys.executable, "args": ["-c", TINY]}})
    try:
        yield live
    finally:
        await live.server.stop()


def _initialize(**extra: Any) -> dict[str, Any]:
    params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {**params, **extra}}


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **ORIGIN}


async def _raw_post(port: int, path: str, body: bytes) -> int:
    """POST to ``path`` exactly as written (httpx would resolve ``..`` before sending); the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {ORIGIN['Origin']}\r\n"
            f"Accept: {MCP_HEADERS['Accept']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_unconfigured_names_and_traversal_are_404_and_spawn_nothing(tiny: Gw, listener: Listener) -> None:
    before = child_processes()
    body = json.dumps(_initialize()).encode()
    for path in (
        "/gateway/x/mcp",
        "/gateway/sh/mcp",
        "/gateway/../mcp",
        "/gateway/../gateway/x/mcp",
        "/gateway/tiny/../x/mcp",
        "/gateway/tiny%2F..%2Fx/mcp",
        "/gateway/..%2Ftiny/mcp",
        "/gateway/%2E%2E/mcp",
        "/gateway/tiny/mcp/..%2F..%2Fx",
        "/gateway/tiny/mcp/../../x/mcp",
        "/gateway//tiny/mcp",
        "/gateway/TINY/mcp",
    ):
        assert await _raw_post(tiny.server.port, path, body) == 404, path
    async with httpx.AsyncClient(base_url=tiny.server.base, timeout=10) as http:
        for path in ("/gateway/x/ws", "/gateway/tiny%2F..%2Fx/ws"):
            assert (await http.get(path)).status_code == 404, path
        for url in (listener.url, f"ws://127.0.0.1:{listener.port}/ws", f"http://127.0.0.1:{listener.port}/"):
            missing = await http.get("/gateway/match", params={"url": url}, headers=ORIGIN)
            assert missing.status_code == 404 and "no configured upstream" in missing.json()["error"]
    await asyncio.sleep(0.2)
    assert listener.connections == 0
    assert not set(child_processes()) - set(before)  # nothing new (an earlier test's child may end meanwhile)
    assert tiny.gateway.upstreams["tiny"].live == 0


async def test_a_request_cannot_name_a_command_or_url(tiny: Gw, listener: Listener) -> None:
    sneaky = {"command": "sh", "args": ["-c", "echo pwned"], "url": listener.url, "cwd": "/"}
    attempts: list[tuple[dict[str, str], dict[str, Any], dict[str, str]]] = [
        ({"command": "sh", "args": "-c", "url": listener.url, "name": "x"}, _initialize(), {}),
        ({}, {**_initialize(), **sneaky}, {}),
        ({}, _initialize(**sneaky, _meta={"url": listener.url, "command": "sh"}), {}),
        ({}, _initialize(), {"X-Upstream-Url": listener.url, "X-Upstream-Command": "sh", "X-Forwarded-Host": "x"}),
    ]
    baseline = set(child_processes())
    async with httpx.AsyncClient(base_url=tiny.server.base, timeout=10) as http:
        for query, body, extra in attempts:
            response = await http.post("/gateway/tiny/mcp", params=query, json=body, headers={**MCP_HEADERS, **extra})
            assert response.status_code == 200, response.text
            assert '"name":"tiny"' in response.text.replace(" ", "")
            new = {pid: cmd for pid, cmd in child_processes().items() if pid not in baseline}
            assert list(new.values()) == [TINY_CMDLINE]  # the configured upstream's one process, nothing else
            session = {**MCP_HEADERS, "Mcp-Session-Id": response.headers["mcp-session-id"]}
            assert (await http.delete("/gateway/tiny/mcp", headers=session)).status_code in (200, 204)
            await _wait(lambda: set(child_processes()) <= baseline)
        # a sessionless (2026-07-28) request naming them rides the shared process of the configured command
        modern = modern_body(7, "tools/call", {"name": "echo", "arguments": {"message": "m"}, **sneaky})
        response = await http.post(
            "/gateway/tiny/mcp",
            params={"command": "sh", "url": listener.url},
            json=modern,
            headers={**modern_headers("tools/call", "echo"), **ORIGIN, "X-Upstream-Url": listener.url},
        )
        assert response.status_code == 200 and '"text":"m"' in response.text.replace(" ", ""), response.text
        assert [c for p, c in child_processes().items() if p not in baseline] == [TINY_CMDLINE]
    # the WebSocket endpoint ignores such a query too
    client = await _connect(tiny.url("tiny", "ws") + f"?command=sh&url={listener.url}")
    try:
        assert tool_text(await client.call_tool("echo", {"message": "ws"})) == "ws"
        assert [c for p, c in child_processes().items() if p not in baseline] == [TINY_CMDLINE] * 2
    finally:
        await client.close()
    await asyncio.sleep(0.2)
    assert listener.connections == 0


async def test_secrets_stay_out_of_responses_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="server_demo")
    remote = LiveServer(create_app(config=AppConfig(oauth=None)))
    await remote.start()
    servers = {
        "noisy": {"command": sys.executable, "args": ["-c", TINY], "env": {"GW_SECRET": ENV_SECRET}},
        "remote": {"url": f"{remote.base}/mcp", "headers": {"X-Api-Key": HEADER_SECRET}, "breaker": {"failures": 1}},
    }
    live = await start_gateway(servers)
    seen: list[str] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.append(f"{response.status_code} {response.headers!r} {response.text}")

    def check() -> None:
        blob = "\n".join(seen)
        for secret in (ENV_SECRET, HEADER_SECRET):
            assert secret not in blob
            assert secret not in caplog.text
        assert f"127.0.0.1:{remote.port}" not in blob

    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hi"}},
    }
    try:
        async with httpx.AsyncClient(base_url=live.server.base, timeout=20, event_hooks={"response": [record]}) as http:
            listing = await http.get("/gateway", headers=ORIGIN)
            assert {u["name"] for u in listing.json()["upstreams"]} == {"noisy", "remote"}
            sessions: dict[str, dict[str, str]] = {}
            for name in ("noisy", "remote"):
                init = await http.post(f"/gateway/{name}/mcp", json=_initialize(), headers=MCP_HEADERS)
                assert init.status_code == 200, init.text
                sessions[name] = {**MCP_HEADERS, "Mcp-Session-Id": init.headers["mcp-session-id"]}
                answer = await http.post(f"/gateway/{name}/mcp", json=call, headers=sessions[name])
                assert answer.status_code == 200 and '"text":"hi"' in answer.text.replace(" ", "")
            await _wait(lambda: "my token is ***" in caplog.text)  # its stderr was logged, the secret scrubbed

            # the upstreams die under their sessions
            noisy: Any = live.endpoint("noisy").sessions[sessions["noisy"]["Mcp-Session-Id"]].core
            pid = noisy._transport.inner.inner.inner.process.pid  # its process (logging > policy > breaker > stdio)
            os.kill(pid, 9)
            await _wait(lambda: live.gateway.upstreams["noisy"].live == 0)
            await remote.stop()
            after = await http.post("/gateway/noisy/mcp", json={**call, "id": 3}, headers=sessions["noisy"])
            assert after.status_code == 404  # the session ended with its process
            after = await http.post("/gateway/remote/mcp", json={**call, "id": 3}, headers=sessions["remote"])
            assert "Upstream 'remote' failed" in after.text, after.text
            again = await http.post("/gateway/remote/mcp", json=_initialize(), headers=MCP_HEADERS)
            assert "circuit open" in again.text, again.text
        errors: list[str] = []
        for era in (HANDSHAKE, None):
            with pytest.raises(TransportError) as caught:
                await _connect(live.url("remote"), era)
            errors.append(f"{caught.value!r} {getattr(caught.value, 'data', None)!r}")
        assert all("remote" in e for e in errors), errors
        seen.extend(errors)
        check()
    finally:
        await live.server.stop()
        await remote.stop()
    check()

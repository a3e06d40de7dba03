"""Gateway mode on a real uvicorn server: upstreams reached through ``/gateway/NAME/mcp`` and ``/ws``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as mt
import pytest
from gateway_support import (
    HANDSHAKE,
    Gw,
    child_processes,
    connect_gateway,
    demo_tour,
    demo_upstream,
    elicit,
    sampling,
    start_gateway,
    stdio_server,
    tool_text,
)
from live_server import LiveServer, free_port

from devtools.reliability import until
from devtools.transports import HttpxHTTPClient
from pyodide_transport.errors import MCPError, TransportError
from server_demo.app import AppConfig, create_app

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-value-that-must-not-leak"
SECRET_AUTH = "Bearer browser-token-xyz"

# An upstream that prints what it received in its environment and headers: a tiny stdio MCP server.
ENV_PROBE = stdio_server(
    "probe",
    """
    seen = {"has_secret": os.environ.get("PROBE_SECRET") == sys.argv[1],
            "leaked": sorted(k for k in os.environ if k not in ("PROBE_SECRET", "PATH", "HOME", "LANG", "LC_ALL",
                             "LC_CTYPE", "TMPDIR", "TZ", "TEMP", "TMP", "SYSTEMROOT", "PYTHONPATH"))}
    result = {"content": [{"type": "text", "text": json.dumps(seen)}]}
    """,
    tools='[{"name": "env", "inputSchema": {"type": "object"}}]',
)


@pytest.fixture
async def gw() -> AsyncIterator[Gw]:
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    servers = {
        **demo_upstream(),
        **demo_upstream("limited", policy={"deny": ["tools/call"], "allow": ["tools/*", "ping"]}),
        **demo_upstream("tiny", maxProcesses=1, policy={"rate": 5}),
        "dead": {"url": dead, "breaker": {"failures": 2, "coolDown": 60}},
        "probe": {"command": sys.executable, "args": ["-c", ENV_PROBE, SECRET], "env": {"PROBE_SECRET": SECRET}},
    }
    live = await start_gateway(servers)
    try:
        yield live
    finally:
        await live.server.stop()


async def test_listing_and_unknown_names(gw: Gw) -> None:
    async with httpx.AsyncClient(base_url=gw.server.base, timeout=10) as http:
        listing = (await http.get("/gateway", headers={"Origin": "http://127.0.0.1:1"})).json()
        names = {u["name"]: u for u in listing["upstreams"]}
        assert set(names) == {"demo-stdio", "limited", "tiny", "dead", "probe"}
        assert names["demo-stdio"] == {
            "name": "demo-stdio",
            "kind": "stdio",
            "endpoints": {"mcp": "/gateway/demo-stdio/mcp", "ws": "/gateway/demo-stdio/ws"},
        }
        assert names["dead"]["kind"] == "http"
        assert SECRET not in json.dumps(listing) and "127.0.0.1:" not in json.dumps(listing)
        assert (await http.post("/gateway/nope/mcp", json={})).status_code == 404
        assert (await http.get("/gateway/..%2Fmcp/mcp")).status_code == 404
        assert (await http.get("/gateway", headers={"Origin": "http://evil.invalid"})).status_code == 403
        opts = await http.options("/gateway/demo-stdio/mcp", headers={"Origin": "http://localhost:3"})
        assert opts.status_code == 204 and "mcp-session-id" in opts.headers["access-control-expose-headers"].lower()


async def test_match_names_the_upstream_of_a_configured_url_only(gw: Gw) -> None:
    url = gw.gateway.upstreams["dead"].config.urls[0]
    port = url.split(":")[2].split("/")[0]
    same = [url, url + "/", f"HTTP://127.0.0.1:{port}/mcp", f"http://127.0.0.1:{port}/mcp/"]
    async with httpx.AsyncClient(base_url=gw.server.base, timeout=10) as http:
        origin = {"Origin": "http://127.0.0.1:1"}
        for candidate in same:
            found = await http.get("/gateway/match", params={"url": candidate}, headers=origin)
            assert found.status_code == 200, candidate
            assert found.json() == gw.gateway.upstreams["dead"].describe()
            assert found.headers["access-control-allow-origin"] == "http://127.0.0.1:1"
            assert url not in found.text
        for other in (f"http://127.0.0.1:{port}/other", f"https://127.0.0.1:{port}/mcp", "file:///etc/passwd", "x"):
            missing = await http.get("/gateway/match", params={"url": other}, headers=origin)
            assert missing.status_code == 404 and "no configured upstream" in missing.json()["error"]
        assert (await http.get("/gateway/match")).status_code == 400
        assert (await http.get("/gateway/match", params={"url": "http://h/" + "a" * 3000})).status_code == 400
        assert (
            await http.get("/gateway/match", params={"url": url}, headers={"Origin": "http://evil.invalid"})
        ).status_code == 403
        opts = await http.options("/gateway/match", headers=origin)
        assert opts.status_code == 204


async def test_match_names_the_stdio_upstream_of_a_configured_command_line_only(gw: Gw) -> None:
    probe = gw.gateway.upstreams["probe"].config
    demo = gw.gateway.upstreams["demo-stdio"].config
    assert probe.command is not None and demo.command is not None
    bare = Path(probe.command).name
    async with httpx.AsyncClient(base_url=gw.server.base, timeout=10) as http:
        origin = {"Origin": "http://127.0.0.1:1"}

        async def ask(command: str, args: object, name: str = "") -> httpx.Response:
            params = {"command": command, "args": json.dumps(args), **({"name": name} if name else {})}
            return await http.get("/gateway/match", params=params, headers=origin)

        found = await ask(probe.command, list(probe.args), "anything")
        assert found.status_code == 200 and found.json() == gw.gateway.upstreams["probe"].describe()
        assert SECRET not in found.text and "PROBE_SECRET" not in found.text and "127.0.0.1:" not in found.text
        assert found.headers["access-control-allow-origin"] == "http://127.0.0.1:1"
        assert (await ask(bare, list(probe.args))).json()["name"] == "probe"  # a bare command name matches
        # three upstreams share the demo's command line: the one named in the question is chosen
        assert (await ask(demo.command, list(demo.args), "tiny")).json()["name"] == "tiny"
        assert (await ask(demo.command, list(demo.args), "unknown")).json()["name"] in {"demo-stdio", "limited", "tiny"}
        for command, args in (
            (probe.command, list(probe.args[:-1])),  # other arguments
            (probe.command, [*probe.args, "x"]),
            ("/other/dir/" + bare, list(probe.args)),  # another path is another program
            ("node", list(probe.args)),
        ):
            missing = await ask(command, args, "probe")  # the name alone is not a match
            assert missing.status_code == 404 and "no configured stdio upstream" in missing.json()["error"]
        for bad in ("not json", '{"a": 1}', "[1, 2]"):
            answer = await http.get("/gateway/match", params={"command": "x", "args": bad}, headers=origin)
            assert answer.status_code == 400 and "JSON list of strings" in answer.json()["error"]
        assert (await http.get("/gateway/match", params={"command": ""})).status_code == 400
        assert (await http.get("/gateway/match", params={"command": "a" * 3000})).status_code == 400
        evil = await http.get(
            "/gateway/match", params={"command": probe.command, "args": "[]"}, headers={"Origin": "http://evil.invalid"}
        )
        assert evil.status_code == 403


@pytest.mark.parametrize("kind", ["mcp", "ws"])
async def test_tools_progress_sampling_elicitation(gw: Gw, kind: str) -> None:
    logs: list[Any] = []
    client = await connect_gateway(gw.url("demo-stdio", kind), sampling_handler=sampling, elicitation_handler=elicit)
    client.on_log = logs.append
    try:
        await demo_tour(client)
    finally:
        await client.close()
    assert logs, "log notifications pass through"


async def test_modern_era_through_the_gateway(gw: Gw) -> None:
    client = await connect_gateway(gw.url("demo-stdio"), era=None)  # tries 2026-07-28 first
    try:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("calculate", {"a": 2, "b": 3, "operation": "add"})
        assert result.structured_content == {"result": 5, "expression": "2 + 3 = 5"}
    finally:
        await client.close()


async def test_killed_process_is_a_clear_error_and_isolated(gw: Gw) -> None:
    victim = await connect_gateway(gw.url("demo-stdio"))
    bystander = await connect_gateway(gw.url("demo-stdio"))
    try:
        assert tool_text(await victim.call_tool("echo", {"message": "a"})) == "a"
        assert tool_text(await bystander.call_tool("echo", {"message": "b"})) == "b"
        endpoint = gw.endpoint("demo-stdio")
        victim_id = victim.transport.session_id  # type: ignore[attr-defined]
        forwarder: Any = endpoint.sessions[victim_id].core
        pid = forwarder._transport.inner.inner.inner.process.pid
        call = asyncio.ensure_future(victim.call_tool("long_running", {"steps": 50, "delay_ms": 100}))
        await asyncio.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(MCPError, match="demo-stdio"):
            await asyncio.wait_for(call, 10)
        # the next request finds the session gone (404): the client starts a new one, on a fresh process
        assert tool_text(await victim.call_tool("echo", {"message": "again"})) == "again"
        new_id = victim.transport.session_id  # type: ignore[attr-defined]
        assert new_id != victim_id
        assert endpoint.sessions[new_id].core._transport.inner.inner.inner.process.pid != pid  # type: ignore[attr-defined]
        assert tool_text(await bystander.call_tool("echo", {"message": "b2"})) == "b2"
    finally:
        await victim.close()
        await bystander.close()


async def test_killed_process_under_a_websocket_is_a_clear_error(gw: Gw) -> None:
    client = await connect_gateway(gw.url("demo-stdio", "ws"))
    try:
        assert tool_text(await client.call_tool("echo", {"message": "a"})) == "a"
        upstream = gw.gateway.upstreams["demo-stdio"]
        assert upstream.live == 1
        call = asyncio.ensure_future(client.call_tool("long_running", {"steps": 50, "delay_ms": 100}))
        await asyncio.sleep(0.5)
        children = list(child_processes(b"--stdio"))
        assert len(children) == 1
        os.kill(children[0], signal.SIGKILL)
        with pytest.raises(TransportError, match=r"demo-stdio|closed"):
            await asyncio.wait_for(call, 10)
        await until(lambda: upstream.live == 0)
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["mcp", "ws", "sessionless"])
async def test_idle_sessions_stop_their_process_without_traffic(kind: str) -> None:
    # stateful_sse's own retry_ms (1000), not the helper's 50
    live = await start_gateway(demo_upstream(), session_idle_timeout=0.3, retry_ms=1000)
    try:
        if kind == "sessionless":
            client = await connect_gateway(live.url("demo-stdio"), era=None)
        else:
            options: dict[str, Any] = {"auto_reconnect": False} if kind == "ws" else {"open_get_stream": False}
            client = await connect_gateway(live.url("demo-stdio", "ws" if kind == "ws" else "mcp"), **options)
        try:
            assert tool_text(await client.call_tool("echo", {"message": "x"})) == "x"
            upstream = live.gateway.upstreams["demo-stdio"]
            assert upstream.live == 1
            # a quiet call longer than the idle timeout is no idleness: it runs to its end
            result = await client.call_tool("long_running", {"steps": 3, "delay_ms": 250})
            assert tool_text(result) == "completed 3 steps"
            await until(lambda: upstream.live == 0)
            if kind != "ws":
                assert tool_text(await client.call_tool("echo", {"message": "y"})) == "y"  # a new process
            else:
                await until(lambda: not client.transport.is_connected())
        finally:
            await client.close()
    finally:
        await live.server.stop()


async def test_breaker_opens_on_a_dead_url_and_fails_fast(gw: Gw) -> None:
    errors: list[str] = []
    for _ in range(2):
        with pytest.raises(TransportError) as caught:
            await connect_gateway(gw.url("dead"))
        errors.append(str(caught.value))
    assert all("dead" in e for e in errors)
    assert not any("/mcp" in e.replace("/gateway/dead/mcp", "") for e in errors), errors  # the URL stays hidden
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(MCPError, match="circuit open") as caught:
        await connect_gateway(gw.url("dead"))
    assert loop.time() - start < 2.0
    assert isinstance(caught.value.data, dict) and caught.value.data["retry_after"] > 0
    assert gw.gateway.upstreams["dead"].breaker.state == "open"


async def test_policy_denied_method_is_an_error_and_the_session_goes_on(gw: Gw) -> None:
    client = await connect_gateway(gw.url("limited"))
    try:
        assert "echo" in {t.name for t in (await client.list_tools()).tools}
        with pytest.raises(MCPError, match="policy"):
            await client.call_tool("echo", {"message": "x"})
        with pytest.raises(MCPError, match="not allowed"):
            await client.list_resources()
        assert (await client.list_tools()).tools
    finally:
        await client.close()


async def test_process_limit_and_rate_limit(gw: Gw) -> None:
    first = await connect_gateway(gw.url("tiny"))
    try:
        with pytest.raises(MCPError, match="the limit"):
            await connect_gateway(gw.url("tiny"))  # one live process at most
        await asyncio.sleep(1.2)  # the bucket refills (5/s, burst 5)
        outcomes = await asyncio.gather(
            *(first.call_tool("echo", {"message": str(i)}) for i in range(12)), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, MCPError)]
        assert refused and all("rate" in str(o) for o in refused)
        assert any(not isinstance(o, BaseException) for o in outcomes)
        await asyncio.sleep(1.2)
        assert tool_text(await first.call_tool("echo", {"message": "later"})) == "later"  # the session went on
    finally:
        await first.close()
    second = await connect_gateway(gw.url("tiny"))  # the process slot is free again
    await second.close()


# A cheap stdio MCP server (50 of them start in well under a second): ``echo`` answers with its text and pid.
ECHO_SERVER = stdio_server(
    "echo",
    """
    text = json.dumps({"pid": os.getpid(), "text": msg["params"]["arguments"]["message"]})
    result = {"content": [{"type": "text", "text": text}]}
    """,
)


async def test_fifty_concurrent_sessions_over_one_stdio_upstream_no_cross_talk() -> None:
    count = 50
    live = await start_gateway(
        {"echo": {"command": sys.executable, "args": ["-c", ECHO_SERVER], "maxProcesses": count}}
    )
    pids: dict[int, int] = {}

    async def one(i: int) -> None:
        client = await connect_gateway(live.url("echo"))
        try:
            seen = set()
            for j in range(3):
                text = f"session {i} message {j}"
                answer = json.loads(tool_text(await client.call_tool("echo", {"message": text})))
                assert answer["text"] == text  # its own answers, in order
                seen.add(answer["pid"])
            assert len(seen) == 1  # always its own process
            pids[i] = seen.pop()
        finally:
            await client.close()

    try:
        async with asyncio.timeout(90):
            await asyncio.gather(*(one(i) for i in range(count)))
        assert len(set(pids.values())) == count  # a process per session, none shared
        await until(lambda: live.gateway.upstreams["echo"].live == 0)
    finally:
        await live.server.stop()


async def test_sessionless_requests_share_one_process_with_ids_and_tokens_rewritten(gw: Gw) -> None:
    clients = [await connect_gateway(gw.url("demo-stdio"), era=None) for _ in range(3)]
    try:
        assert all(c.protocol_version == "2026-07-28" for c in clients)
        endpoint = gw.endpoint("demo-stdio")
        assert endpoint.shared is not None
        progress: dict[tuple[int, int], list[float]] = {}

        async def call(c: int, k: int) -> str:
            seen = progress.setdefault((c, k), [])
            result = await clients[c].call_tool(
                "long_running", {"steps": 3, "delay_ms": 20}, progress=lambda v, t, m: seen.append(v)
            )
            return tool_text(result)

        async with asyncio.timeout(60):
            results = await asyncio.gather(*(call(c, k) for c in range(3) for k in range(4)))
        assert results == ["completed 3 steps"] * 12
        assert all(values == [1, 2, 3] for values in progress.values())  # each call its own progress, no other's
        assert (
            len(list(child_processes(b"--stdio"))) == 1 and gw.gateway.upstreams["demo-stdio"].live == 1
        )  # one shared process
        assert endpoint.shared.in_flight == 0
    finally:
        for client in clients:
            await client.close()


async def test_sessionless_cancellation_and_a_killed_shared_process(gw: Gw, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="server_demo.gateway")
    client = await connect_gateway(gw.url("demo-stdio"), era=None)
    try:
        endpoint = gw.endpoint("demo-stdio")
        assert endpoint.shared is not None
        call = asyncio.ensure_future(client.call_tool("long_running", {"steps": 100, "delay_ms": 100}))
        await until(lambda: endpoint.shared is not None and endpoint.shared.in_flight == 1)
        call.cancel()  # the client closes the request's stream: the era's cancellation
        with pytest.raises(asyncio.CancelledError):
            await call
        await until(lambda: endpoint.shared is not None and endpoint.shared.in_flight == 0)
        await until(lambda: any("notifications/cancelled" in r.getMessage() for r in caplog.records))
        assert tool_text(await client.call_tool("echo", {"message": "still here"})) == "still here"

        (pid,) = child_processes(b"--stdio")
        call = asyncio.ensure_future(client.call_tool("long_running", {"steps": 100, "delay_ms": 100}))
        await until(lambda: endpoint.shared is not None and endpoint.shared.in_flight == 1)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(MCPError, match="demo-stdio"):
            await asyncio.wait_for(call, 10)
        assert tool_text(await client.call_tool("echo", {"message": "again"})) == "again"  # a fresh process
        assert list(child_processes(b"--stdio")) != [pid]
    finally:
        await client.close()
    await endpoint.close()
    assert gw.gateway.upstreams["demo-stdio"].live == 0


async def test_env_is_only_the_configured_one_and_secrets_stay_out_of_logs(
    gw: Gw, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    os.environ["GATEWAY_TEST_LEAK"] = "1"
    try:
        client = await connect_gateway(gw.url("probe"), headers={"Authorization": SECRET_AUTH})
        try:
            seen = json.loads(tool_text(await client.call_tool("env", {})))
        finally:
            await client.close()
    finally:
        del os.environ["GATEWAY_TEST_LEAK"]
    assert seen == {"has_secret": True, "leaked": []}
    assert SECRET not in caplog.text and SECRET_AUTH not in caplog.text
    assert "tools/call" in caplog.text  # one structured record per message


async def test_authorization_forwarded_only_when_configured() -> None:
    seen: list[str | None] = []

    async def upstream_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        seen.append(headers.get(b"authorization", b"").decode() or None)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body or b"{}")
        if "id" not in request:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        result = {"protocolVersion": HANDSHAKE, "capabilities": {}, "serverInfo": {"name": "u", "version": "0"}}
        out = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})

    upstream = LiveServer(upstream_app)
    await upstream.start()
    url = upstream.base + "/mcp"
    live = await start_gateway({"plain": {"url": url}, "forwarding": {"url": url, "forwardAuthorization": True}})
    try:
        for name in ("plain", "forwarding"):
            client = await connect_gateway(
                live.url(name), headers={"Authorization": SECRET_AUTH}, fetch=HttpxHTTPClient()
            )
            await client.close()
        assert seen[0] is None and SECRET_AUTH in seen
        assert seen.index(SECRET_AUTH) > 0 and all(s is None for s in seen[: seen.index(SECRET_AUTH)])
    finally:
        await live.server.stop()
        await upstream.stop()


@pytest.mark.parametrize("path", ["/mcp", "/mcp/json", "/ws"])
async def test_url_upstreams_pass_everything_through(path: str) -> None:
    demo = LiveServer(create_app(config=AppConfig(oauth=None)))
    await demo.start()
    scheme = "ws" if path == "/ws" else "http"
    live = await start_gateway({"up": {"url": f"{scheme}://127.0.0.1:{demo.port}{path}"}})

    async def elicit(params: Any) -> mt.ElicitResult:
        return mt.ElicitResult(action="accept", content={"name": "Grace"})

    try:
        client = await connect_gateway(live.url("up"), elicitation_handler=elicit)
        try:
            progress: list[float] = []
            result = await client.call_tool(
                "long_running", {"steps": 2, "delay_ms": 5}, progress=lambda v, t, m: progress.append(v)
            )
            assert tool_text(result) == "completed 2 steps" and progress == [1, 2]
            assert tool_text(await client.call_tool("ask_user", {})) == "Hello Grace, you like None."
        finally:
            await client.close()
    finally:
        await live.server.stop()
        await demo.stop()


async def test_official_sdk_server_as_a_url_upstream() -> None:
    sdk = pytest.importorskip("mcp.server.mcpserver")
    port = free_port()
    script = (
        "import sys\n"
        "from mcp.server.mcpserver import MCPServer\n"
        "server = MCPServer('sdk')\n"
        "@server.tool()\n"
        "def add(a: int, b: int) -> int:\n"
        "    return a + b\n"
        f"server.run('streamable-http', host='127.0.0.1', port={port})\n"
    )
    del sdk
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    live = await start_gateway({"sdk": {"url": f"http://127.0.0.1:{port}/mcp"}})
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"http://127.0.0.1:{port}/mcp")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        client = await connect_gateway(live.url("sdk"))
        try:
            assert "add" in {t.name for t in (await client.list_tools()).tools}
            assert "5" in tool_text(await client.call_tool("add", {"a": 2, "b": 3}))
        finally:
            await client.close()
    finally:
        await live.server.stop()
        process.terminate()
        await process.wait()

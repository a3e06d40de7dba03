"""The official Python SDK's server (``devtools.sdk_server``) as gateway upstreams, over HTTP and stdio.

Each test drives it through ``/gateway/NAME/mcp`` and ``/gateway/NAME/ws`` with our client: tools,
progress, logs, a resource, sampling, elicitation and cancellation.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as mt
import pytest
from gateway_support import HANDSHAKE, Gw, connect_gateway, start_gateway, tool_text

from devtools import ROOT
from devtools.reliability import until
from devtools.sdk_server import sdk_http_server, sdk_stdio_command
from pyodide_transport.client import Client

LIMIT = 30.0  # seconds any single step may take
UPSTREAMS = ["sdk-http", "sdk-stdio"]
KINDS = ["mcp", "ws"]
ORIGIN = "http://127.0.0.1:1"


@pytest.fixture(scope="module")
def sdk_url() -> Iterator[str]:
    with sdk_http_server() as url:
        yield url


@pytest.fixture
async def gateway(sdk_url: str) -> AsyncIterator[Gw]:
    command, *args = sdk_stdio_command()
    servers = {
        "sdk-http": {"url": sdk_url},
        "sdk-stdio": {"command": command, "args": args, "cwd": str(ROOT)},
    }
    gw = await start_gateway(servers)
    try:
        yield gw
    finally:
        await gw.server.stop()


async def _connect(url: str, **options: Any) -> Client:
    """``connect_gateway`` within ``LIMIT`` seconds."""
    return await asyncio.wait_for(connect_gateway(url, request_timeout=LIMIT, **options), LIMIT)


async def _info(client: Client) -> str:
    contents = (await asyncio.wait_for(client.read_resource("sdk://info"), LIMIT)).contents
    return "".join(getattr(c, "text", "") for c in contents)


@pytest.mark.parametrize("era", [HANDSHAKE, "2026-07-28"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_tools_progress_sampling_elicitation(gateway: Gw, upstream: str, kind: str, era: str) -> None:
    asked: list[int] = []
    answers: list[mt.ElicitResult] = [
        mt.ElicitResult(action="accept", content={"name": "Ada"}),
        mt.ElicitResult(action="decline"),
        mt.ElicitResult(action="cancel"),
    ]

    async def sampling(params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
        asked.append(params.max_tokens)
        prompt = params.messages[0].content
        text = prompt.text if isinstance(prompt, mt.TextContent) else "?"
        return mt.CreateMessageResult(role="assistant", content=mt.TextContent(text=f"re {text}"), model="m")

    async def elicit(params: Any) -> mt.ElicitResult:
        assert params.requested_schema["properties"]["name"]["type"] == "string"
        return answers.pop(0)

    logs: list[mt.LoggingMessageNotificationParams] = []
    client = await _connect(
        gateway.url(upstream, kind),
        sampling_handler=sampling,
        elicitation_handler=elicit,
        on_log=logs.append,
        protocol_version=era,
    )
    try:
        assert client.protocol_version == era
        if era != HANDSHAKE:  # the modern era sends logs only to requests that carry a level
            await client.set_logging_level("info")
        assert client.server_info is not None and client.server_info.name == "sdk-test"
        tools = {t.name for t in (await asyncio.wait_for(client.list_tools(), LIMIT)).tools}
        assert {"add", "count", "wait", "sample", "ask_name"} <= tools
        assert "5" in tool_text(await asyncio.wait_for(client.call_tool("add", {"a": 2, "b": 3}), LIMIT))

        progress: list[tuple[float, float | None]] = []
        counting = client.call_tool(
            "count", {"steps": 3, "delay_ms": 5}, progress=lambda v, t, m: progress.append((v, t))
        )
        assert tool_text(await asyncio.wait_for(counting, LIMIT)) == "counted 3 steps"
        assert progress == [(1, 3), (2, 3), (3, 3)]
        await until(lambda: any("counting 3 steps" in str(log.data) for log in logs))

        assert (await _info(client)).startswith("sdk-test:")
        assert (
            tool_text(await asyncio.wait_for(client.call_tool("sample", {"prompt": "hi"}), LIMIT)) == "sampled: re hi"
        )
        assert asked == [50]
        outcomes = [tool_text(await asyncio.wait_for(client.call_tool("ask_name", {}), LIMIT)) for _ in range(3)]
        assert outcomes == ["hello Ada", "declined", "cancelled"]
    finally:
        await client.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cancelled_call_stops_upstream_and_session_goes_on(gateway: Gw, upstream: str, kind: str) -> None:
    client = await _connect(gateway.url(upstream, kind))
    try:
        before = await _info(client)
        cancelled = int(before.split()[1])
        call = asyncio.ensure_future(client.call_tool("wait", {"seconds": 60}))
        await asyncio.sleep(0.5)  # the request reaches the upstream
        assert not call.done()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, LIMIT)
        # our notifications/cancelled reaches the SDK server, which cancels the handler
        expected = f"sdk-test: {cancelled + 1} cancelled"
        async with asyncio.timeout(LIMIT):
            while (now := await _info(client)) != expected:
                assert now == before, now
                await asyncio.sleep(0.05)
        assert "7" in tool_text(await asyncio.wait_for(client.call_tool("add", {"a": 3, "b": 4}), LIMIT))
    finally:
        await client.close()


async def test_sdk_http_server_refuses_a_browser_preflight(sdk_url: str, gateway: Gw) -> None:
    """The SDK's server sends no CORS headers, so a page cannot reach it; the gateway can be reached."""
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with httpx.AsyncClient(timeout=LIMIT) as http:
        direct = await http.options(sdk_url, headers=preflight)
        assert "access-control-allow-origin" not in direct.headers
        via_gateway = await http.options(gateway.url("sdk-http", "mcp"), headers=preflight)
        assert via_gateway.status_code == 204
        assert via_gateway.headers["access-control-allow-origin"] == ORIGIN


def test_stdio_command_needs_the_repository_root_as_cwd(tmp_path: Path) -> None:
    """As a gateway child (minimal environment), ``-m devtools.sdk_server`` resolves only from the root."""
    init = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}) + "\n"
    env = {"PATH": os.environ.get("PATH", "")}
    elsewhere = subprocess.run(
        sdk_stdio_command(), input=line, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=LIMIT
    )
    assert elsewhere.returncode != 0 and "No module named 'devtools'" in elsewhere.stderr
    home = subprocess.run(
        sdk_stdio_command(), input=line, capture_output=True, text=True, env=env, cwd=ROOT, timeout=LIMIT
    )
    assert json.loads(home.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "sdk-test"

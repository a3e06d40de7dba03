"""Helpers shared by the gateway integration tests: upstream entries, a live gateway, its clients.

A gateway here is the demo app with only gateway upstreams, on a real uvicorn server (see
``live_server``); its endpoints are ``/gateway/NAME/mcp`` and ``/gateway/NAME/ws``. :func:`demo_tour`
(with the :func:`sampling` and :func:`elicit` answers) is what any path to the demo server must carry:
the queue tests use it too.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path
from typing import Any

import mcp_types as mt
import pytest
from live_server import LiveServer

from devtools.transports import cpython_connect
from pyodide_transport.client import Client
from server_demo.app import AppConfig, create_app
from server_demo.config import stateful_sse
from server_demo.gateway import Gateway, GatewayEndpoint
from server_demo.gateway_config import builtin_gateway_config, parse_gateway_config

__all__ = [
    "HANDSHAKE",
    "Gw",
    "child_processes",
    "connect_gateway",
    "demo_tour",
    "demo_upstream",
    "elicit",
    "sampling",
    "start_gateway",
    "stdio_server",
    "tool_text",
]

HANDSHAKE = "2025-11-25"


def stdio_server(
    name: str, call: str, *, capabilities: str = '{"tools": {}}', tools: str = "[]", prelude: str = ""
) -> str:
    """The source of a tiny line-delimited stdio MCP server, for ``python -c`` (it starts in milliseconds).

    ``initialize`` answers as ``name`` with ``capabilities``, ``tools/list`` with ``tools`` (Python
    expressions), and ``tools/call`` runs ``call``: statements that set ``result`` (``msg`` is the
    request; ``out(message)`` writes any other message first). ``prelude`` runs once at start.
    """
    body = textwrap.indent(textwrap.dedent(call).strip(), " " * 8)
    return f"""import json, os, sys
def out(msg):
    print(json.dumps(msg), flush=True)
{textwrap.dedent(prelude).strip()}
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg or "method" not in msg:
        continue
    if msg["method"] == "initialize":
        result = {{"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {capabilities},
                  "serverInfo": {{"name": {name!r}, "version": "0"}}}}
    elif msg["method"] == "tools/list":
        result = {{"tools": {tools}}}
    elif msg["method"] == "tools/call":
{body}
    else:
        result = {{}}
    out({{"jsonrpc": "2.0", "id": msg["id"], "result": result}})
"""


def demo_upstream(name: str = "demo-stdio", **extra: Any) -> dict[str, Any]:
    """``{name: entry}``: the built-in ``demo-stdio`` upstream's command, plus ``extra`` settings."""
    builtin = builtin_gateway_config().upstreams["demo-stdio"]
    entry = {"command": builtin.command, "args": list(builtin.args), "env": dict(builtin.env), "cwd": builtin.cwd}
    return {name: {**entry, **extra}}


def tool_text(result: mt.CallToolResult) -> str:
    """The text of a tool result's content, joined."""
    return "".join(getattr(c, "text", "") for c in result.content)


async def sampling(params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
    """The page's LLM: always "forty-two"."""
    return mt.CreateMessageResult(role="assistant", content=mt.TextContent(text="forty-two"), model="m")


async def elicit(params: Any) -> mt.ElicitResult:
    """The page's user: Ada, who likes red."""
    return mt.ElicitResult(action="accept", content={"name": "Ada", "colour": "red"})


async def demo_tour(client: Client) -> None:
    """The demo server through ``client`` (made with :func:`sampling` and :func:`elicit`): tools, progress,
    sampling, elicitation, logs, and a cancellation after which the session goes on."""
    tools = {t.name for t in (await client.list_tools()).tools}
    assert {"calculate", "long_running", "ask_llm", "ask_user"} <= tools
    result = await client.call_tool("calculate", {"a": 6, "b": 7, "operation": "multiply"})
    assert result.structured_content == {"result": 42, "expression": "6 * 7 = 42"}
    progress: list[float] = []
    result = await client.call_tool(
        "long_running", {"steps": 3, "delay_ms": 5}, progress=lambda v, t, m: progress.append(v)
    )
    assert tool_text(result) == "completed 3 steps" and progress == [1, 2, 3]
    assert "forty-two" in tool_text(await client.call_tool("ask_llm", {"question": "q"}))
    assert tool_text(await client.call_tool("ask_user", {})) == "Hello Ada, you like red."
    await client.call_tool("log_messages", {"count": 2})
    call = asyncio.ensure_future(client.call_tool("long_running", {"steps": 50, "delay_ms": 100}))
    await asyncio.sleep(0.5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert tool_text(await client.call_tool("echo", {"message": "still here"})) == "still here"


class Gw:
    """A running gateway: its server and the app's ``Gateway``."""

    def __init__(self, server: LiveServer, gateway: Gateway) -> None:
        self.server = server
        self.gateway = gateway

    def url(self, name: str, kind: str = "mcp") -> str:
        """The URL of upstream ``name``'s endpoint of ``kind`` (``mcp`` or ``ws``)."""
        base = self.server.base if kind == "mcp" else self.server.base.replace("http:", "ws:")
        return f"{base}/gateway/{name}/{kind}"

    def endpoint(self, name: str) -> GatewayEndpoint:
        """The gateway endpoint serving upstream ``name``."""
        return next(e for e in self.gateway.endpoints if e.upstream.config.name == name)


async def start_gateway(servers: dict[str, Any], **endpoint_options: Any) -> Gw:
    """A started gateway of ``servers`` (an ``mcpServers`` mapping); stop it with ``gw.server.stop()``.

    Each endpoint's config is ``stateful_sse(retry_ms=50, **endpoint_options)``.
    """
    options = {"retry_ms": 50, **endpoint_options}
    config = AppConfig(
        oauth=None,
        gateway=parse_gateway_config({"mcpServers": servers}),
        gateway_endpoint=lambda: stateful_sse(**options),
    )
    app = create_app(config=config)
    server = LiveServer(app)
    await server.start()
    return Gw(server, app.state.gateway)


async def connect_gateway(url: str, *, era: str | None = HANDSHAKE, **options: Any) -> Client:
    """A connected client of ``url`` (30 s request timeout) speaking protocol version ``era``.

    ``era`` None lets the client try 2026-07-28 first; an explicit ``protocol_version`` wins over ``era``.
    """
    if era is not None:
        options.setdefault("protocol_version", era)
    options.setdefault("request_timeout", 30)
    return await cpython_connect(url, **options)


def child_processes(argument: bytes | None = None) -> dict[int, list[bytes]]:
    """This process's live (not zombie) children, pid to command line, in ``/proc`` order.

    With ``argument``, only the children whose command line has it as one of its arguments.
    """
    found: dict[int, list[bytes]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
        if parent == str(os.getpid()) and state != "Z" and (argument is None or argument in cmdline):
            found[int(proc.name)] = cmdline
    return found

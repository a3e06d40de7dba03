"""A slow consumer or a slow producer holds up only itself.

* Slow consumer: a client asks for a large SSE (or WebSocket) response and stops reading;
  the server's write to it blocks, events pile up for it, and every other session keeps
  getting answers. When it reads again it gets every event.
* Slow producer: a tool that does not return until the test says so; meanwhile other
  sessions, and other requests of the same session, are answered on every endpoint.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

from devtools.reliability import HANDSHAKE, HttpxHTTPClient, cpython_connect, live_app, reliability_server, until
from pyodide_transport.client import Client

COUNT, SIZE = 3000, 2000  # 6 MB of progress notifications: far more than the socket buffers hold


def _url(base: str, path: str) -> str:
    return (base.replace("http://", "ws://") if path == "/ws" else base) + path


async def _healthy_calls(url: str, calls: int = 30) -> int:
    client = await cpython_connect(url, protocol_version=HANDSHAKE)
    try:
        done = 0
        for i in range(calls):
            result = await client.call_tool("echo", {"message": f"m{i}"}, timeout=20)
            assert result.content[0].text == f"m{i}"  # type: ignore[union-attr]
            done += 1
        return done
    finally:
        await client.close()


def _init_body() -> bytes:
    params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "slow", "version": "1"}}
    return json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}).encode()


async def test_slow_sse_consumer_blocks_only_itself(record_figure: Callable[[str, object], None]) -> None:
    async with live_app() as live:
        endpoint: Any = live.app.state.endpoints["/mcp"]
        http = HttpxHTTPClient()
        post_headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        response = await http.request("POST", live.base + "/mcp", post_headers, _init_body())
        session_id = response.headers["mcp-session-id"]
        async for _ in response.chunks():
            pass
        await response.aclose()
        await http.aclose()

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", live.port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        call = {"name": "burst", "arguments": {"count": COUNT, "size": SIZE}, "_meta": {"progressToken": "slow"}}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}).encode()
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nMcp-Session-Id: {session_id}\r\n"
            f"MCP-Protocol-Version: {HANDSHAKE}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        try:
            session = endpoint.sessions[session_id]

            def backlog() -> int:
                return sum(s.queue.qsize() for s in session.streams.values() if s.queue is not None)

            await until(lambda: backlog() > 500)  # the server cannot write: events wait for this reader
            stuck = backlog()
            healthy = await asyncio.gather(
                *(_healthy_calls(_url(live.base, path)) for path in ("/mcp", "/mcp/json", "/ws"))
            )
            assert healthy == [30, 30, 30]
            assert backlog() >= stuck - 5, "the slow reader still has not been served"

            raw = bytearray()
            async with asyncio.timeout(60):
                while b"burst of 3000 done" not in raw[-4096:]:
                    chunk = await reader.read(1 << 20)
                    assert chunk, "the stream ended early"
                    raw += chunk
            assert raw.count(b'"message":"step-') == COUNT
        finally:
            writer.transport.abort()
    record_figure("faults: slow consumer backlog while 3 other sessions x 30 calls succeeded (events)", stuck)


async def test_slow_websocket_consumer_blocks_only_itself() -> None:
    async with (
        live_app() as live,
        ws_connect(
            f"ws://127.0.0.1:{live.port}/ws",
            subprotocols=[Subprotocol("mcp")],
            max_queue=4,
            ping_interval=None,
            max_size=None,
        ) as ws,
    ):
        await ws.send(_init_body().decode())
        await ws.recv()
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        call = {"name": "burst", "arguments": {"count": COUNT, "size": SIZE}, "_meta": {"progressToken": "slow"}}
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}))
        await asyncio.sleep(0.3)  # let the server fill the socket buffers
        healthy = await asyncio.gather(*(_healthy_calls(_url(live.base, path)) for path in ("/mcp", "/ws")))
        assert healthy == [30, 30]
        progress = 0
        async with asyncio.timeout(60):
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == 1:
                    assert message["result"]["content"][0]["text"] == f"burst of {COUNT} done"
                    break
                progress += message.get("method") == "notifications/progress"
        assert progress == COUNT


@pytest.mark.parametrize("path", ["/mcp", "/mcp/json", "/mcp/stateless", "/ws"])
async def test_slow_producer_blocks_only_its_own_request(path: str) -> None:
    gate = asyncio.Event()
    async with live_app(reliability_server(gate=gate)) as live:
        url = _url(live.base, path)
        client: Client = await cpython_connect(url, protocol_version=HANDSHAKE)
        try:
            slow = asyncio.ensure_future(client.call_tool("wait_gate", {}, timeout=60))
            await asyncio.sleep(0.05)
            same_session = await client.call_tool("echo", {"message": "same session"}, timeout=20)
            assert same_session.content[0].text == "same session"  # type: ignore[union-attr]
            assert await asyncio.gather(*(_healthy_calls(url, 10) for _ in range(3))) == [10, 10, 10]
            assert not slow.done()
            gate.set()
            assert (await slow).content[0].text == "gate opened"  # type: ignore[union-attr]
        finally:
            await client.close()

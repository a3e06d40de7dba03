"""pyodide_transport.cpython: the httpx and websockets adapters, against the demo server and broken peers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable

import httpx
import pytest
from mcp_types import TextContent

from devtools.ports import free_port
from devtools.servers import DemoServer
from pyodide_transport import cpython
from pyodide_transport.client import Client
from pyodide_transport.cpython import HttpxHTTPClient, default_connector, default_http_client, websockets_connect
from pyodide_transport.errors import ConnectionClosedError, LocalProtocolError, NetworkError
from pyodide_transport.fetch import FetchTransport, HTTPClient, HTTPResponse
from pyodide_transport.websocket import WebSocketTransport

HANDSHAKE = "2025-11-25"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
POST_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def start_peer(peer: Peer) -> tuple[asyncio.Server, str]:
    """A raw TCP peer on 127.0.0.1 that misbehaves as scripted."""
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/mcp"


async def read_head(reader: asyncio.StreamReader) -> None:
    while (await reader.readline()) not in (b"\r\n", b""):
        pass


# --- HTTP -----------------------------------------------------------------------------------------


async def test_httpx_client_streams_a_real_response(demo_server: DemoServer) -> None:
    http = default_http_client()
    assert isinstance(http, HttpxHTTPClient) and isinstance(http, HTTPClient)
    response = await http.request("POST", demo_server.url + "/mcp/json", POST_HEADERS, json.dumps(INIT).encode())
    assert isinstance(response, HTTPResponse)
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert all(name == name.lower() for name in response.headers)
    body = b"".join([chunk async for chunk in response.chunks()])
    assert json.loads(body)["result"]["protocolVersion"] == HANDSHAKE
    assert isinstance(response.raw, httpx.Response)
    await response.aclose()
    await http.aclose()


async def test_client_over_fetch_transport_and_httpx(demo_server: DemoServer) -> None:
    transport = FetchTransport(demo_server.url + "/mcp", fetch=HttpxHTTPClient())
    async with Client(transport, protocol_version=HANDSHAKE) as client:
        result = await client.call_tool("echo", {"message": "cpython"})
        assert isinstance(result.content[0], TextContent) and result.content[0].text == "cpython"
        assert transport.session_id is not None


async def test_no_response_is_a_network_error_and_a_bad_url_is_ours() -> None:
    http = HttpxHTTPClient(connect_timeout=5.0)
    with pytest.raises(NetworkError, match=r"POST http://127\.0\.0\.1:"):
        await http.request("POST", f"http://127.0.0.1:{free_port()}/mcp", POST_HEADERS, b"{}")
    with pytest.raises(LocalProtocolError):
        await http.request("GET", "ftp://127.0.0.1/mcp", {})
    with pytest.raises(LocalProtocolError):
        await http.request("GET", "http://[::1/mcp", {})
    await http.aclose()


async def test_a_body_that_breaks_off_is_a_network_error() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 1000\r\n\r\ndata: {")
        await writer.drain()
        writer.close()

    server, url = await start_peer(peer)
    http = HttpxHTTPClient()
    try:
        response = await http.request("GET", url, {})
        seen: list[bytes] = []
        with pytest.raises(NetworkError, match="reading the response"):
            async for chunk in response.chunks():
                seen.append(chunk)
        assert b"".join(seen) == b"data: {"
    finally:
        await http.aclose()
        server.close()


async def test_cancelling_the_request_aborts_it() -> None:
    closed = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reader.read()  # never answers; returns when the client drops the connection
        closed.set()

    server, url = await start_peer(peer)
    http = HttpxHTTPClient()
    try:
        task = asyncio.ensure_future(http.request("GET", url, {}))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(10):
            await closed.wait()
    finally:
        await http.aclose()
        server.close()


async def test_a_client_of_your_own_stays_yours() -> None:
    own = httpx.AsyncClient()
    http = HttpxHTTPClient(own)
    await http.aclose()
    assert not own.is_closed
    await own.aclose()


# --- WebSocket ------------------------------------------------------------------------------------


def ws_url(demo_server: DemoServer, path: str = "/ws") -> str:
    return demo_server.url.replace("http://", "ws://") + path


async def test_websockets_connection_talks_and_reports_the_close_code(demo_server: DemoServer) -> None:
    conn = await websockets_connect(ws_url(demo_server), ["mcp"])
    assert conn.subprotocol == "mcp"
    await conn.send(json.dumps(INIT))
    assert json.loads(await conn.recv())["result"]["protocolVersion"] == HANDSHAKE
    await conn.raw.send(b"\x01binary")  # the demo server closes with 1003 on a binary frame
    with pytest.raises(ConnectionClosedError) as raised:
        while True:
            await conn.recv()
    assert raised.value.code == 1003
    with pytest.raises(ConnectionClosedError):
        await conn.send("{}")
    await conn.close()  # idempotent after the peer closed


async def test_websocket_transport_over_websockets(demo_server: DemoServer) -> None:
    assert default_connector() is websockets_connect
    transport = WebSocketTransport(ws_url(demo_server), connector=websockets_connect)
    async with Client(transport, protocol_version=HANDSHAKE) as client:
        result = await client.call_tool("echo", {"message": "over ws"})
        assert isinstance(result.content[0], TextContent) and result.content[0].text == "over ws"


async def test_websocket_open_failures(demo_server: DemoServer) -> None:
    with pytest.raises(NetworkError, match="could not open a WebSocket"):
        await websockets_connect(f"ws://127.0.0.1:{free_port()}/ws", ["mcp"])
    with pytest.raises(NetworkError, match=r"answered HTTP 4\d\d"):
        await websockets_connect(ws_url(demo_server, "/mcp"), ["mcp"])  # not a WebSocket endpoint
    with pytest.raises(LocalProtocolError, match="invalid WebSocket URL"):
        await websockets_connect("http://127.0.0.1/ws", ["mcp"])


async def test_websocket_open_times_out_as_a_network_error() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never upgrades

    server, url = await start_peer(peer)
    try:
        with pytest.raises(NetworkError, match="could not open a WebSocket"):
            await websockets_connect(url.replace("http://", "ws://"), ["mcp"], open_timeout=0.3)
    finally:
        server.close()


# --- without the extra ----------------------------------------------------------------------------


def test_without_the_cpython_extra_the_defaults_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.setitem(sys.modules, "websockets", None)
    with pytest.raises(LocalProtocolError, match=r"needs the 'httpx' package: install pyodide-transport\[cpython\]"):
        default_http_client()
    with pytest.raises(LocalProtocolError, match=r"'websockets' package: install pyodide-transport\[cpython\]"):
        default_connector()
    assert "pyodide-transport[cpython]" in cpython.INSTALL_HINT


def test_importing_the_module_imports_neither_library() -> None:
    probe = "import sys, pyodide_transport.cpython; print(sorted({'httpx', 'websockets'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

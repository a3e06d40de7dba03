"""WebSocketTransport in CPython: a scripted socket for every fault, and the real demo server for a drop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from devtools.servers import DemoServer
from devtools.transports import cpython_connect, websockets_connector
from pyodide_transport.client import Client
from pyodide_transport.errors import (
    ConnectionClosedError,
    MessageTooLargeError,
    NetworkError,
    RemoteProtocolError,
    RequestTimeoutError,
    SessionExpiredError,
)
from pyodide_transport.messages import make_request
from pyodide_transport.websocket import WebSocketTransport, describe_close

HANDSHAKE = "2025-11-25"
INIT_RESULT = {
    "protocolVersion": HANDSHAKE,
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "fake", "version": "1"},
}


class FakeSocket:
    """One scripted socket: what the transport sends goes to the fake server's handler."""

    subprotocol = "mcp"

    def __init__(self, handle: Callable[[FakeSocket, dict[str, Any]], None]) -> None:
        self.incoming: asyncio.Queue[str | bytes | ConnectionClosedError] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed: int | None = None
        self._handle = handle

    async def recv(self) -> str | bytes:
        item = await self.incoming.get()
        if isinstance(item, ConnectionClosedError):
            self.incoming.put_nowait(item)
            raise item
        return item

    async def send(self, data: str) -> None:
        if self.closed is not None:
            raise ConnectionClosedError("closed", code=self.closed)
        message = json.loads(data)
        self.sent.append(message)
        self._handle(self, message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.drop(code, reason)

    def drop(self, code: int = 1006, reason: str = "") -> None:
        if self.closed is None:
            self.closed = code
            self.incoming.put_nowait(ConnectionClosedError("closed", code=code, reason=reason))

    def push(self, data: str | bytes | dict[str, Any]) -> None:
        self.incoming.put_nowait(json.dumps(data) if isinstance(data, dict) else data)


class FakeServer:
    """Answers initialize, ping and the ``echo`` tool; ``hang`` never answers; ``answer_pings`` can be turned off."""

    def __init__(self) -> None:
        self.sockets: list[FakeSocket] = []
        self.refuse = False
        self.answer_pings = True

    async def connect(self, url: str, protocols: Sequence[str]) -> FakeSocket:
        assert tuple(protocols) == ("mcp",)
        if self.refuse:
            raise NetworkError("connection refused")
        socket = FakeSocket(self.handle)
        self.sockets.append(socket)
        return socket

    def handle(self, socket: FakeSocket, message: dict[str, Any]) -> None:
        method, request_id = message.get("method"), message.get("id")
        if request_id is None or method is None:
            return
        if method == "initialize":
            socket.push({"jsonrpc": "2.0", "id": request_id, "result": INIT_RESULT})
        elif method == "ping" and self.answer_pings:
            socket.push({"jsonrpc": "2.0", "id": request_id, "result": {}})
        elif method == "tools/call" and message["params"]["name"] == "echo":
            text = message["params"]["arguments"]["message"]
            result = {"content": [{"type": "text", "text": text}]}
            socket.push({"jsonrpc": "2.0", "id": request_id, "result": result})

    @property
    def last(self) -> FakeSocket:
        return self.sockets[-1]


def make(server: FakeServer, **options: Any) -> WebSocketTransport:
    options = {"reconnect_delay": 0.01, "max_reconnect_delay": 0.02, "ping_interval": None, **options}
    return WebSocketTransport("ws://fake/ws", connector=server.connect, **options)


async def echo(client: Client, text: str) -> str:
    result = await client.call_tool("echo", {"message": text})
    return result.content[0].text  # type: ignore[union-attr]


async def until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    for _ in range(int(limit / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_bad_frames_are_raised_once_and_the_connection_goes_on() -> None:
    server = FakeServer()
    transport = make(server, max_message_size=1000)
    await transport.connect()
    sock = server.last
    sock.push(b"\x00\x01")
    sock.push("{not json")
    sock.push("x" * 2000)
    sock.push({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "ok"}})
    with pytest.raises(RemoteProtocolError, match="binary frame of 2 bytes"):
        await transport.receive()
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        await transport.receive()
    with pytest.raises(MessageTooLargeError):
        await transport.receive()
    good = await transport.receive()
    assert getattr(good, "method", None) == "notifications/message"
    assert transport.is_connected()
    await transport.close()


async def test_drop_fails_pending_at_once_then_reconnects_and_reinitializes() -> None:
    server = FakeServer()
    transport = make(server)
    errors: list[Exception] = []
    async with Client(transport, protocol_version=HANDSHAKE, on_error=errors.append) as client:
        assert await echo(client, "one") == "one"
        hanging = asyncio.ensure_future(client.call_tool("hang", {}))
        await until(lambda: any(m.get("params", {}).get("name") == "hang" for m in server.last.sent))
        server.last.drop(1011, "server bug")
        with pytest.raises(ConnectionClosedError, match="code 1011, internal server error: server bug"):
            await hanging
        assert await echo(client, "two") == "two"  # waits for the reconnect, re-initializes, re-sends
        assert transport.reconnects == 1
        assert client.session_generation == 1
        assert [m["method"] for m in server.last.sent[:2]] == ["initialize", "notifications/initialized"]
    assert not transport._tasks


async def test_send_after_reconnect_needs_a_new_initialize() -> None:
    server = FakeServer()
    transport = make(server)
    await transport.send(make_request(1, "initialize", {"protocolVersion": HANDSHAKE}))
    server.last.drop()
    await until(lambda: transport.reconnects == 1 and transport.is_connected())
    with pytest.raises(SessionExpiredError, match="new session"):
        await transport.send(make_request(2, "ping"))
    await transport.send(make_request(3, "initialize", {"protocolVersion": HANDSHAKE}))
    await transport.send(make_request(4, "ping"))
    await transport.close()


async def test_permanent_close_code_ends_the_connection() -> None:
    server = FakeServer()
    transport = make(server)
    await transport.connect()
    server.last.drop(1008, "origin not allowed")
    with pytest.raises(ConnectionClosedError, match="policy violation") as info:
        await transport.receive()
    assert info.value.code == 1008
    assert transport.state == "lost" and transport.reconnects == 0 and len(server.sockets) == 1
    with pytest.raises(ConnectionClosedError):
        await transport.send(make_request(1, "ping"))
    await transport.close()


async def test_reconnect_gives_up_after_max_attempts() -> None:
    server = FakeServer()
    transport = make(server, max_reconnect_attempts=3)
    await transport.connect()
    server.refuse = True
    server.last.drop(1006)
    with pytest.raises(ConnectionClosedError, match="gave up after 3 reconnect attempts"):
        await transport.receive()
    await transport.close()


async def test_no_auto_reconnect_means_lost_on_first_drop() -> None:
    server = FakeServer()
    transport = make(server, auto_reconnect=False)
    await transport.connect()
    server.last.drop(1001, "bye")
    with pytest.raises(ConnectionClosedError, match="going away: bye"):
        await transport.receive()
    assert len(server.sockets) == 1
    await transport.close()


async def test_request_timeout_fails_the_request_and_cancels_it_on_the_server() -> None:
    """Request timeouts belong to the Client (the one owner of the request lifecycle), over any transport."""
    server = FakeServer()
    transport = make(server)
    errors: list[Exception] = []
    async with Client(transport, protocol_version=HANDSHAKE, request_timeout=0.05, on_error=errors.append) as client:
        with pytest.raises(RequestTimeoutError, match=r"no response or progress within 0\.05 s"):
            await client.call_tool("hang", {})
        hang_id = next(m["id"] for m in server.last.sent if m.get("params", {}).get("name") == "hang")
        await until(lambda: any(m.get("method") == "notifications/cancelled" for m in server.last.sent))
        cancel = next(m for m in server.last.sent if m.get("method") == "notifications/cancelled")
        assert cancel["params"]["requestId"] == hang_id
        server.last.push({"jsonrpc": "2.0", "id": hang_id, "result": {"content": []}})  # late: dropped
        assert await echo(client, "after") == "after"
    assert not errors, errors


async def test_progress_restarts_the_request_timer() -> None:
    server = FakeServer()
    transport = make(server)
    async with Client(transport, protocol_version=HANDSHAKE, request_timeout=0.2) as client:
        steps: list[float] = []
        call = asyncio.ensure_future(client.call_tool("hang", {}, progress=lambda p, t, m: steps.append(p)))
        await until(lambda: any(m.get("params", {}).get("name") == "hang" for m in server.last.sent))
        sent = next(m for m in server.last.sent if m.get("params", {}).get("name") == "hang")
        token = sent["params"]["_meta"]["progressToken"]
        for step in range(5):  # 5 x 0.1 s > 0.2 s, but each progress restarts the clock
            await asyncio.sleep(0.1)
            server.last.push(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": token, "progress": step},
                }
            )
        server.last.push({"jsonrpc": "2.0", "id": sent["id"], "result": {"content": []}})
        assert (await call).content == []
        await until(lambda: len(steps) == 5)


async def test_keepalive_pings_are_swallowed_and_a_silent_server_is_dropped() -> None:
    server = FakeServer()
    transport = make(server, ping_interval=0.02, request_timeout=0.05)
    await transport.connect()
    await until(lambda: sum(m.get("method") == "ping" for m in server.last.sent) >= 3)
    assert transport._inbox.empty(), "ping responses never reach receive()"
    server.answer_pings = False
    first = server.last
    await until(lambda: first.closed == 4000)
    await until(lambda: transport.reconnects == 1)
    assert transport.is_connected()
    await transport.close()
    assert not transport._tasks


async def test_close_fails_in_flight_requests_and_is_idempotent() -> None:
    server = FakeServer()
    transport = make(server)
    await transport.send(make_request(1, "tools/call", {"name": "hang"}))
    await transport.close()
    await transport.close()
    with pytest.raises(ConnectionClosedError, match="closed before the response") as lost:
        await transport.receive()
    assert lost.value.request_ids == (1,)  # a typed failure naming the request, not a fake JSON-RPC error
    with pytest.raises(ConnectionClosedError) as closed:
        await transport.receive()
    assert closed.value.request_ids == ()
    assert server.last.closed == 1000


def test_close_codes_are_described() -> None:
    assert describe_close(1006) == "code 1006, abnormal closure (lost without a close frame)"
    assert describe_close(4321, "custom") == "code 4321, application-defined: custom"


@pytest.mark.parametrize("bad", [{"ping_interval": -1}, {"request_timeout": 0}, {"reconnect_delay": 60}])
def test_invalid_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WebSocketTransport("ws://x/ws", connector=FakeServer().connect, **bad)


async def test_real_server_drop_and_restart_reconnects() -> None:
    first = DemoServer()
    port = first.port
    second = None
    try:
        client = await cpython_connect(
            f"ws://127.0.0.1:{port}/ws",
            protocol_version=HANDSHAKE,
            reconnect_delay=0.2,
            max_reconnect_delay=0.5,
            max_reconnect_attempts=40,
        )
        transport: Any = client.transport
        assert transport.subprotocol == "mcp"
        assert await echo(client, "before") == "before"
        first.stop()
        await until(lambda: transport.state == "reconnecting", limit=15)
        second = DemoServer(port=port)  # the new server takes the old port
        assert await echo(client, "after") == "after"
        assert transport.reconnects == 1 and client.session_generation == 1
        await client.close()
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_real_server_binary_frame_closes_with_1003_and_we_reconnect(demo_server: Any) -> None:
    client = await cpython_connect(demo_server.url.replace("http", "ws") + "/ws", protocol_version=HANDSHAKE)
    transport: Any = client.transport
    await transport._conn.send_raw(b"\x01binary")  # the demo server answers binary with close 1003
    await until(lambda: transport.state == "lost")
    with pytest.raises(ConnectionClosedError, match="1003, unsupported data"):
        await client.ping()
    await client.close()
    assert websockets_connector is not None

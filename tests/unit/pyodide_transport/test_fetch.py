"""FetchTransport in CPython: the real demo server over httpx, and a scripted HTTP client for faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from devtools.transports import HttpxHTTPClient, cpython_connect
from pyodide_transport.client import Client
from pyodide_transport.errors import (
    ConnectionClosedError,
    HTTPStatusError,
    NetworkError,
    SessionExpiredError,
)
from pyodide_transport.fetch import FetchTransport, HTTPClient
from pyodide_transport.messages import make_notification, make_request
from tests.pyodide import transport_scenarios as scenarios

HANDSHAKE = scenarios.HANDSHAKE


@pytest.mark.parametrize("endpoint", ["/mcp", "/mcp/json"])
async def test_session_expiry_starts_a_new_session(demo_server: Any, endpoint: str) -> None:
    await scenarios.session_expiry(cpython_connect, demo_server.url + endpoint, HANDSHAKE)


async def test_sse_stream_closed_mid_call_resumes_with_last_event_id(demo_server: Any) -> None:
    http = HttpxHTTPClient()
    outcome = await scenarios.sse_resumption(cpython_connect, demo_server.url + "/mcp", HANDSHAKE, fetch=http)
    resumes = [h for m, h in http.requests if m == "GET" and "Last-Event-ID" in h]
    assert resumes, "the stream was resumed with GET + Last-Event-ID"
    assert all(h["Last-Event-ID"] for h in resumes)
    assert outcome["resumptions"] >= 1


async def test_headers_get_stream_and_delete(demo_server: Any) -> None:
    http = HttpxHTTPClient()
    client = await cpython_connect(
        demo_server.url + "/mcp", fetch=http, headers={"Authorization": "Bearer t0ken"}, protocol_version=HANDSHAKE
    )
    transport: Any = client.transport
    session = transport.session_id
    for _ in range(200):  # the GET stream opens in the background
        if transport.stats["get_stream"] == "open":
            break
        await asyncio.sleep(0.01)
    assert transport.stats["get_stream"] == "open"
    await client.call_tool("echo", {"message": "x"})
    await client.close()
    assert not transport._tasks, "every background task ends on close"
    methods = [m for m, _ in http.requests]
    assert methods[0] == "POST" and "GET" in methods and methods[-1] == "DELETE"
    assert all(h.get("Authorization") == "Bearer t0ken" for _, h in http.requests)
    assert all(h["Accept"] == "application/json, text/event-stream" for m, h in http.requests if m == "POST")
    after_init = [h for _, h in http.requests[1:]]
    assert all(h["Mcp-Session-Id"] == session and h["MCP-Protocol-Version"] == HANDSHAKE for h in after_init)
    assert transport.stats["delete_status"] in (200, 202, 204)
    with pytest.raises(ConnectionClosedError):
        await transport.send(make_notification("notifications/initialized"))
    with pytest.raises(ConnectionClosedError):
        await transport.receive()


async def test_stateless_endpoint_has_no_get_stream_and_no_delete(demo_server: Any) -> None:
    http = HttpxHTTPClient()
    client = await cpython_connect(demo_server.url + "/mcp/stateless", fetch=http, protocol_version=HANDSHAKE)
    await client.call_tool("echo", {"message": "x"})
    await client.close()
    assert {m for m, _ in http.requests} == {"POST"}
    assert client.transport.stats["get_stream"] == "not opened"  # type: ignore[attr-defined]


# --- a scripted HTTP client for the faults a real server rarely shows -------------------------------


class ScriptedResponse:
    def __init__(self, status: int, headers: Mapping[str, str], chunks: list[bytes | Exception]) -> None:
        self.status = status
        self.headers = dict(headers)
        self._chunks = chunks
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            await asyncio.sleep(0)
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


Handler = Callable[[str, Mapping[str, str], dict[str, Any] | None], ScriptedResponse]


class ScriptedHTTP:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, str], dict[str, Any] | None]] = []

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> ScriptedResponse:
        obj = json.loads(body) if body else None
        self.requests.append((method, dict(headers), obj))
        return self.handler(method, headers, obj)

    async def aclose(self) -> None:
        pass


JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}


def test_scripted_http_is_an_http_client() -> None:
    assert isinstance(ScriptedHTTP(lambda m, h, b: ScriptedResponse(202, {}, [])), HTTPClient)


async def test_network_error_is_raised_by_send_once() -> None:
    def handler(method: str, headers: Mapping[str, str], body: dict[str, Any] | None) -> ScriptedResponse:
        raise NetworkError("connection refused")

    transport = FetchTransport("http://x/mcp", fetch=ScriptedHTTP(handler))
    with pytest.raises(NetworkError, match="connection refused"):
        await transport.send(make_request(1, "ping"))
    await transport.close()
    with pytest.raises(ConnectionClosedError):
        await transport.receive()  # nothing else was reported


async def test_http_error_status_is_raised_by_send() -> None:
    transport = FetchTransport("http://x/mcp", fetch=ScriptedHTTP(lambda m, h, b: ScriptedResponse(500, {}, [b"boom"])))
    with pytest.raises(HTTPStatusError, match=r"500.*boom"):
        await transport.send(make_request(1, "ping"))
    await transport.close()


async def test_stream_broken_after_send_fails_its_request_with_connection_closed() -> None:
    """An SSE body that breaks with no event id cannot resume: the request fails, nothing hangs."""

    def handler(method: str, headers: Mapping[str, str], body: dict[str, Any] | None) -> ScriptedResponse:
        assert body is not None
        if body.get("method") == "initialize":
            result = {
                "protocolVersion": HANDSHAKE,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "s", "version": "1"},
            }
            reply = {"jsonrpc": "2.0", "id": body["id"], "result": result}
            return ScriptedResponse(200, JSON, [json.dumps(reply).encode()])
        if "id" not in body:
            return ScriptedResponse(202, {}, [])
        note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hi"}}
        return ScriptedResponse(200, SSE, [f"data: {json.dumps(note)}\n\n".encode(), NetworkError("reset")])

    logs: list[Any] = []
    transport = FetchTransport("http://x/mcp", fetch=ScriptedHTTP(handler), open_get_stream=False)
    async with Client(transport, protocol_version=HANDSHAKE, on_log=logs.append) as client:
        with pytest.raises(ConnectionClosedError, match="the SSE stream broke"):
            await client.call_tool("slow", {})
        assert [m.data for m in logs] == ["hi"]


async def test_404_expires_session_and_client_reinitializes_once() -> None:
    sessions = iter(["s1", "s2"])
    calls: list[str] = []

    def handler(method: str, headers: Mapping[str, str], body: dict[str, Any] | None) -> ScriptedResponse:
        if body is None:
            calls.append(f"{method}@{headers.get('Mcp-Session-Id')}")
            return ScriptedResponse(200, {}, [])
        calls.append(f"{body.get('method')}@{headers.get('Mcp-Session-Id')}")
        if body.get("method") == "initialize":
            result = {"protocolVersion": HANDSHAKE, "capabilities": {}, "serverInfo": {"name": "s", "version": "1"}}
            reply = {"jsonrpc": "2.0", "id": body["id"], "result": result}
            return ScriptedResponse(200, {**JSON, "mcp-session-id": next(sessions)}, [json.dumps(reply).encode()])
        if "id" not in body:
            return ScriptedResponse(202, {}, [])
        if headers.get("Mcp-Session-Id") == "s1":
            return ScriptedResponse(404, {}, [b"no such session"])
        reply = {"jsonrpc": "2.0", "id": body["id"], "result": {}}
        return ScriptedResponse(200, JSON, [json.dumps(reply).encode()])

    transport = FetchTransport("http://x/mcp", fetch=ScriptedHTTP(handler), open_get_stream=False)
    async with Client(transport, protocol_version=HANDSHAKE) as client:
        await client.ping()
        assert client.session_generation == 1
    assert calls == [
        "initialize@None",
        "notifications/initialized@s1",
        "ping@s1",
        "initialize@None",
        "notifications/initialized@s2",
        "ping@s2",
        "DELETE@s2",
    ]
    with pytest.raises(SessionExpiredError):
        expired = FetchTransport("http://x/mcp", fetch=ScriptedHTTP(handler), open_get_stream=False)
        expired._core.expired = True
        await expired.send(make_request(9, "ping"))


async def test_close_while_send_waits_fails_the_send_and_cancels_the_request() -> None:
    started = asyncio.Event()
    aborted: list[bool] = []

    class Hanging:
        async def request(
            self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
        ) -> ScriptedResponse:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                aborted.append(True)  # cancelling the task is how the fetch gets aborted
                raise
            raise AssertionError("unreachable")

        async def aclose(self) -> None:
            pass

    transport = FetchTransport("http://x/mcp", fetch=Hanging())
    sending = asyncio.ensure_future(transport.send(make_request(1, "ping")))
    await started.wait()
    await transport.close()
    with pytest.raises(ConnectionClosedError, match="closed before the server answered"):
        await sending
    assert aborted == [True]
    assert not transport._tasks

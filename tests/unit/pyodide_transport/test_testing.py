"""pyodide_transport.testing: a Client against MockTransport, FetchTransport against MockHTTP, no server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from mcp_types import CallToolResult, ElicitRequestFormParams, ElicitRequestURLParams, ElicitResult, TextContent
from mcp_types.jsonrpc import METHOD_NOT_FOUND, JSONRPCRequest, JSONRPCResponse

from pyodide_transport import testing
from pyodide_transport.client import Client
from pyodide_transport.errors import (
    ConnectionClosedError,
    HTTPStatusError,
    LocalProtocolError,
    MCPError,
    NetworkError,
    RequestTimeoutError,
)
from pyodide_transport.fetch import FetchTransport, HTTPClient
from pyodide_transport.messages import error_response, make_notification, make_request
from pyodide_transport.testing import MockHTTP, MockRequest, MockResponse, MockTransport, http_handler, mcp_handler
from pyodide_transport.transport import Transport

HANDSHAKE = "2025-11-25"
TOOLS = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}


def echo(params: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": params["arguments"]["message"]}]}


# --- MockTransport --------------------------------------------------------------------------------


async def test_client_against_mock_transport_in_the_handshake_era() -> None:
    mock = MockTransport(mcp_handler({"tools/list": TOOLS, "tools/call": echo}))
    assert isinstance(mock, Transport)
    async with Client(mock, protocol_version=HANDSHAKE) as client:
        assert client.era == "handshake" and client.protocol_version == HANDSHAKE
        assert client.server_info is not None and client.server_info.name == "mock-server"
        assert [t.name for t in (await client.list_tools()).tools] == ["echo"]
        result = await client.call_tool("echo", {"message": "hi"})
        assert isinstance(result.content[0], TextContent) and result.content[0].text == "hi"
    [init] = mock.requests("initialize")
    assert (init.params or {})["protocolVersion"] == HANDSHAKE
    assert [n.method for n in mock.notifications()] == ["notifications/initialized"]
    assert [r.method for r in mock.requests()] == ["initialize", "tools/list", "tools/call"]
    assert not mock.is_connected()


async def test_negotiation_falls_back_to_initialize_or_speaks_modern() -> None:
    async with Client(MockTransport(mcp_handler({}))) as client:
        assert client.era == "handshake"  # server/discover got METHOD_NOT_FOUND
    modern = MockTransport(mcp_handler({"tools/list": TOOLS}, versions=("2026-07-28",)))
    async with Client(modern) as client:
        assert client.era == "modern" and client.protocol_version == "2026-07-28"
        assert client.server_info is not None and client.server_info.name == "mock-server"
        await client.list_tools()
    assert not modern.requests("initialize")


async def test_replies_models_errors_and_messages() -> None:
    async def handler(message: Any) -> testing.Reply:
        if not isinstance(message, JSONRPCRequest):
            return None
        if message.method == "tools/call":
            name = (message.params or {})["name"]
            if name == "model":
                return CallToolResult(content=[TextContent(type="text", text="from a model")])
            if name == "mcp-error":
                raise MCPError(-32001, "tool exploded", {"why": "test"})
            if name == "error-message":
                return error_response(message.id, -32002, "built by hand")
            return MCPError(METHOD_NOT_FOUND, "no such tool")
        return await mcp_handler({})(message)

    async with Client(MockTransport(handler), protocol_version=HANDSHAKE) as client:
        result = await client.call_tool("model", {})
        assert isinstance(result.content[0], TextContent) and result.content[0].text == "from a model"
        with pytest.raises(MCPError) as raised:
            await client.call_tool("mcp-error", {})
        assert (raised.value.code, raised.value.error_message, raised.value.data) == (
            -32001,
            "tool exploded",
            {"why": "test"},
        )
        with pytest.raises(MCPError, match="built by hand"):
            await client.call_tool("error-message", {})
        with pytest.raises(MCPError) as raised:
            await client.call_tool("other", {})
        assert raised.value.code == METHOD_NOT_FOUND


async def test_an_unrouted_request_gets_method_not_found() -> None:
    async with Client(MockTransport(mcp_handler({})), protocol_version=HANDSHAKE) as client:
        with pytest.raises(MCPError) as raised:
            await client.list_prompts()
        assert raised.value.code == METHOD_NOT_FOUND


async def test_transport_errors_fail_the_send() -> None:
    down = NetworkError("the server is down")
    mock = MockTransport(mcp_handler({"tools/call": down}))
    async with Client(mock, protocol_version=HANDSHAKE) as client:
        with pytest.raises(NetworkError, match="the server is down"):
            await client.call_tool("echo", {})
        await client.ping()  # the transport itself stays usable


async def test_no_reply_lets_the_client_time_out_and_cancel() -> None:
    mock = MockTransport(mcp_handler({"tools/call": None}))
    async with Client(mock, protocol_version=HANDSHAKE) as client:
        with pytest.raises(RequestTimeoutError):
            await client.call_tool("hang", {}, timeout=0.05)
        for _ in range(200):  # the client may tell the server in a task of its own
            if mock.notifications("notifications/cancelled"):
                break
            await asyncio.sleep(0.01)
        [cancel] = mock.notifications("notifications/cancelled")
        assert (cancel.params or {})["requestId"] == mock.requests("tools/call")[0].id


async def test_server_notifications_progress_and_requests() -> None:
    logs: list[str] = []
    progress: list[float] = []
    mock: MockTransport

    async def tool(params: dict[str, Any]) -> testing.Reply:
        token = params["_meta"]["progressToken"]
        await mock.notify("notifications/progress", {"progressToken": token, "progress": 1, "total": 2})
        answer = await mock.request(
            "elicitation/create",
            {"message": "name?", "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}},
        )
        return {"content": [{"type": "text", "text": f"hello {answer['content']['name']}"}]}

    async def elicit(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "Ada"})

    mock = MockTransport(mcp_handler({"tools/call": tool}))
    async with Client(
        mock, protocol_version=HANDSHAKE, on_log=lambda p: logs.append(str(p.data)), elicitation_handler=elicit
    ) as client:
        await mock.notify("notifications/message", {"level": "info", "data": "pushed"})
        result = await client.call_tool("greet", {}, progress=lambda p, total, message: progress.append(p))
        assert isinstance(result.content[0], TextContent) and result.content[0].text == "hello Ada"
        for _ in range(100):
            if logs and progress:
                break
            await asyncio.sleep(0.01)
    assert logs == ["pushed"] and progress == [1.0]
    # the client's answer went to mock.request, not to the handler
    assert [getattr(m, "method", None) for m in mock.sent] == [
        "initialize",
        "notifications/initialized",
        "tools/call",
        None,
    ]
    answer = mock.sent[-1]
    assert isinstance(answer, JSONRPCResponse) and answer.id == "mock-1"


async def test_a_client_error_answer_raises_from_request() -> None:
    mock = MockTransport(mcp_handler({}))
    async with Client(mock, protocol_version=HANDSHAKE):  # no roots handler: roots/list is refused
        with pytest.raises(MCPError):
            await mock.request("roots/list")


async def test_close_simulates_the_server_going_away() -> None:
    mock = MockTransport(mcp_handler({"tools/call": echo}))
    async with Client(mock, protocol_version=HANDSHAKE) as client:
        mock.push(make_notification("notifications/tools/list_changed"))
        await mock.close()
        with pytest.raises(ConnectionClosedError):
            await client.call_tool("echo", {"message": "late"})
    with pytest.raises(ConnectionClosedError):
        await mock.send(make_request(1, "ping"))
    with pytest.raises(ConnectionClosedError):
        mock.push(make_notification("x"))


async def test_receive_drains_before_it_reports_closed_and_waits_fail() -> None:
    mock = MockTransport()
    mock.push(make_notification("one"))
    waiting = asyncio.ensure_future(mock.request("roots/list"))
    await asyncio.sleep(0)
    await mock.close()
    assert [(await mock.receive()).method for _ in range(2)] == ["one", "roots/list"]  # type: ignore[union-attr]
    with pytest.raises(ConnectionClosedError):
        await mock.receive()
    with pytest.raises(ConnectionClosedError):
        await waiting


async def test_handler_mistakes_are_loud() -> None:
    async def answers_notifications(message: Any) -> testing.Reply:
        return {"surprise": True}

    with pytest.raises(LocalProtocolError, match="only requests get one"):
        await MockTransport(answers_notifications).send(make_notification("notifications/initialized"))
    with pytest.raises(LocalProtocolError, match="expected a dict"):
        await MockTransport(lambda m: 42).send(make_request(1, "ping"))  # type: ignore[arg-type, return-value]

    def buggy(message: Any) -> testing.Reply:
        raise KeyError("a bug in the test's handler")

    with pytest.raises(KeyError):
        await MockTransport(buggy).send(make_request(1, "ping"))


# --- MockHTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sse", [False, True])
async def test_fetch_transport_against_mock_http(sse: bool) -> None:
    http = MockHTTP(http_handler(mcp_handler({"tools/list": TOOLS, "tools/call": echo}), sse=sse))
    assert isinstance(http, HTTPClient)
    transport = FetchTransport("http://mcp.test/mcp", fetch=http)
    async with Client(transport, protocol_version=HANDSHAKE) as client:
        result = await client.call_tool("echo", {"message": "over http"})
        assert isinstance(result.content[0], TextContent) and result.content[0].text == "over http"
        assert transport.session_id == "mock-session"
        assert transport.stats["sse_responses" if sse else "json_responses"] >= 2
    assert http.closed
    methods = [(r.method, r.json()["method"] if r.body else None) for r in http.requests]
    assert methods[:2] == [("POST", "initialize"), ("POST", "notifications/initialized")]
    assert ("GET", None) in methods and methods[-1] == ("DELETE", None)
    after_init = http.requests[1:]
    assert all(r.headers["mcp-session-id"] == "mock-session" for r in after_init)
    assert all(r.headers["mcp-protocol-version"] == HANDSHAKE for r in after_init)
    post = http.requests[0]
    assert post.headers["accept"] == "application/json, text/event-stream"
    assert post.message().method == "initialize"  # type: ignore[union-attr]


async def test_a_raw_http_handler_scripts_statuses() -> None:
    def handler(request: MockRequest) -> Any:
        if request.method == "POST":
            return MockResponse(401, headers={"WWW-Authenticate": 'Bearer realm="mcp"'}, content="no token")
        return 405

    with pytest.raises(HTTPStatusError) as raised:
        async with Client(FetchTransport("http://mcp.test/mcp", fetch=MockHTTP(handler)), protocol_version=HANDSHAKE):
            pass
    assert raised.value.status == 401


async def test_expired_session_and_network_errors_over_mock_http() -> None:
    served = mcp_handler({"tools/call": echo})
    expired = {"done": False}

    async def handler(request: MockRequest) -> Any:
        if request.method == "POST" and request.json()["method"] == "tools/call" and not expired["done"]:
            expired["done"] = True
            return MockResponse(404)  # the session is gone: the Client re-initializes and re-sends once
        return await http_handler(served)(request)

    http = MockHTTP(handler)
    async with Client(FetchTransport("http://mcp.test/mcp", fetch=http), protocol_version=HANDSHAKE) as client:
        result = await client.call_tool("echo", {"message": "again"})
        assert isinstance(result.content[0], TextContent) and result.content[0].text == "again"
        assert client.session_generation == 1
    assert [r.json()["method"] for r in http.requests if r.method == "POST"].count("initialize") == 2

    refused = MockHTTP(lambda request: NetworkError("connection refused"))
    with pytest.raises(NetworkError, match="connection refused"):
        async with Client(FetchTransport("http://mcp.test/mcp", fetch=refused), protocol_version=HANDSHAKE):
            pass


async def test_mock_response_bodies() -> None:
    async def read(response: MockResponse) -> bytes:
        return b"".join([chunk async for chunk in response.chunks()])

    assert json.loads(await read(MockResponse(json={"a": 1}))) == {"a": 1}
    assert MockResponse(json=[1]).headers["content-type"] == "application/json"
    events = MockResponse(sse=[make_notification("n"), {"jsonrpc": "2.0", "id": 1, "result": {}}, b": comment\n\n"])
    assert events.headers["content-type"] == "text/event-stream"
    body = (await read(events)).decode()
    assert body.count("data: ") == 2 and '"method":"n"' in body and ": comment" in body
    assert await read(MockResponse(content="text", headers={"Content-Type": "text/plain"})) == b"text"

    cut = MockResponse(chunks=[b"data: {", NetworkError("cut mid-event")])
    seen: list[bytes] = []
    with pytest.raises(NetworkError, match="cut mid-event"):
        async for chunk in cut.chunks():
            seen.append(chunk)
    assert seen == [b"data: {"]

    async def stream() -> Any:
        yield b"one"
        yield b"two"

    streamed = MockResponse(chunks=stream())
    async for chunk in streamed.chunks():
        assert chunk == b"one"
        await streamed.aclose()
    assert streamed.closed
    with pytest.raises(LocalProtocolError, match="one body"):
        MockResponse(content=b"x", json={})


def test_cpython_adapters_are_reexported_lazily() -> None:
    from pyodide_transport import cpython

    assert testing.HttpxHTTPClient is cpython.HttpxHTTPClient
    assert testing.websockets_connect is cpython.websockets_connect
    with pytest.raises(AttributeError):
        testing.nothing_here  # noqa: B018
    probe = "import sys, pyodide_transport.testing; print('pyodide_transport.cpython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

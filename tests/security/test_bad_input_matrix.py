"""Bad input against every endpoint: one table, the exact answer for each row, and nobody else affected.

Each row sends one bad request (HTTP: /mcp, /mcp/json, /mcp/stateless) or bad frames
(WebSocket: /ws) and asserts the exact HTTP status / close code and JSON-RPC error code.
Meanwhile a healthy session on the same endpoint keeps calling ``echo``; it must see no
error at all, and the server must still answer it after the bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from devtools.mcp_http import ACCEPT_BOTH, MODERN, initialize, modern_body, sse_events
from devtools.reliability import HANDSHAKE, cpython_connect, live_app, until
from pyodide_transport.client import Client

LIMIT = 64 * 1024
PARSE, INVALID, NO_METHOD, BAD_PARAMS = -32700, -32600, -32601, -32602
MISMATCH, BAD_VERSION, NO_SESSION = -32020, -32022, -32001
STATEFUL = ("/mcp", "/mcp/json")
HTTP_PATHS = ("/mcp", "/mcp/json", "/mcp/stateless")
DROP = None  # a header value meaning "remove this header"


@dataclass(frozen=True)
class Case:
    """One row: what to send, and the exact answer (``status``: HTTP status or WebSocket close code)."""

    name: str
    path: str
    status: int | None
    code: int | None
    body: Any = None
    method: str = "POST"
    headers: dict[str, str | None] = field(default_factory=dict)
    session: bool = True  # send a valid session id (stateful endpoints)
    frames: tuple[str | bytes, ...] = ()  # WebSocket frames
    init: bool = True  # WebSocket: initialize first

    @property
    def id(self) -> str:
        return f"{self.path}:{self.name}"


def req(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def modern(method: str, params: dict[str, Any], version: str = MODERN) -> dict[str, Any]:
    body = modern_body(1, method, params)
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = version
    return body


ECHO = {"name": "echo", "arguments": {"message": "x"}}
OVERSIZED = req("ping", {"pad": "x" * LIMIT})


def http_cases() -> list[Case]:
    cases: list[Case] = []
    for p in HTTP_PATHS:
        stateful = p in STATEFUL
        answer = 200  # JSON-RPC errors about a request that reached the core travel in a 200 response
        cases += [
            Case("malformed JSON", p, 400, PARSE, body=b'{"jsonrpc": "2.0", "id": 1,'),
            Case("not JSON at all", p, 400, PARSE, body=b"\xff\xfe hello"),
            Case("empty body", p, 400, PARSE, body=b""),
            Case("wrong jsonrpc version", p, 400, INVALID, body={"jsonrpc": "1.0", "id": 1, "method": "ping"}),
            Case("jsonrpc missing", p, 400, INVALID, body={"id": 1, "method": "ping"}),
            Case("a bare number", p, 400, INVALID, body=42),
            Case("empty batch", p, 400, INVALID, body=[]),
            Case("batch of two", p, 400, INVALID, body=[req("ping", request_id=1), req("ping", request_id=2)]),
            Case("id null", p, 400, INVALID, body=req("ping", request_id=None)),
            Case("id an object", p, 400, INVALID, body=req("ping", request_id={"a": 1})),
            Case("method not a string", p, 400, INVALID, body=req(5)),  # type: ignore[arg-type]
            Case("missing id is a notification", p, 202, None, body={"jsonrpc": "2.0", "method": "tools/list"}),
            Case("unknown method", p, answer, NO_METHOD, body=req("no/such/method")),
            Case("tool name not a string", p, answer, BAD_PARAMS, body=req("tools/call", {"name": 5})),
            Case(
                "arguments not an object", p, answer, BAD_PARAMS, body=req("tools/call", {"name": "e", "arguments": 1})
            ),
            Case("params not an object", p, 400, INVALID, body=req("tools/list", ["x"])),
            Case("oversized body", p, 413, INVALID, body=OVERSIZED),
            Case("no Content-Type", p, 415, INVALID, body=req("ping"), headers={"content-type": DROP}),
            Case("text/plain body", p, 415, INVALID, body=req("ping"), headers={"content-type": "text/plain"}),
            Case("no Accept", p, 406, INVALID, body=req("ping"), headers={"accept": DROP}),
            Case("Accept lacks JSON", p, 406, INVALID, body=req("ping"), headers={"accept": "text/event-stream"}),
            Case(
                "unsupported protocol version",
                p,
                400,
                BAD_VERSION,
                body=req("ping"),
                headers={"mcp-protocol-version": "1999-01-01"},
            ),
            Case("PUT", p, 405, INVALID, method="PUT", body=req("ping")),
            Case(
                "modern: Mcp-Method mismatch",
                p,
                400,
                MISMATCH,
                body=modern("tools/call", ECHO),
                headers={"mcp-protocol-version": MODERN, "mcp-method": "tools/list", "mcp-name": "echo"},
                session=False,
            ),
            Case(
                "modern: Mcp-Name missing",
                p,
                400,
                MISMATCH,
                body=modern("tools/call", ECHO),
                headers={"mcp-protocol-version": MODERN, "mcp-method": "tools/call"},
                session=False,
            ),
            Case(
                "modern: Mcp-Name mismatch",
                p,
                400,
                MISMATCH,
                body=modern("tools/call", ECHO),
                headers={"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "other"},
                session=False,
            ),
            Case(
                "modern: header and _meta versions differ",
                p,
                400,
                MISMATCH,
                body=modern("tools/call", ECHO, version="2025-11-25"),
                headers={"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "echo"},
                session=False,
            ),
            Case(
                "modern: a response posted",
                p,
                400,
                INVALID,
                body={"jsonrpc": "2.0", "id": 1, "result": {}},
                headers={"mcp-protocol-version": MODERN},
                session=False,
            ),
        ]
        if p == "/mcp":
            cases.append(
                Case("Accept lacks SSE", p, 406, INVALID, body=req("ping"), headers={"accept": "application/json"})
            )
        if stateful:
            cases += [
                Case("missing session id", p, 400, INVALID, body=req("ping"), session=False),
                Case("unknown session id", p, 404, NO_SESSION, body=req("ping"), headers={"mcp-session-id": "nope"}),
                Case(
                    "huge session id",
                    p,
                    404,
                    NO_SESSION,
                    body=req("ping"),
                    headers={"mcp-session-id": "s" * 4000},
                ),
                Case("initialize with a session id", p, 400, INVALID, body=req("initialize", {})),
                Case("GET without session", p, 400, INVALID, method="GET", session=False, headers=_sse_accept()),
                Case("GET with Accept: json", p, 406, INVALID, method="GET", headers={"accept": "application/json"}),
                Case("DELETE unknown session", p, 404, NO_SESSION, method="DELETE", headers={"mcp-session-id": "x"}),
                Case(
                    "duplicate id in flight",
                    p,
                    answer,
                    INVALID,
                    body=req("tools/call", {"name": "echo", "arguments": {"message": "dup"}}, request_id=7),
                ),
            ]
        else:
            cases += [
                Case("GET", p, 405, INVALID, method="GET", headers=_sse_accept(), session=False),
                Case("DELETE", p, 405, INVALID, method="DELETE", session=False),
                Case("request before initialize is fine", p, answer, None, body=req("tools/list"), session=False),
            ]
    if any(c.path == "/mcp" and c.name == "GET with Accept: json" for c in cases):
        cases.append(
            Case(
                "unknown Last-Event-ID",
                "/mcp",
                400,
                INVALID,
                method="GET",
                headers={**_sse_accept(), "last-event-id": "x.1"},
            )
        )
    return cases


def _init_params() -> dict[str, Any]:
    return {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


def _sse_accept() -> dict[str, str | None]:
    return {"accept": "text/event-stream", "content-type": DROP}


def ws_cases() -> list[Case]:
    big = json.dumps(req("ping", {"pad": "x" * LIMIT}))
    return [
        Case("malformed JSON", "/ws", None, PARSE, frames=('{"jsonrpc": "2.0", "id": 1,',)),
        Case("wrong jsonrpc version", "/ws", None, INVALID, frames=(json.dumps(req("ping") | {"jsonrpc": "1.0"}),)),
        Case("a bare number", "/ws", None, INVALID, frames=("42",)),
        Case("batch", "/ws", None, INVALID, frames=(json.dumps([req("ping")]),)),
        Case("id null", "/ws", None, INVALID, frames=(json.dumps(req("ping", request_id=None)),)),
        Case("unknown method", "/ws", None, NO_METHOD, frames=(json.dumps(req("no/such")),)),
        Case("tool name not a string", "/ws", None, BAD_PARAMS, frames=(json.dumps(req("tools/call", {"name": 5})),)),
        Case("request before initialize", "/ws", None, INVALID, frames=(json.dumps(req("tools/list")),), init=False),
        Case(
            "duplicate id in flight",
            "/ws",
            None,
            INVALID,
            frames=(
                json.dumps(req("tools/call", {"name": "long_running", "arguments": {"steps": 2, "delay_ms": 100}}, 7)),
                json.dumps(req("tools/call", ECHO, 7)),
            ),
        ),
        Case("binary frame", "/ws", 1003, None, frames=(b"\x00\x01binary",)),
        Case("oversized frame", "/ws", 1009, None, frames=(big,)),
    ]


CASES = http_cases() + ws_cases()


def test_the_matrix_is_big_enough(record_figure: Callable[[str, object], None]) -> None:
    assert len(CASES) >= 40
    assert {c.path for c in CASES} == {*HTTP_PATHS, "/ws"}
    record_figure("bad input matrix: cases (HTTP /mcp, /mcp/json, /mcp/stateless and /ws)", len(CASES))


@contextlib.asynccontextmanager
async def healthy_session(url: str) -> AsyncIterator[list[int]]:
    """A session calling ``echo`` in a loop while the bad input is sent; yields its call counter."""
    errors: list[Exception] = []
    client: Client = await cpython_connect(url, protocol_version=HANDSHAKE, on_error=errors.append)
    counter = [0]
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            result = await client.call_tool("echo", {"message": f"ok {counter[0]}"}, timeout=20)
            assert result.content[0].text == f"ok {counter[0]}"  # type: ignore[union-attr]
            counter[0] += 1

    task = asyncio.ensure_future(loop())
    try:
        yield counter
        stop.set()
        await task
        after = await client.call_tool("echo", {"message": "after"}, timeout=20)
        assert after.content[0].text == "after"  # type: ignore[union-attr]
        assert not errors, errors
    finally:
        task.cancel()
        await client.close()


async def _read_answer(response: httpx.Response, request_id: Any) -> int | None:
    """The JSON-RPC error code in a JSON or SSE answer (None: no error)."""
    ctype = response.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        async for event in sse_events(response):
            if event.data:
                message = event.json()
                if "method" not in message and message.get("id") == request_id:
                    return message["error"]["code"] if "error" in message else None
        raise AssertionError("the stream ended without an answer")
    raw = await response.aread()
    if ctype.startswith("application/json"):
        data = json.loads(raw)
        return data["error"]["code"] if isinstance(data, dict) and "error" in data else None
    return None


async def run_http(base: str, case: Case, http: httpx.AsyncClient) -> tuple[int | None, int | None]:
    url = base + case.path
    headers: dict[str, str] = {"content-type": "application/json", "accept": ACCEPT_BOTH}
    if case.session and case.path in STATEFUL:
        session_id = await initialize(http, url)
        assert session_id is not None
        headers |= {"mcp-session-id": session_id, "mcp-protocol-version": HANDSHAKE}
    for name, value in case.headers.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    content = case.body if isinstance(case.body, bytes) or case.body is None else json.dumps(case.body).encode()
    if case.name == "duplicate id in flight":
        return await _duplicate_http(url, headers, content, http)
    request = http.build_request(case.method, url, headers=headers, content=content)
    response = await http.send(request, stream=True)
    try:
        request_id = case.body.get("id") if isinstance(case.body, dict) else None
        return response.status_code, await _read_answer(response, request_id)
    finally:
        await response.aclose()


async def _duplicate_http(
    url: str, headers: dict[str, str], duplicate: bytes | None, http: httpx.AsyncClient
) -> tuple[int | None, int | None]:
    """Id 7 is in flight (a slow tool); a second request with id 7 is refused, and the first still answers."""
    slow = req("tools/call", {"name": "long_running", "arguments": {"steps": 5, "delay_ms": 100}}, 7)

    async def original() -> tuple[int, int | None]:
        async with http.stream("POST", url, headers=headers, json=slow) as first:
            return first.status_code, await _read_answer(first, 7)

    first = asyncio.ensure_future(original())
    try:
        await asyncio.sleep(0.15)  # id 7 is in flight for 0.5 s
        second = await http.send(http.build_request("POST", url, headers=headers, content=duplicate), stream=True)
        try:
            status, code = second.status_code, await _read_answer(second, 7)
        finally:
            await second.aclose()
        assert not first.done(), "the duplicate was answered while the original still ran"
        assert await first == (200, None), "the first request with id 7 still gets its result"
    finally:
        first.cancel()
    return status, code


async def run_ws(base: str, case: Case) -> tuple[int | None, int | None]:
    url = base.replace("http://", "ws://") + case.path
    async with ws_connect(url, subprotocols=[Subprotocol("mcp")], max_size=None, ping_interval=None) as ws:
        if case.init:
            await ws.send(json.dumps(req("initialize", _init_params(), 0)))
            assert "result" in json.loads(await ws.recv())
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        for frame in case.frames:
            await ws.send(frame)
        if case.status is not None:  # the server must close the connection with this code
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is not None
            return closed.value.rcvd.code, None
        reply = json.loads(await ws.recv())
        code = reply["error"]["code"] if "error" in reply else None
        if case.name == "duplicate id in flight":
            later = json.loads(await ws.recv())
            assert later["id"] == 7 and "result" in later, "the first request with id 7 still gets its result"
        await ws.send(json.dumps(req("ping", request_id="still-open")))  # the connection goes on
        assert json.loads(await ws.recv()) == {"jsonrpc": "2.0", "id": "still-open", "result": {}}
        return None, code


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input(case: Case) -> None:
    async with live_app(max_body_bytes=LIMIT) as live:
        healthy_url = (live.base.replace("http://", "ws://") if case.path == "/ws" else live.base) + case.path
        async with healthy_session(healthy_url) as calls, httpx.AsyncClient(timeout=15) as http:
            del http.headers["accept"]  # httpx would send Accept: */* by default
            before = calls[0]
            if case.path == "/ws":
                got = await run_ws(live.base, case)
            else:
                got = await run_http(live.base, case, http)
            assert got == (case.status, case.code), case
            await until(lambda: calls[0] >= before + 2)  # the healthy session keeps being served

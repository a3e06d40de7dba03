"""Helpers for tests against a real uvicorn server on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

MODERN = "2026-07-28"
ACCEPT_BOTH = "application/json, text/event-stream"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class LiveServer:
    app: Starlette
    port: int = field(default_factory=free_port)
    ws_max_size: int = 4 * 1024 * 1024
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_max_size=self.ws_max_size,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            async with asyncio.timeout(15):
                await self._task


@dataclass
class SseEvent:
    id: str | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Parse an SSE body incrementally (enough of the format for our server's output)."""
    current = SseEvent()
    data_lines: list[str] = []
    seen = False
    async for line in response.aiter_lines():
        if line == "":
            if seen:
                current.data = "\n".join(data_lines)
                yield current
            current, data_lines, seen = SseEvent(), [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        seen = True
        if name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "data":
            data_lines.append(value)
        elif name == "retry":
            current.retry = int(value)


def headers(session_id: str | None = None, *, accept: str = ACCEPT_BOTH, **extra: str) -> dict[str, str]:
    h = {"content-type": "application/json", "accept": accept, **extra}
    if session_id is not None:
        h["mcp-session-id"] = session_id
    return h


async def read_reply(response: httpx.Response, request_id: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The JSON-RPC reply to ``request_id`` (from JSON or SSE) and any other messages seen before it."""
    if response.headers["content-type"].startswith("application/json"):
        await response.aread()
        return response.json(), []
    others: list[dict[str, Any]] = []
    async for event in sse_events(response):
        if not event.data:
            continue
        message = event.json()
        if message.get("id") == request_id and "method" not in message:
            return message, others
        others.append(message)
    raise AssertionError("stream ended without the reply")


async def post(
    client: httpx.AsyncClient, url: str, body: Any, session_id: str | None = None, **extra: str
) -> tuple[httpx.Response, dict[str, Any], list[dict[str, Any]]]:
    """POST one request and read its reply."""
    request = client.build_request("POST", url, json=body, headers=headers(session_id, **extra))
    response = await client.send(request, stream=True)
    try:
        reply, others = await read_reply(response, body.get("id"))
    finally:
        await response.aclose()
    return response, reply, others


async def initialize(client: httpx.AsyncClient, url: str, **caps: Any) -> str | None:
    body = json.loads(json.dumps(INIT))
    body["params"]["capabilities"] = caps
    response, reply, _ = await post(client, url, body)
    assert response.status_code == 200, reply
    assert reply["result"]["protocolVersion"] == "2025-11-25"
    session_id = response.headers.get("mcp-session-id")
    await client.post(
        url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=headers(session_id, **{"mcp-protocol-version": "2025-11-25"}),
    )
    return session_id


def modern_body(request_id: int, method: str, params: dict[str, Any] | None = None, **caps: Any) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": meta}}


def modern_headers(method: str, name: str | None = None, accept: str = ACCEPT_BOTH) -> dict[str, str]:
    h = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        h["mcp-name"] = name
    return {**headers(accept=accept), **h}


BODY_LIMIT = 64 * 1024
MAX_SESSIONS = 20
IDLE_TIMEOUT = 60.0


@dataclass
class Live:
    """The running server of one test, its fake clock, and the session hooks' records."""

    server: LiveServer
    clock: FakeClock
    opened: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base

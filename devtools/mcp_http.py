"""Raw MCP over HTTP for server tests: request bodies and headers, replies read from JSON or SSE.

No client of ours in between: these helpers put exactly the given bytes on the wire (over
``httpx``), so tests can check what a server does with them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "ACCEPT_BOTH",
    "INIT",
    "MODERN",
    "SseEvent",
    "headers",
    "initialize",
    "modern_body",
    "modern_headers",
    "post",
    "read_reply",
    "sse_events",
]

MODERN = "2026-07-28"
"""The modern protocol version."""
ACCEPT_BOTH = "application/json, text/event-stream"
"""The ``Accept`` header of a Streamable HTTP POST."""
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
"""An ``initialize`` request (handshake era, 2025-11-25)."""


@dataclass
class SseEvent:
    """One parsed SSE event."""

    id: str | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """The event's data, decoded as JSON."""
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
    """Headers of a JSON POST, with the session id when there is one."""
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
    """Run the handshake (``initialize`` + ``notifications/initialized``); return the session id."""
    body = json.loads(json.dumps(INIT))
    body["params"]["capabilities"] = caps
    response, reply, _ = await post(client, url, body)
    assert response.status_code == 200, reply
    assert reply["result"]["protocolVersion"] == "2025-11-25"
    session_id: str | None = response.headers.get("mcp-session-id")
    await client.post(
        url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=headers(session_id, **{"mcp-protocol-version": "2025-11-25"}),
    )
    return session_id


def modern_body(request_id: int, method: str, params: dict[str, Any] | None = None, **caps: Any) -> dict[str, Any]:
    """A 2026-07-28 request: protocol version, client info and capabilities in ``_meta``."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": meta}}


def modern_headers(method: str, name: str | None = None, accept: str = ACCEPT_BOTH) -> dict[str, str]:
    """Headers of a 2026-07-28 POST (``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``)."""
    h = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        h["mcp-name"] = name
    return {**headers(accept=accept), **h}

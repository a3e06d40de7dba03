"""The bare-ASGI floor: a tiny uvicorn ASGI app answering the benchmark's JSON-RPC ``echo`` with no MCP code.

Run as ``python -m benchmarks.bare_asgi --port N``. ``/mcp/stateless`` answers every POST with a JSON
body; ``/mcp`` answers ``initialize`` with an ``Mcp-Session-Id`` and every later request with a one-event
SSE body, after checking that the session id is one it issued (404 otherwise). ``notifications/initialized``
gets 202. No validation beyond that, no routing framework, no logging: what any Python MCP server on
uvicorn pays at the least (the HTTP server, one ``json.loads`` and one ``json.dumps`` per call).
Same uvicorn settings as ``python -m server_demo`` and ``benchmarks/sdk_server.py``.
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import Any

import uvicorn

PROTOCOL = "2025-11-25"
_SESSIONS: set[str] = set()


def _answer(message: dict[str, Any]) -> dict[str, Any]:
    """The JSON-RPC response to one request: ``initialize``, ``tools/call echo``, or method not found."""
    method = message.get("method")
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": PROTOCOL,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bare-asgi", "version": "1"},
        }
    elif method == "tools/call":
        text = message["params"]["arguments"]["message"]
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        return {"jsonrpc": "2.0", "id": message.get("id"), "error": {"code": -32601, "message": "method not found"}}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI app (HTTP only; lifespan is acknowledged)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body", False):
            break
    stateful = scope["path"] == "/mcp"
    headers: list[tuple[bytes, bytes]] = []
    message = json.loads(body)
    if stateful and message.get("method") != "initialize":
        session_id = dict(scope["headers"]).get(b"mcp-session-id")
        if session_id is None or session_id.decode() not in _SESSIONS:
            await _send(send, 404, b"session not found", b"text/plain", headers)
            return
    if "id" not in message:
        await _send(send, 202, b"", b"text/plain", headers)
        return
    answer = _answer(message)
    if stateful and message.get("method") == "initialize":
        session_id = secrets.token_hex(16)
        _SESSIONS.add(session_id)
        headers.append((b"mcp-session-id", session_id.encode()))
    data = json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()
    if stateful:
        await _send(send, 200, b"event: message\ndata: " + data + b"\n\n", b"text/event-stream", headers)
    else:
        await _send(send, 200, data, b"application/json", headers)


async def _send(send: Any, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

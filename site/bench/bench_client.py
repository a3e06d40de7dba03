"""Benchmark loops for our Client, run inside Pyodide by client.js (and in CPython by the profiler).

Only public API: ``Client`` over ``FetchTransport`` / ``WebSocketTransport``. Every loop is bounded
by its call count. Results are JSON text with raw per-call latencies; the runner computes the stats.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import pstats
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mcp_types import CallToolResult

import pyodide_transport
from pyodide_transport import (
    Client,
    ConnectionClosedError,
    FetchTransport,
    InMemoryTransport,
    Transport,
    WebSocketTransport,
)
from pyodide_transport.messages import JSONRPCRequest, decode_message, encode_message, make_request, make_response

MESSAGE = "hello from the benchmark"
ECHO_RESULT = {"content": [{"type": "text", "text": MESSAGE}], "isError": False}


def transport_for(url: str) -> Transport:
    """FetchTransport for http(s) URLs, WebSocketTransport for ws(s)."""
    if url.startswith(("ws:", "wss:")):
        return WebSocketTransport(url)
    return FetchTransport(url)


async def timed_loop(call: Callable[[], Awaitable[object]], calls: int, concurrency: int) -> dict[str, Any]:
    """Run ``calls`` calls with ``concurrency`` in flight; wall time and per-call latencies in ms."""
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "calls": calls,
        "concurrency": concurrency,
        "wall_ms": (time.perf_counter() - start) * 1000,
        "latencies_ms": latencies,
    }


async def echo(client: Client) -> CallToolResult:
    """One ``tools/call echo`` that must come back with our message."""
    result = await client.call_tool("echo", {"message": MESSAGE})
    text = getattr(result.content[0], "text", None)
    if text != MESSAGE:
        raise RuntimeError(f"unexpected echo result: {result!r}")
    return result


async def bench(url: str, calls: int, concurrency: int, warmup: int, protocol_version: str | None) -> str:
    """Connect a Client, warm up, time ``calls`` echo calls; JSON text."""
    client = Client(transport_for(url), protocol_version=protocol_version or None)
    await client.connect()
    try:
        for _ in range(warmup):
            await echo(client)
        out = await timed_loop(lambda: echo(client), calls, concurrency)
        out["protocol_version"] = client.protocol_version
    finally:
        await client.close()
    return json.dumps(out)


def floor_request(request_id: int) -> str:
    """The Python floor's request: one ``tools/call echo`` as JSON text (see ``floorCodec`` in client.js)."""
    params = {"name": "echo", "arguments": {"message": MESSAGE}}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})


def floor_reply(text: str) -> int:
    """The Python floor's decoding of one reply: the echo checked, its id back to the JavaScript loop."""
    message = json.loads(text)
    if message["result"]["content"][0]["text"] != MESSAGE:
        raise RuntimeError(f"unexpected echo result: {message!r}")
    request_id: int = message["id"]
    return request_id


async def _memory_server(end: InMemoryTransport) -> None:
    """Answer every request on ``end`` with the echo result: a server that costs nothing."""
    while True:
        try:
            message = await end.receive()
        except ConnectionClosedError:
            return
        if isinstance(message, JSONRPCRequest):
            if message.method == "initialize":
                result: dict[str, Any] = {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "memory", "version": "1"},
                }
            else:
                result = ECHO_RESULT
            await end.send(make_response(message.id, result))


async def split(calls: int) -> str:
    """Where one call's time goes inside Python: session layer, encode, decode (µs per call); JSON text.

    The session layer is the Client over an in-memory pair (no serialization, a server that costs
    nothing), under the batching scheduler the browser transports install; encode and decode time
    the JSON-RPC codec on the messages one echo call sends and gets.
    """
    pyodide_transport.install_scheduler()
    client_end, server_end = InMemoryTransport.create_pair()
    server = asyncio.ensure_future(_memory_server(server_end))
    client = Client(client_end, protocol_version="2025-11-25")
    await client.connect()
    try:
        for _ in range(20):
            await echo(client)
        start = time.perf_counter()
        for _ in range(calls):
            await echo(client)
        session_us = (time.perf_counter() - start) / calls * 1e6
    finally:
        await client.close()
        server.cancel()
    request = make_request(1, "tools/call", {"name": "echo", "arguments": {"message": MESSAGE}})
    response_text = encode_message(make_response(1, ECHO_RESULT))
    start = time.perf_counter()
    for i in range(calls):
        encode_message(make_request(i, "tools/call", {"name": "echo", "arguments": {"message": MESSAGE}}))
    encode_us = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for _ in range(calls):
        decode_message(response_text)
    decode_us = (time.perf_counter() - start) / calls * 1e6
    del request
    return json.dumps({"session_us": session_us, "encode_us": encode_us, "decode_us": decode_us, "calls": calls})


async def profile(url: str, calls: int, protocol_version: str | None, top: int = 25) -> str:
    """Profile ``calls`` sequential echo calls; the top functions by own time, as text."""
    client = Client(transport_for(url), protocol_version=protocol_version or None)
    await client.connect()
    profiler = cProfile.Profile()
    try:
        for _ in range(10):
            await echo(client)
        profiler.enable()
        for _ in range(calls):
            await echo(client)
        profiler.disable()
    finally:
        await client.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()

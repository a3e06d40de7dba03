"""Load: 500 concurrent sessions x 20 calls against stateful SSE (/mcp) and stateless (/mcp/stateless).

A raw httpx load generator against ``python -m server_demo`` in a subprocess (the
server gets its own core). Every session is initialized before any calls start, so all
of them are alive at once. Zero errors are allowed. The server's resident memory is
sampled after a warm-up (baseline), at the peak, and after the sessions were closed
(DELETE) or expired (``--session-idle-timeout``): it must come back to the baseline
(within a margin for the allocator's free lists), and a second round must not grow it.

Size: ``PT_LOAD_SESSIONS`` x ``PT_LOAD_CALLS`` (default 500 x 20, the full size). The
tracemalloc check runs in-process, where tracing slows everything down: ``PT_LOAD_TRACED``
(default ``200x5``; ``500x20`` in ``python build.py stress``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from devtools.reliability import HANDSHAKE, ServerProcess, live_app
from devtools.servers import FakeClock

SESSIONS = int(os.environ.get("PT_LOAD_SESSIONS", "500"))
CALLS = int(os.environ.get("PT_LOAD_CALLS", "20"))
TRACED_SESSIONS, TRACED_CALLS = (int(n) for n in os.environ.get("PT_LOAD_TRACED", "200x5").split("x"))
MB = 1024 * 1024
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class Connection:
    """One keep-alive HTTP/1.1 connection, requests written and responses parsed by hand (httpx costs
    far more CPU than the server under this load; this keeps the generator out of the measurement)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{self.port}", f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        got = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        if "content-length" in got:
            return status, got, await self.reader.readexactly(int(got["content-length"]))
        chunks: list[bytes] = []
        while True:  # chunked
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, got, b"".join(chunks)
            chunks.append(data[:-2])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


def _reply(headers: dict[str, str], body: bytes, request_id: int) -> dict[str, Any]:
    if headers.get("content-type", "").startswith("application/json"):
        data: dict[str, Any] = json.loads(body)
        return data
    for line in body.decode().splitlines():
        if line.startswith("data: ") and len(line) > 6:
            message: dict[str, Any] = json.loads(line[6:])
            if message.get("id") == request_id and "method" not in message:
                return message
    raise AssertionError(f"no reply to {request_id} in {body[:200]!r}")


class Session:
    def __init__(self, port: int, path: str, number: int, calls: int = CALLS) -> None:
        self.conn, self.path, self.number, self.count = Connection(port), path, number, calls
        self.headers = dict(HEADERS)
        self.errors: list[str] = []

    async def post(self, obj: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return await self.conn.request("POST", self.path, self.headers, json.dumps(obj).encode())

    async def open(self, stateful: bool) -> None:
        if not stateful:
            return
        params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "load", "version": "1"}}
        status, headers, body = await self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
        if status != 200 or "result" not in _reply(headers, body, 0):
            self.errors.append(f"initialize: {status}")
            return
        self.headers |= {"mcp-session-id": headers["mcp-session-id"], "mcp-protocol-version": HANDSHAKE}
        status, _, _ = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status != 202:
            self.errors.append(f"initialized: {status}")

    async def calls(self) -> int:
        done = 0
        for i in range(1, self.count + 1):
            text = f"s{self.number}-c{i}"
            params = {"name": "echo", "arguments": {"message": text}}
            status, headers, body = await self.post(
                {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
            )
            reply = _reply(headers, body, i) if status == 200 else {}
            if reply.get("result", {}).get("content", [{}])[0].get("text") != text:
                self.errors.append(f"call {i}: HTTP {status} {reply}")
            else:
                done += 1
        return done

    async def close(self, delete: bool) -> None:
        if delete and "mcp-session-id" in self.headers:
            status, _, _ = await self.conn.request("DELETE", self.path, self.headers)
            if status != 200:
                self.errors.append(f"DELETE: {status}")
        self.conn.close()


async def run_round(
    server: Any, path: str, stateful: bool, sessions: int, *, delete: bool = True, calls: int = CALLS
) -> tuple[int, list[str]]:
    group = [Session(server.port, path, n, calls) for n in range(sessions)]
    try:
        await asyncio.gather(*(s.open(stateful) for s in group))  # every session is alive before any call
        done = sum(await asyncio.gather(*(s.calls() for s in group)))
    finally:
        await asyncio.gather(*(s.close(delete) for s in group))
    return done, [e for s in group for e in s.errors]


class _Target:
    """Where the generator connects (a subprocess server or an in-process one)."""

    def __init__(self, port: int) -> None:
        self.port = port


@pytest.mark.parametrize("path", ["/mcp", "/mcp/stateless"])
async def test_concurrent_sessions_without_errors(path: str, record_figure: Callable[[str, object], None]) -> None:
    """Full size against a subprocess server; a second identical round must not grow its memory."""
    stateful = path == "/mcp"
    server = await asyncio.to_thread(ServerProcess, "--log-level", "warning")
    try:
        async with asyncio.timeout(240):
            _, errors = await run_round(server, path, stateful, 50)  # warm-up: imports, caches, allocator pools
            assert not errors, errors[:5]
            baseline = server.rss_bytes()
            done, errors = await run_round(server, path, stateful, SESSIONS)
            first = server.rss_bytes()
            again, errors_again = await run_round(server, path, stateful, SESSIONS)
            second = server.rss_bytes()
    finally:
        server.stop()
    assert errors == [] and errors_again == [], (errors + errors_again)[:5]
    assert done == again == SESSIONS * CALLS
    # RSS keeps the allocator's high-water mark; closed sessions' memory is reused, not added to
    assert second - first < 8 * MB, (baseline, first, second)
    mode = "stateful SSE" if stateful else "stateless"
    record_figure(
        f"load {mode}: concurrent sessions x calls x rounds, errors, server RSS MB (warm/round 1/round 2)",
        f"{SESSIONS} x {CALLS} x 2, 0, {baseline / MB:.0f}/{first / MB:.0f}/{second / MB:.0f}",
    )


@pytest.mark.parametrize("ending", ["DELETE", "expiry"])
async def test_server_memory_returns_to_baseline(ending: str, record_figure: Callable[[str, object], None]) -> None:
    """In-process server under tracemalloc: Python memory after the sessions end equals the baseline."""
    clock = FakeClock()
    gc.collect()
    tracemalloc.start()
    try:
        async with live_app(session_idle_timeout=60.0, clock=clock) as live:
            target: Any = _Target(live.port)
            endpoint: Any = live.app.state.endpoints["/mcp"]

            async def sweep() -> None:  # any request runs the expiry sweep
                if ending == "expiry":
                    clock.now += 61
                    await Connection(live.port).request("POST", "/mcp", HEADERS, b"{}")

            async with asyncio.timeout(240):
                _, errors = await run_round(target, "/mcp", True, 50, delete=ending == "DELETE", calls=2)
                await sweep()
                gc.collect()
                baseline = tracemalloc.get_traced_memory()[0]
                done, errors = await run_round(
                    target, "/mcp", True, TRACED_SESSIONS, delete=ending == "DELETE", calls=TRACED_CALLS
                )
                peak_sessions = len(endpoint.sessions)
                during = tracemalloc.get_traced_memory()[0]
                await sweep()
                await asyncio.sleep(0.1)
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
                assert not endpoint.sessions
    finally:
        tracemalloc.stop()
    assert errors == [], errors[:5]
    assert done == TRACED_SESSIONS * TRACED_CALLS
    assert peak_sessions == (TRACED_SESSIONS if ending == "expiry" else 0)
    assert after - baseline < 1 * MB, (baseline, during, after)
    record_figure(
        f"load: server Python memory, {TRACED_SESSIONS} x {TRACED_CALLS} sessions ended by {ending} "
        "(baseline/held/after, MB)",
        f"{baseline / MB:.1f}/{during / MB:.1f}/{after / MB:.1f}",
    )

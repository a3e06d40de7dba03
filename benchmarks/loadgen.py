"""The load generator for the server benchmark: asyncio + httpx, a process of its own, loopback only.

``python -m benchmarks.loadgen calls --url URL --concurrency C --calls N [--stateful] [--server-pid PID]``
runs ``N`` ``tools/call echo`` requests with ``C`` in flight over one MCP session (handshake era,
2025-11-25) and prints one JSON object: wall time, latencies, and the CPU seconds the server process
and this generator used during the timed part.

``python -m benchmarks.loadgen sessions --url URL --count K`` opens ``K`` stateful sessions
(``initialize`` + ``notifications/initialized``) and leaves them idle on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from typing import Any

import httpx

PROTOCOL = "2025-11-25"
MESSAGE = "hello from the benchmark"
ACCEPT = "application/json, text/event-stream"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_body(response: httpx.Response, request_id: int) -> dict[str, Any]:
    """The JSON-RPC response for ``request_id`` from a JSON or SSE body."""
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    if response.headers.get("content-type", "").startswith("application/json"):
        message: dict[str, Any] = response.json()
        return message
    for block in response.text.split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if data:
            message = json.loads(data)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message
    raise RuntimeError("no JSON-RPC response in the SSE body")


class Session:
    """One MCP session (or none, on a stateless endpoint) over a shared httpx client."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.session_id: str | None = None
        self.next_id = 0

    def headers(self, initialized: bool = True) -> dict[str, str]:
        """Request headers; the protocol version and session id once negotiated."""
        headers = {"content-type": "application/json", "accept": ACCEPT}
        if initialized:
            headers["mcp-protocol-version"] = PROTOCOL
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        return headers

    async def handshake(self) -> None:
        """``initialize`` then ``notifications/initialized``."""
        params = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "loadgen", "version": "1"}}
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
        response = await self.http.post(self.url, json=body, headers=self.headers(initialized=False))
        message = parse_body(response, 0)
        if "result" not in message:
            raise RuntimeError(f"initialize failed: {message}")
        self.session_id = response.headers.get("mcp-session-id")
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        response = await self.http.post(self.url, json=note, headers=self.headers())
        if response.status_code != 202:
            raise RuntimeError(f"notifications/initialized: HTTP {response.status_code}")

    async def call_echo(self) -> None:
        """One ``tools/call echo`` round trip."""
        self.next_id += 1
        request_id = self.next_id
        params = {"name": "echo", "arguments": {"message": MESSAGE}}
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        message = parse_body(await self.http.post(self.url, json=body, headers=self.headers()), request_id)
        if message.get("result", {}).get("content", [{}])[0].get("text") != MESSAGE:
            raise RuntimeError(f"unexpected echo result: {message}")


async def run_calls(url: str, concurrency: int, calls: int, warmup: int, server_pid: int | None) -> dict[str, Any]:
    """Timed ``tools/call`` loop: ``concurrency`` workers, one keep-alive connection each, one session."""
    clients = [httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=1)) for _ in range(concurrency)]
    first = Session(clients[0], url)
    try:
        await first.handshake()
        sessions = [first]
        for http in clients[1:]:  # same MCP session, own connection: no pool contention in the generator
            other = Session(http, url)
            other.session_id = first.session_id
            sessions.append(other)
        for index in range(warmup):
            await sessions[index % concurrency].call_echo()
        latencies: list[float] = []
        remaining = calls

        async def worker(session: Session, offset: int) -> None:
            nonlocal remaining
            session.next_id = offset  # distinct request ids per worker
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                await session.call_echo()
                latencies.append((time.perf_counter() - start) * 1000)

        server_cpu = cpu_seconds(server_pid) if server_pid else 0.0
        gen_cpu = own_cpu()
        start = time.perf_counter()
        await asyncio.gather(*(worker(s, i * 10_000_000) for i, s in enumerate(sessions)))
        wall = time.perf_counter() - start
        return {
            "calls": calls,
            "concurrency": concurrency,
            "wall_ms": wall * 1000,
            "latencies_ms": latencies,
            "server_cpu_s": (cpu_seconds(server_pid) - server_cpu) if server_pid else None,
            "loadgen_cpu_s": own_cpu() - gen_cpu,
        }
    finally:
        if clients and first.session_id is not None:  # end the session: runs must not pile sessions up
            await clients[0].delete(url, headers=first.headers())
        for http in clients:
            await http.aclose()


async def open_sessions(url: str, count: int, concurrency: int) -> dict[str, Any]:
    """Open ``count`` idle sessions; report how many succeeded."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    opened = 0
    errors: list[str] = []
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:
        remaining = count

        async def worker() -> None:
            nonlocal remaining, opened
            while remaining > 0:
                remaining -= 1
                try:
                    await Session(http, url).handshake()
                    opened += 1
                except (RuntimeError, httpx.HTTPError) as exc:
                    errors.append(str(exc)[:200])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"opened": opened, "errors": errors[:5], "error_count": len(errors)}


def main() -> None:
    """Parse the command line, run, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    calls = sub.add_parser("calls")
    calls.add_argument("--url", required=True)
    calls.add_argument("--concurrency", type=int, default=1)
    calls.add_argument("--calls", type=int, default=500)
    calls.add_argument("--warmup", type=int, default=50)
    calls.add_argument("--server-pid", type=int, default=None)
    calls.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    sessions = sub.add_parser("sessions")
    sessions.add_argument("--url", required=True)
    sessions.add_argument("--count", type=int, default=1000)
    sessions.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.command == "calls":
        if args.cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {args.cpu})
        out = asyncio.run(run_calls(args.url, args.concurrency, args.calls, args.warmup, args.server_pid))
    else:
        out = asyncio.run(open_sessions(args.url, args.count, args.concurrency))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

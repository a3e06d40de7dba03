"""The queue transport's batched stream writes against one round trip per write.

``python -m benchmarks.queue_bench [--messages N] [--senders N] [--calls N]`` starts a
``redis-server`` on a free loopback port and measures:

* ``xadd burst``: ``N`` request envelopes written by ``senders`` concurrent tasks through one
  :class:`~server_demo.queue.BatchedWriter` (queued ``XADD`` s share a pipeline round trip), batched
  and not;
* ``xadd sequential``: the same, one sender awaiting each write (a batch of one: what batching costs
  when there is nothing to batch);
* ``tools/call``: ``echo`` calls from one :class:`~pyodide_transport.Client` over the queue to one
  worker process, 32 in flight, with both sides batched, then neither (``--no-batching``).

It prints a table; nothing is written to ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import subprocess
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from devtools import ROOT
from devtools.processes import stop_process
from devtools.services import RedisServer
from pyodide_transport import Client
from pyodide_transport.messages import make_request
from server_demo.queue import REQUEST_MAXLEN, BatchedWriter, QueueClientTransport
from server_demo.queue_core import RequestEnvelope, encode_request, request_stream

__all__ = ["main"]


def _ops(i: int) -> list[tuple[str | int | float, ...]]:
    fields = encode_request(RequestEnvelope("bench", "bench", make_request(i, "tools/call", {"name": "echo"})))
    return [
        ("XADD", request_stream("bench"), "MAXLEN", "~", REQUEST_MAXLEN, "*", *(p for kv in fields.items() for p in kv))
    ]


async def _writes(url: str, messages: int, senders: int, batching: bool) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        await redis.delete(request_stream("bench"))
        writer = BatchedWriter(redis, batching=batching)
        per = messages // senders

        async def sender(first: int) -> None:
            for i in range(first, first + per):
                await writer.write(_ops(i))

        await writer.write([("PING",)])  # connect outside the timing
        writer.round_trips = writer.commands = 0
        started = time.perf_counter()
        await asyncio.gather(*(sender(s * per) for s in range(senders)))
        elapsed = time.perf_counter() - started
        assert await redis.xlen(request_stream("bench")) == per * senders
        return {"messages": per * senders, "seconds": elapsed, "round_trips": writer.round_trips}
    finally:
        await redis.aclose()


def _worker(url: str, batching: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "server_demo", "worker", "--redis", url, "--log-level", "warning"]
    command += ["--max-in-flight", "64", *([] if batching else ["--no-batching"])]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready or b"ready" not in proc.stdout.readline():
        stop_process(proc)
        raise RuntimeError("the worker did not start")
    return proc


async def _calls(url: str, calls: int, batching: bool) -> dict[str, Any]:
    proc = _worker(url, batching)
    try:
        transport = await QueueClientTransport.connect(url, batching=batching)
        async with Client(transport, request_timeout=60) as client:
            await client.call_tool("echo", {"message": "warm-up"})
            window = asyncio.Semaphore(32)

            async def one(i: int) -> None:
                async with window:
                    await client.call_tool("echo", {"message": str(i)})

            trips = transport.link.writer.round_trips
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(calls)))
            elapsed = time.perf_counter() - started
            return {"messages": calls, "seconds": elapsed, "round_trips": transport.link.writer.round_trips - trips}
    finally:
        stop_process(proc)


def _row(name: str, mode: str, result: dict[str, Any]) -> str:
    rate = result["messages"] / result["seconds"]
    per_trip = result["messages"] / max(1, result["round_trips"])
    return (
        f"| {name:<16} | {mode:<9} | {result['messages']:>8} | {result['seconds']:>7.3f} | {rate:>9.0f} | "
        f"{result['round_trips']:>11} | {per_trip:>9.1f} |"
    )


async def _run(args: argparse.Namespace) -> None:
    with RedisServer() as redis:
        try:
            rows = ["| scenario         | writes    | messages | seconds |     msg/s | round trips | msgs/trip |"]
            rows.append("|" + "|".join("-" * n for n in (18, 11, 10, 9, 11, 13, 11)) + "|")
            for batching in (True, False):
                mode = "batched" if batching else "unbatched"
                rows.append(_row("xadd burst", mode, await _writes(redis.url, args.messages, args.senders, batching)))
            for batching in (True, False):
                mode = "batched" if batching else "unbatched"
                rows.append(_row("xadd sequential", mode, await _writes(redis.url, args.messages // 4, 1, batching)))
            for batching in (True, False):
                mode = "batched" if batching else "unbatched"
                rows.append(_row("tools/call echo", mode, await _calls(redis.url, args.calls, batching)))
            print(f"queue transport on redis-server {redis.url} ({os.cpu_count()} cores); {args.senders} senders")
            print("\n".join(rows))
            print("tools/call: client messages only in 'round trips' (the worker batches its own writes the same way)")
        finally:
            redis.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queue_bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=4000, help="envelopes per burst (default 4000)")
    parser.add_argument("--senders", type=int, default=100, help="concurrent senders in the burst (default 100)")
    parser.add_argument("--calls", type=int, default=1000, help="tools/call round trips (default 1000)")
    asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

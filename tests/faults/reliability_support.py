"""Helpers shared by the reliability tiers (faults, security, load): servers in-process and in subprocesses.

Every server binds 127.0.0.1 on a free port and stops by itself (context managers).
The in-process servers reuse ``tests/integration/server_demo/live_server.py``; the
CPython adapters for our transports come from ``tests/pyodide/transport_adapters.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
for _extra in (TESTS / "integration" / "server_demo", TESTS / "pyodide"):
    if str(_extra) not in sys.path:
        sys.path.insert(0, str(_extra))

from live_server import LiveServer  # noqa: E402
from transport_adapters import HttpxHTTPClient, cpython_connect, shared_conftest  # noqa: E402

from server_demo.app import AppConfig, create_app  # noqa: E402
from server_demo.config import SecurityConfig, stateful_json, stateful_sse, stateless_json  # noqa: E402
from server_demo.core import RequestContext, Server, ToolReturn  # noqa: E402
from server_demo.demo import build_demo_server  # noqa: E402

__all__ = [
    "HANDSHAKE",
    "ROOT",
    "HttpxHTTPClient",
    "ServerProcess",
    "cpython_connect",
    "live_app",
    "reliability_server",
    "shared_conftest",
    "until",
]

HANDSHAKE = "2025-11-25"


async def until(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``limit`` seconds (a hang guard, not a timing assertion)."""
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - the condition lives in other objects, no event to wait on
            await asyncio.sleep(0.01)


def reliability_server(*, gate: asyncio.Event | None = None) -> Server:
    """The demo server plus tools for fault tests.

    * ``burst(count, cut_at, delay_ms, size)``: ``count`` progress notifications whose message is
      ``step-<i>-of-<count>`` (padded to ``size`` bytes), closing its SSE stream after step ``cut_at``.
    * ``wait_gate``: returns once ``gate`` is set (a producer as slow as the test wants).
    """
    server = build_demo_server(counter_interval=0.05, step_delay=0.01)

    @server.tool(
        "burst",
        description="Numbered progress notifications, optionally closing the stream midway.",
        input_schema={
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "cut_at": {"type": "integer"},
                "delay_ms": {"type": "integer"},
                "size": {"type": "integer"},
            },
            "required": ["count"],
        },
    )
    async def burst(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        count, cut_at = int(args["count"]), int(args.get("cut_at", -1))
        delay, size = int(args.get("delay_ms", 0)) / 1000, int(args.get("size", 0))
        for i in range(1, count + 1):
            text = f"step-{i}-of-{count}"
            await ctx.progress(i, count, text + "." * max(0, size - len(text)))
            if i == cut_at:
                ctx.close_stream()
            await asyncio.sleep(delay)
        return f"burst of {count} done"

    @server.tool("wait_gate", description="Returns once the test opens the gate.")
    async def wait_gate(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        if gate is not None:
            await gate.wait()
        return "gate opened"

    return server


@contextlib.asynccontextmanager
async def live_app(server: Server | None = None, **endpoint_options: Any) -> AsyncIterator[LiveServer]:
    """The demo app (every endpoint) on uvicorn in this process; ``endpoint_options`` go to all three configs."""
    security = SecurityConfig()
    common: dict[str, Any] = {"security": security, **endpoint_options}
    sse_options = dict(common)
    config = AppConfig(
        security=security,
        sse=stateful_sse(**sse_options),
        json=stateful_json(**{k: v for k, v in common.items() if k != "event_store"}),
        stateless=stateless_json(**{k: v for k, v in common.items() if k != "event_store"}),
        max_ws_message_bytes=endpoint_options.get("max_body_bytes", 4 * 1024 * 1024),
    )
    live = LiveServer(create_app(server or reliability_server(), config))
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


class ServerProcess:
    """``python -m server_demo`` in a subprocess on a free loopback port; stderr is kept for inspection."""

    def __init__(self, *args: str, log_path: Path | None = None, port: int | None = None) -> None:
        shared = shared_conftest()
        self.port = port if port is not None else shared.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [sys.executable, "-m", "server_demo", "--port", str(self.port), *args]
        self._log = log_path.open("ab") if log_path is not None else None
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
        )
        try:
            shared.wait_for_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux ``/proc``)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (graceful) or SIGKILL (a crash); always reaped."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def server_process(*args: str, **options: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(*args, **options)
    try:
        yield server
    finally:
        server.stop()

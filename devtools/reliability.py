"""Servers and waits shared by the reliability tiers (tests/faults, tests/security, tests/load).

Every server binds 127.0.0.1 on a free port and stops by itself (context managers):
the demo app with extra fault tools under uvicorn in this process (:func:`live_app`),
or ``python -m server_demo`` in a subprocess (:class:`ServerProcess`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import mcp_types as mt

from server_demo.app import AppConfig, create_app
from server_demo.config import SecurityConfig, stateful_json, stateful_sse, stateless_json
from server_demo.core import RequestContext, Server, ToolReturn
from server_demo.demo import build_demo_server

from . import ROOT
from .servers import DemoServer, LiveServer
from .transports import HttpxHTTPClient, cpython_connect

__all__ = [
    "HANDSHAKE",
    "ROOT",
    "HttpxHTTPClient",
    "ServerProcess",
    "cpython_connect",
    "live_app",
    "reliability_server",
    "server_process",
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
    * ``burst_idempotent``: the same, annotated ``idempotentHint`` (a client may send it again).
    * ``wait_gate``: returns once ``gate`` is set (a producer as slow as the test wants).
    """
    server = build_demo_server(counter_interval=0.05, step_delay=0.01)
    burst_schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "cut_at": {"type": "integer"},
            "delay_ms": {"type": "integer"},
            "size": {"type": "integer"},
        },
        "required": ["count"],
    }

    @server.tool(
        "burst_idempotent",
        description="burst, declared idempotent.",
        input_schema=burst_schema,
        annotations=mt.ToolAnnotations(idempotent_hint=True),
    )
    @server.tool(
        "burst",
        description="Numbered progress notifications, optionally closing the stream midway.",
        input_schema=burst_schema,
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


class ServerProcess(DemoServer):
    """``python -m server_demo`` (no site) in a subprocess on a free loopback port.

    Its output goes to ``log_path`` (kept for inspection) or nowhere.
    """

    def __init__(self, *args: str, log_path: Path | None = None, port: int | None = None) -> None:
        super().__init__(*args, site=None, log_path=log_path, quiet=True, port=port)


@contextlib.contextmanager
def server_process(*args: str, **options: Any) -> Iterator[ServerProcess]:
    """A :class:`ServerProcess` for a ``with`` block."""
    server = ServerProcess(*args, **options)
    try:
        yield server
    finally:
        server.stop()

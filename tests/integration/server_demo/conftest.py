"""Fixtures: the demo app on a real uvicorn server (127.0.0.1, free port), stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from live_server import BODY_LIMIT, IDLE_TIMEOUT, MAX_SESSIONS, FakeClock, Live, LiveServer

from server_demo.app import AppConfig, create_app
from server_demo.config import SecurityConfig, stateful_json, stateful_sse, stateless_json
from server_demo.demo import build_demo_server


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    clock = FakeClock()
    opened: list[str] = []
    closed: list[str] = []
    security = SecurityConfig()
    common = {
        "security": security,
        "max_body_bytes": BODY_LIMIT,
        "max_sessions": MAX_SESSIONS,
        "session_idle_timeout": IDLE_TIMEOUT,
        "clock": clock,
        "on_session_initialized": opened.append,
        "on_session_closed": closed.append,
        "retry_ms": 50,
    }
    config = AppConfig(
        security=security,
        sse=stateful_sse(**common),
        json=stateful_json(**common),
        stateless=stateless_json(**common),
        max_ws_message_bytes=BODY_LIMIT,
    )
    app = create_app(build_demo_server(counter_interval=0.05, step_delay=0.01), config)
    server = LiveServer(app, ws_max_size=BODY_LIMIT * 4)
    await server.start()
    try:
        yield Live(server, clock, opened, closed)
    finally:
        await server.stop()


@pytest.fixture
async def client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base, timeout=httpx.Timeout(15.0)) as c:
        yield c

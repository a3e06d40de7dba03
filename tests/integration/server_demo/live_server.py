"""Helpers for the integration tests against a real uvicorn server on a free loopback port.

The generic pieces live in ``devtools`` (servers, ports, raw MCP over HTTP); this module adds the
limits and the per-test record of this folder's ``live`` fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devtools.mcp_http import (
    ACCEPT_BOTH,
    INIT,
    MODERN,
    SseEvent,
    headers,
    initialize,
    modern_body,
    modern_headers,
    post,
    read_reply,
    sse_events,
)
from devtools.ports import free_port
from devtools.servers import FakeClock, LiveServer

__all__ = [
    "ACCEPT_BOTH",
    "BODY_LIMIT",
    "IDLE_TIMEOUT",
    "INIT",
    "MAX_SESSIONS",
    "MODERN",
    "FakeClock",
    "Live",
    "LiveServer",
    "SseEvent",
    "free_port",
    "headers",
    "initialize",
    "modern_body",
    "modern_headers",
    "post",
    "read_reply",
    "sse_events",
]

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

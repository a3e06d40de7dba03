"""A transport wrapper that records every JSON-RPC message in both directions.

Pure Python: wraps any :class:`~pyodide_transport.Transport` (fetch,
WebSocket, in-memory) and tells a listener about each message with its
wall-clock time and, for responses, how long after its request it arrived.
The explorer's message trace is built on it; the Custom transports docs page
shows the same idea in a dozen lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    TransportMessage,
    message_to_obj,
)
from pyodide_transport.transport import Transport

__all__ = ["Direction", "TraceEntry", "TracingTransport", "describe", "oauth_entry"]

Direction: TypeAlias = Literal["out", "in"]
"""``out``: we sent it; ``in``: the server sent it."""


@dataclass(frozen=True)
class TraceEntry:
    """One recorded message.

    Attributes:
        seq: 1-based position in the trace.
        direction: ``out`` (sent) or ``in`` (received).
        kind: ``request``, ``notification``, ``response`` or ``error``.
        method: The method (for responses: the method of the request they answer, if known).
        msg_id: The JSON-RPC id as text, or ``""`` for notifications.
        wall_time: Seconds since the epoch when it was sent or received.
        duration: For responses and errors: seconds since the matching request went the other way.
        body: The message as JSON-ready dict.
        headers: Headers the message travels with that the body does not show (``Mcp-Param-*``).
    """

    seq: int
    direction: Direction
    kind: str
    method: str
    msg_id: str
    wall_time: float
    duration: float | None
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def arrow(self) -> str:
        """``→`` for sent, ``←`` for received."""
        return "→" if self.direction == "out" else "←"

    def pretty(self) -> str:
        """The message body as indented JSON."""
        return json.dumps(self.body, indent=2, ensure_ascii=False)

    def summary(self) -> str:
        """One line: ``→ request tools/call #3`` or ``← response tools/call #3 (12 ms)``."""
        parts = [self.arrow, self.kind]
        if self.method:
            parts.append(self.method)
        if self.msg_id:
            parts.append(f"#{self.msg_id}")
        line = " ".join(parts)
        if self.duration is not None:
            line += f" ({describe(self.duration)})"
        return line


def describe(seconds: float) -> str:
    """A duration for humans: ``850 µs``, ``12 ms``, ``1.4 s``."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def oauth_entry(request: Any, wall_time: float) -> TraceEntry:
    """A trace entry for one request the sign-in made (an :class:`~pyodide_transport.oauth.OAuthRequest`).

    Discovery, registration and token requests are HTTP, not JSON-RPC: they show as kind
    ``oauth`` with their purpose as the method, and the URL, status and outcome as the body.
    """
    body = {"http": f"{request.method} {request.url}", "status": request.status, "outcome": request.outcome}
    return TraceEntry(0, "out", "oauth", request.purpose, "", wall_time, None, body)


def _kind(message: TransportMessage) -> str:
    if isinstance(message, JSONRPCRequest):
        return "request"
    if isinstance(message, JSONRPCNotification):
        return "notification"
    if isinstance(message, JSONRPCResponse):
        return "response"
    if isinstance(message, JSONRPCError):
        return "error"
    return type(message).__name__


class TracingTransport:
    """Wraps a transport and reports every message that passes through it.

    Args:
        inner: The transport that does the work.
        listener: Called with each :class:`TraceEntry` (keep it quick; it runs inline).
        clock: Monotonic seconds, for durations.
        wall_clock: Epoch seconds, for timestamps.
    """

    def __init__(
        self,
        inner: Transport,
        listener: Callable[[TraceEntry], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.transport_type = inner.transport_type
        self._listener = listener
        self._clock = clock
        self._wall = wall_clock
        self._seq = 0
        self._open: dict[tuple[Direction, str], tuple[str, float]] = {}

    def _record(self, direction: Direction, message: TransportMessage, headers: dict[str, str] | None = None) -> None:
        self._seq += 1
        now = self._clock()
        kind = _kind(message)
        method = getattr(message, "method", "") or ""
        raw_id = getattr(message, "id", None)
        msg_id = "" if raw_id is None else str(raw_id)
        duration = None
        if kind == "request":
            self._open[(direction, msg_id)] = (method, now)
        elif kind in ("response", "error") and msg_id:
            asker: Direction = "in" if direction == "out" else "out"
            started = self._open.pop((asker, msg_id), None)
            if started is not None:
                method, duration = started[0], now - started[1]
        body = message_to_obj(message) if hasattr(message, "model_dump") else {"repr": repr(message)}
        entry = TraceEntry(self._seq, direction, kind, method, msg_id, self._wall(), duration, body, headers or {})
        self._listener(entry)

    async def send(self, message: TransportMessage) -> None:
        """Record (with the ``Mcp-Param-*`` headers the inner transport adds, if it says), then send."""
        param_headers = getattr(self.inner, "param_headers", None)
        self._record("out", message, param_headers(message) if callable(param_headers) else None)
        await self.inner.send(message)

    async def receive(self) -> TransportMessage:
        """Receive from the inner transport, then record."""
        message = await self.inner.receive()
        self._record("in", message)
        return message

    async def close(self) -> None:
        """Close the inner transport."""
        await self.inner.close()

    def is_connected(self) -> bool:
        """Whether the inner transport is connected."""
        return self.inner.is_connected()

    def __getattr__(self, name: str) -> Any:
        """Anything else (a session id, a URL) comes from the inner transport."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

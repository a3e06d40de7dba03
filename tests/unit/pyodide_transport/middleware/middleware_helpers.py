"""Helpers for the middleware tests: a tiny MCP server over an in-memory pair, a fake clock, gated and failing wires."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from mcp_types.jsonrpc import JSONRPCError, JSONRPCRequest, JSONRPCResponse
from pydantic import BaseModel

from pyodide_transport.errors import ConnectionClosedError, MCPError, TransportError
from pyodide_transport.memory import InMemoryTransport
from pyodide_transport.messages import TransportMessage, error_response, make_request, make_response
from pyodide_transport.testing import mcp_handler


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TinyServer:
    """An MCP server on the server end of an in-memory pair: ``mcp_handler`` routes, replies sent back."""

    def __init__(self, transport: InMemoryTransport, routes: Mapping[str, Any] | None = None) -> None:
        self.transport = transport
        self.handler = mcp_handler(
            {
                "tools/list": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]},
                "tools/call": lambda params: {"content": [{"type": "text", "text": str(params.get("arguments"))}]},
                **(routes or {}),
            }
        )
        self.received: list[TransportMessage] = []
        self._ids = itertools.count(1)
        self._asks: dict[str, asyncio.Future[TransportMessage]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TinyServer:
        self._task = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    def requests(self, method: str) -> list[JSONRPCRequest]:
        return [m for m in self.received if isinstance(m, JSONRPCRequest) and m.method == method]

    async def ask(self, method: str, params: dict[str, Any] | None = None) -> TransportMessage:
        """Send the client a request and wait (bounded) for its answer."""
        request_id = f"srv-{next(self._ids)}"
        future: asyncio.Future[TransportMessage] = asyncio.get_running_loop().create_future()
        self._asks[request_id] = future
        await self.transport.send(make_request(request_id, method, params))
        return await asyncio.wait_for(future, 2.0)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.transport.receive()
            except ConnectionClosedError:
                return
            self.received.append(message)
            if isinstance(message, JSONRPCResponse | JSONRPCError):
                waiter = self._asks.pop(str(message.id), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
                continue
            reply = await self.handler(message)
            if not isinstance(message, JSONRPCRequest) or reply is None:
                continue
            if isinstance(reply, MCPError):
                out: TransportMessage = error_response(message.id, reply.code, reply.error_message, reply.data)
            elif isinstance(reply, JSONRPCResponse | JSONRPCError):
                out = reply
            elif isinstance(reply, BaseModel):
                out = make_response(message.id, reply.model_dump(mode="json", by_alias=True, exclude_none=True))
            else:
                out = make_response(message.id, dict(reply))
            with contextlib.suppress(ConnectionClosedError):
                await self.transport.send(out)


class ScriptedWire:
    """A transport whose ``send`` fails while ``failing`` is set, can be held at a gate, and counts what it saw."""

    transport_type = "scripted"

    def __init__(self) -> None:
        self.failing: TransportError | None = None
        self.gate: asyncio.Event | None = None
        self.sent: list[TransportMessage] = []
        self.attempts = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.inbox: asyncio.Queue[TransportMessage | BaseException] = asyncio.Queue()
        self.closed = False
        self.session_id = "0123456789abcdef-full-session-id"

    async def send(self, message: TransportMessage) -> None:
        self.attempts += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.closed:
                raise ConnectionClosedError("scripted wire closed")
            if self.failing is not None:
                raise self.failing
            self.sent.append(message)
        finally:
            self.in_flight -= 1

    async def receive(self) -> TransportMessage:
        item = await self.inbox.get()
        if isinstance(item, BaseException):
            if isinstance(item, ConnectionClosedError) and not item.request_ids:
                self.inbox.put_nowait(item)
            raise item
        return item

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(ConnectionClosedError("scripted wire closed"))

    def is_connected(self) -> bool:
        return not self.closed


async def wait_until(predicate: Callable[[], object], what: str = "condition", limit: float = 2.0) -> None:
    """Yield to the loop until ``predicate()`` holds (bounded)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)

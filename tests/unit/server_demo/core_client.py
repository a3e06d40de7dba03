"""A scripted in-memory MCP client for the server core's tests."""

from __future__ import annotations

import asyncio
from typing import Any

from pyodide_transport.memory import InMemoryTransport
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    TransportMessage,
    make_notification,
    make_request,
    make_response,
)

MODERN = "2026-07-28"


def modern_meta(**caps: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }


class MemoryClient:
    """A tiny scripted MCP client: send requests, collect everything else the server sends."""

    def __init__(self, transport: InMemoryTransport) -> None:
        self.transport = transport
        self.notifications: list[JSONRPCNotification] = []
        self.server_requests: list[JSONRPCRequest] = []
        self._next = 0
        self.answer: Any = None  # callable(JSONRPCRequest) -> dict result, for server->client requests

    async def send(self, message: TransportMessage) -> None:
        await self.transport.send(message)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> JSONRPCResponse | JSONRPCError:
        self._next += 1
        rid = self._next
        await self.transport.send(make_request(rid, method, params))
        return await self.wait_response(rid)

    async def wait_response(self, rid: Any) -> JSONRPCResponse | JSONRPCError:
        async with asyncio.timeout(10):
            while True:
                msg = await self.transport.receive()
                if isinstance(msg, JSONRPCNotification):
                    self.notifications.append(msg)
                elif isinstance(msg, JSONRPCRequest):
                    self.server_requests.append(msg)
                    if self.answer is not None:
                        await self.transport.send(make_response(msg.id, self.answer(msg)))
                elif msg.id == rid:
                    return msg

    async def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = await self.request(method, params)
        assert isinstance(reply, JSONRPCResponse), reply
        return reply.result

    async def initialize(self, version: str = "2025-11-25", **caps: Any) -> dict[str, Any]:
        result = await self.result(
            "initialize",
            {"protocolVersion": version, "capabilities": caps, "clientInfo": {"name": "t", "version": "1"}},
        )
        await self.send(make_notification("notifications/initialized"))
        return result

    async def next_notification(self, method: str) -> JSONRPCNotification:
        for note in self.notifications:
            if note.method == method:
                self.notifications.remove(note)
                return note
        async with asyncio.timeout(10):
            while True:
                msg = await self.transport.receive()
                if isinstance(msg, JSONRPCNotification) and msg.method == method:
                    return msg
                if isinstance(msg, JSONRPCNotification):
                    self.notifications.append(msg)

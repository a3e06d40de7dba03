"""One long-lived stdio upstream for every sessionless (2026-07-28) request of a gateway upstream.

A 2026-07-28 request has no session, so it cannot have a process of its own for long: starting a
process per request is slow, and it breaks the era's input-required flow — a server that seals its
``requestState`` with a per-process key (the Python SDK's does) rejects the retry when it lands on
another process. So the sessionless requests of a stdio upstream share one process; the id and
token rewriting that keeps several browsers apart on it is :class:`~server_demo.gateway_core.SharedCore`'s.

The process starts with the first request, is replaced after it dies (its in-flight requests are
answered with an error naming the upstream), and stops after ``idle`` seconds without requests.
Its policy (allow/deny, rate) and breaker are the upstream's, shared by all its sessionless callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import mcp_types as mt

from pyodide_transport.errors import ConnectionClosedError, TransportError
from pyodide_transport.messages import JSONRPCError, JSONRPCRequest, JSONRPCResponse, RequestId, TransportMessage
from pyodide_transport.transport import Transport

from .core import MessageSink
from .gateway_core import SharedCall, SharedCore, ToUpstream

if TYPE_CHECKING:
    from .gateway import Upstream

__all__ = ["SharedRequest", "SharedUpstream"]

logger = logging.getLogger("server_demo.gateway")


class SharedUpstream:
    """The shared connection of one upstream's sessionless requests; its id book is a :class:`SharedCore`."""

    def __init__(self, upstream: Upstream, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self.clock = clock
        self.last_used = clock()
        self.core: SharedCore[MessageSink] = SharedCore(upstream.config.name)
        self._transport: Transport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._open_lock = asyncio.Lock()

    @property
    def in_flight(self) -> int:
        """Requests sent upstream and not answered yet."""
        return self.core.in_flight

    async def _connection(self) -> Transport:
        async with self._open_lock:
            if self._transport is None:
                self._transport = self.upstream.open({})  # no browser headers: the connection is everyone's
                self.upstream.live += 1
                self._reader = asyncio.create_task(self._read(self._transport))
            return self._transport

    async def start(self, request: JSONRPCRequest, sink: MessageSink) -> str:
        """Send ``request`` upstream under a gateway id (returned); its answer goes to ``sink``.

        Raises:
            TransportError: The upstream refused it (policy, breaker, process limit) or is gone.
        """
        gateway_id, rewritten = self.core.start(sink, request)
        self.last_used = self.clock()
        try:
            transport = await self._connection()
            await transport.send(rewritten)
        except TransportError:
            self.core.forget(gateway_id)
            raise
        return gateway_id

    async def cancel(self, gateway_id: str, reason: str) -> None:
        """Forget a request whose caller went away, and tell the upstream (if it is still running there)."""
        action = self.core.cancel(gateway_id, reason)
        self.last_used = self.clock()
        if action is not None and self._transport is not None:
            with contextlib.suppress(TransportError):
                await self._transport.send(action.message)

    async def _read(self, transport: Transport) -> None:
        while True:
            try:
                message = await transport.receive()
            except TransportError as exc:
                if exc.request_ids:  # those requests are lost; the connection goes on
                    await self._fail(self.core.lost(exc.request_ids), exc)
                    continue
                await self._ended(transport, exc)
                return
            for action in self.core.from_upstream(message):
                if isinstance(action, ToUpstream):
                    with contextlib.suppress(TransportError):
                        await transport.send(action.message)
                else:
                    with contextlib.suppress(ConnectionClosedError):
                        await action.owner(action.message, action.related)

    def error_for(self, request_id: RequestId, exc: TransportError) -> JSONRPCError:
        """The caller's error for a request this upstream refused or failed (the gateway's wording)."""
        from .gateway import _error_for  # the gateway imports this module

        return _error_for(request_id, exc, self.upstream.config)

    async def _fail(self, calls: list[SharedCall[MessageSink]], exc: TransportError) -> None:
        for call in calls:
            with contextlib.suppress(ConnectionClosedError):
                await call.owner(self.error_for(call.browser_id, exc), call.browser_id)

    async def _ended(self, transport: Transport, exc: TransportError) -> None:
        """The process died: answer everything in flight; the next request starts a new one."""
        if self._transport is not transport:
            return  # a connection already replaced or being closed: its reader was cancelled
        logger.warning("shared upstream %s ended: %s", self.upstream.config.name, exc)
        await self._drop_connection()
        await self._fail(self.core.lost(), exc)

    async def _drop_connection(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            self.upstream.live -= 1
            with contextlib.suppress(TransportError):
                await transport.close()

    async def stop_if_idle(self, idle: float) -> None:
        """Stop the process when nothing is in flight and nothing came for ``idle`` seconds."""
        if self._transport is not None and not self.core.in_flight and self.clock() - self.last_used > idle:
            await self.close()

    async def close(self) -> None:
        """Stop the process (the next request starts another); requests still in flight get an error.

        The connection is detached at once, so a request arriving meanwhile starts a new process
        instead of riding the one being stopped.
        """
        transport, self._transport = self._transport, None
        reader, self._reader = self._reader, None
        lost = self.core.lost() if transport is not None else []
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if transport is not None:
            self.upstream.live -= 1
            with contextlib.suppress(TransportError):
                await transport.close()
        await self._fail(lost, ConnectionClosedError(f"upstream {self.upstream.config.name!r} stopped"))


class SharedRequest:
    """The ``SessionCore`` behind one sessionless request: it rides the upstream's :class:`SharedUpstream`."""

    def __init__(self, shared: SharedUpstream, sink: MessageSink) -> None:
        self.shared = shared
        self.protocol_version: str | None = None
        self.client_info: mt.Implementation | None = None
        self.client_capabilities = mt.ClientCapabilities()
        self._sink = sink
        self._gateway_id: str | None = None
        self._answered = False

    @property
    def active_requests(self) -> int:
        """1 while the request runs upstream."""
        return 0 if self._gateway_id is None or self._answered else 1

    async def _to_browser(self, message: TransportMessage, related: RequestId | None) -> None:
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self._answered = True
        await self._sink(message, related)

    async def handle(self, message: TransportMessage) -> None:
        """Send the request upstream (a refused one is answered at once); anything else is ignored."""
        if not isinstance(message, JSONRPCRequest):
            return
        try:
            self._gateway_id = await self.shared.start(message, self._to_browser)
        except TransportError as exc:
            self._answered = True
            await self._sink(self.shared.error_for(message.id, exc), message.id)

    async def close(self) -> None:
        """The response stream ended: if the answer has not come, the browser cancelled; tell the upstream."""
        if self._gateway_id is not None and not self._answered:
            await self.shared.cancel(self._gateway_id, "the client closed the request's stream")

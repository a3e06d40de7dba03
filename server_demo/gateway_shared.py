"""One long-lived stdio upstream for every sessionless (2026-07-28) request of a gateway upstream.

A 2026-07-28 request has no session, so it cannot have a process of its own for long: starting a
process per request is slow, and it breaks the era's input-required flow — a server that seals its
``requestState`` with a per-process key (the Python SDK's does) rejects the retry when it lands on
another process. So the sessionless requests of a stdio upstream share one process, and since
several browsers now talk to it at once, everything that could cross between them is rewritten:

* each request goes upstream with a gateway id (``gw-N``) and its answer comes back with the
  browser's id; a ``progressToken`` becomes the gateway id too, and progress comes back with the
  browser's token;
* closing a request's response stream (the era's cancellation) sends ``notifications/cancelled``
  upstream with the gateway id;
* a notification that names no request (a log message) reaches a browser only when exactly one
  request is in flight, so it cannot be the wrong one; otherwise it is dropped (and counted in the
  debug log). A server-to-client request (which this era does not use) is refused upstream.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as mt

from pyodide_transport.errors import ConnectionClosedError, TransportError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    error_response,
)
from pyodide_transport.transport import Transport

from .core import MessageSink

if TYPE_CHECKING:
    from .gateway import Upstream

__all__ = ["SharedRequest", "SharedUpstream"]

logger = logging.getLogger("server_demo.gateway")


@dataclass
class _Call:
    """One browser request on the shared connection."""

    browser_id: RequestId
    sink: MessageSink
    token: str | int | None  # the browser's progress token, if it sent one


class SharedUpstream:
    """The shared connection of one upstream's sessionless requests (see the module docstring)."""

    def __init__(self, upstream: Upstream, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self.clock = clock
        self.last_used = clock()
        self.dropped = 0  # notifications that named no request while several were in flight
        self._transport: Transport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._calls: dict[str, _Call] = {}
        self._next = 0
        self._open_lock = asyncio.Lock()

    @property
    def in_flight(self) -> int:
        """Requests sent upstream and not answered yet."""
        return len(self._calls)

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
        self._next += 1
        gateway_id = f"gw-{self._next}"
        params: dict[str, Any] = dict(request.params or {})
        meta = params.get("_meta")
        token: str | int | None = None
        if isinstance(meta, dict) and "progressToken" in meta:
            raw = meta["progressToken"]
            token = raw if isinstance(raw, str | int) and not isinstance(raw, bool) else None
            params["_meta"] = {**meta, "progressToken": gateway_id}
        self._calls[gateway_id] = _Call(request.id, sink, token)
        self.last_used = self.clock()
        try:
            transport = await self._connection()
            await transport.send(JSONRPCRequest(jsonrpc="2.0", id=gateway_id, method=request.method, params=params))
        except TransportError:
            self._calls.pop(gateway_id, None)
            raise
        return gateway_id

    async def cancel(self, gateway_id: str, reason: str) -> None:
        """Forget a request whose browser went away, and tell the upstream (if it is still running there)."""
        if self._calls.pop(gateway_id, None) is None or self._transport is None:
            return
        self.last_used = self.clock()
        note = JSONRPCNotification(
            jsonrpc="2.0", method="notifications/cancelled", params={"requestId": gateway_id, "reason": reason}
        )
        with contextlib.suppress(TransportError):
            await self._transport.send(note)

    async def _read(self, transport: Transport) -> None:
        while True:
            try:
                message = await transport.receive()
            except TransportError as exc:
                lost = [self._calls.pop(i) for i in (exc.request_ids or ()) if isinstance(i, str) and i in self._calls]
                if exc.request_ids:
                    for call in lost:
                        await self._fail(call, exc)
                    continue
                await self._ended(transport, exc)
                return
            await self._route(transport, message)

    async def _route(self, transport: Transport, message: TransportMessage) -> None:
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            call = self._calls.pop(str(message.id), None) if message.id is not None else None
            if call is not None:
                await self._deliver(call, message.model_copy(update={"id": call.browser_id}))
            return
        if isinstance(message, JSONRPCRequest):  # this era asks inside results; nobody can answer this
            refusal = error_response(message.id, mt.METHOD_NOT_FOUND, "no client can be asked on a shared upstream")
            with contextlib.suppress(TransportError):
                await transport.send(refusal)
            return
        assert isinstance(message, JSONRPCNotification)
        params = message.params or {}
        if message.method == "notifications/progress":
            call = self._calls.get(str(params.get("progressToken")))
            if call is not None and call.token is not None:
                restored = {**params, "progressToken": call.token}
                await self._deliver(call, message.model_copy(update={"params": restored}))
            return
        if len(self._calls) == 1:
            await self._deliver(next(iter(self._calls.values())), message)
        else:
            self.dropped += 1
            logger.debug("upstream %s: a %s named no request; dropped", self.upstream.config.name, message.method)

    async def _deliver(self, call: _Call, message: TransportMessage) -> None:
        with contextlib.suppress(ConnectionClosedError):
            await call.sink(message, call.browser_id)

    def error_for(self, request_id: RequestId, exc: TransportError) -> JSONRPCError:
        """The browser's error for a request this upstream refused or failed (the gateway's wording)."""
        from .gateway import _error_for  # the gateway imports this module

        return _error_for(request_id, exc, self.upstream.config)

    async def _fail(self, call: _Call, exc: TransportError) -> None:
        await self._deliver(call, self.error_for(call.browser_id, exc))

    async def _ended(self, transport: Transport, exc: TransportError) -> None:
        """The process died: answer everything in flight; the next request starts a new one."""
        logger.warning("shared upstream %s ended: %s", self.upstream.config.name, exc)
        if self._transport is transport:
            await self._drop_connection()
        calls, self._calls = self._calls, {}
        for call in calls.values():
            await self._fail(call, exc)

    async def _drop_connection(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            self.upstream.live -= 1
            with contextlib.suppress(TransportError):
                await transport.close()

    async def stop_if_idle(self, idle: float) -> None:
        """Stop the process when nothing is in flight and nothing came for ``idle`` seconds."""
        if self._transport is not None and not self._calls and self.clock() - self.last_used > idle:
            await self.close()

    async def close(self) -> None:
        """Stop the process (the next request starts another)."""
        reader, self._reader = self._reader, None
        await self._drop_connection()
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader


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

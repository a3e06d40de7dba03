"""The queue front door: ``/mcp``, ``/mcp/json``, ``/mcp/stateless`` and ``/ws`` served by a pool of queue workers.

``python -m server_demo --backend redis-queue --redis URL`` puts a :class:`QueueBackend` in the app's
config. Each HTTP session (and each 2026-07-28 request) gets a :class:`QueueSession` instead of the
in-process core, in the gateway's ``ForwardingSession`` pattern: browser messages go on the queue
through a :class:`~server_demo.queue.QueueClientTransport` of their own (a client id per session),
and what the workers write comes back to the session's sink with the request it belongs to. Every
session of the process shares one :class:`~server_demo.queue.QueueLink`: one Redis pool, one
batched writer, one response stream (``mcp.responses.<front door id>``) demultiplexed by client id.
A WebSocket is bridged to a transport of its own (:func:`pyodide_transport.middleware.bridge`).

The HTTP rules (sessions, SSE, resumption, header checks) stay the front door's; the MCP semantics
are the workers'. When the queue cannot take a request (Redis unreachable), the browser's request is
answered with a JSON-RPC error that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import mcp_types as mt
from mcp_types.jsonrpc import INTERNAL_ERROR
from pydantic import ValidationError
from redis import exceptions as redis_errors

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
from pyodide_transport.middleware import bridge

from .config import SecurityConfig, StreamableHttpServerConfig
from .core import MessageSink, Server
from .http import SessionCore, StreamableHttpEndpoint
from .queue import QueueClientTransport, QueueLink, redis_failure
from .websocket import WebSocketServerTransport, websocket_endpoint

__all__ = ["QUEUE_UNAVAILABLE", "QueueBackend", "QueueHttpEndpoint", "QueueSession"]

logger = logging.getLogger("server_demo.queue_backend")

QUEUE_UNAVAILABLE = INTERNAL_ERROR
"""The JSON-RPC code a browser request gets when the queue could not take it."""


class QueueSession:
    """Stands in for the demo core behind one browser session: forwards both ways through the queue.

    A response goes to the sink with its id; a progress notification with the request that sent its
    token; anything else (logs, sampling/elicitation requests) with the newest request still running,
    else ``None`` (the session's GET stream).
    """

    def __init__(
        self,
        link: QueueLink,
        sink: MessageSink,
        *,
        back_channel: bool,
        protocol_version: str | None = None,
        on_request_done: Callable[[RequestId], None] | None = None,
    ) -> None:
        self.transport = QueueClientTransport(link, protocol_version=protocol_version, back_channel=back_channel)
        self.protocol_version = protocol_version
        self._client_info: mt.Implementation | None = None
        self._client_capabilities = mt.ClientCapabilities()
        self._sink = sink
        self._on_request_done = on_request_done
        self._pending: dict[RequestId, None] = {}  # insertion-ordered: the newest is last
        self._tokens: dict[str | int, RequestId] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def active_requests(self) -> int:
        """Browser requests the workers have not answered yet."""
        return len(self._pending)

    @property
    def client_info(self) -> mt.Implementation | None:
        """The client's ``clientInfo`` (set by a restore from a session store too: the envelopes then carry it)."""
        return self._client_info

    @client_info.setter
    def client_info(self, info: mt.Implementation | None) -> None:
        self._client_info = info
        if info is not None:
            self.transport.core.adopt(client_info=info.model_dump(mode="json", by_alias=True, exclude_none=True))

    @property
    def client_capabilities(self) -> mt.ClientCapabilities:
        """The client's declared capabilities (a restore sets them too)."""
        return self._client_capabilities

    @client_capabilities.setter
    def client_capabilities(self, capabilities: mt.ClientCapabilities) -> None:
        self._client_capabilities = capabilities
        self.transport.core.adopt(capabilities=capabilities.model_dump(mode="json", by_alias=True, exclude_none=True))

    async def handle(self, message: TransportMessage) -> None:
        """Put one browser message on the queue (a request it cannot take is answered at once)."""
        if self.closed:
            raise ConnectionClosedError("session is closed")
        if isinstance(message, JSONRPCRequest):
            self._pending[message.id] = None
            params = message.params or {}
            meta = params.get("_meta")
            token = meta.get("progressToken") if isinstance(meta, dict) else None
            if isinstance(token, str | int) and not isinstance(token, bool):
                self._tokens[token] = message.id
            if message.method == "initialize":
                self._adopt_client(params)
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            cancelled = (message.params or {}).get("requestId")
            if isinstance(cancelled, str | int) and cancelled in self._pending:
                self._finish(cancelled)
                if self._on_request_done is not None:
                    self._on_request_done(cancelled)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        try:
            await self.transport.send(message)
        except TransportError as exc:
            if isinstance(message, JSONRPCRequest) and message.id in self._pending:
                self._finish(message.id)
                with contextlib.suppress(ConnectionClosedError):
                    text = f"the worker queue could not take the request: {exc}"
                    await self._sink(error_response(message.id, QUEUE_UNAVAILABLE, text), message.id)
            else:
                logger.info("dropped a %s the queue could not take: %s", type(message).__name__, exc)

    def _adopt_client(self, params: Mapping[str, Any]) -> None:
        try:  # the ClientCore reads the same from the initialize itself: keep only the models here
            self._client_capabilities = mt.ClientCapabilities.model_validate(params.get("capabilities") or {})
            info = params.get("clientInfo")
            self._client_info = mt.Implementation.model_validate(info) if isinstance(info, dict) else None
        except ValidationError:
            pass  # the worker answers the bad initialize; nothing to remember

    def _finish(self, request_id: RequestId) -> None:
        self._pending.pop(request_id, None)
        for token in [t for t, rid in self._tokens.items() if rid == request_id]:
            del self._tokens[token]

    def _related(self, message: TransportMessage) -> RequestId | None:
        if isinstance(message, JSONRPCNotification) and message.method == "notifications/progress":
            token = (message.params or {}).get("progressToken")
            if isinstance(token, str | int) and token in self._tokens:
                return self._tokens[token]
        return next(reversed(self._pending)) if self._pending else None

    async def _read(self) -> None:
        while True:
            try:
                message = await self.transport.receive()
            except ConnectionClosedError as exc:
                for request_id in list(self._pending):
                    self._finish(request_id)
                    with contextlib.suppress(ConnectionClosedError):
                        text = f"the worker queue is gone: {exc}"
                        await self._sink(error_response(request_id, QUEUE_UNAVAILABLE, text), request_id)
                return
            except TransportError as exc:  # one malformed entry: reported, reading goes on
                logger.warning("session %s: %s", self.transport.client_id, exc)
                continue
            if isinstance(message, JSONRPCResponse | JSONRPCError):
                if message.id is None or message.id not in self._pending:
                    continue  # an answer to a request already cancelled or failed
                if isinstance(message, JSONRPCResponse) and self.protocol_version is None:
                    version = message.result.get("protocolVersion")
                    if isinstance(version, str):
                        self.protocol_version = version
                related: RequestId | None = message.id
                self._finish(message.id)
            else:
                related = self._related(message)
            try:
                await self._sink(message, related)
            except ConnectionClosedError as exc:
                if isinstance(message, JSONRPCRequest):  # the browser cannot be asked: tell the worker
                    with contextlib.suppress(TransportError):
                        await self.transport.send(
                            error_response(message.id, INTERNAL_ERROR, f"client unreachable: {exc}")
                        )

    async def close(self) -> None:
        """End the session: the workers drop theirs, the reader stops."""
        if self.closed:
            return
        self.closed = True
        await self.transport.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader


class QueueHttpEndpoint(StreamableHttpEndpoint):
    """A Streamable HTTP endpoint whose sessions are :class:`QueueSession` s on the backend's link."""

    def __init__(self, server: Server, config: StreamableHttpServerConfig, backend: QueueBackend) -> None:
        super().__init__(server, config)
        self.backend = backend

    def new_core(
        self,
        sink: MessageSink,
        *,
        back_channel: bool,
        protocol_version: str | None = None,
        on_request_done: Callable[[RequestId], None] | None = None,
        on_close_stream: Callable[[RequestId], None] | None = None,
        headers: Mapping[str, str],
        sessionless: bool = False,
    ) -> SessionCore:
        """A :class:`QueueSession` (the ``headers`` stay here: workers see MCP messages only)."""
        return QueueSession(
            self.backend.link,
            sink,
            back_channel=back_channel,
            protocol_version=protocol_version,
            on_request_done=on_request_done,
        )


class QueueBackend:
    """What ``--backend redis-queue`` plugs into :func:`~server_demo.app.create_app`.

    Args:
        redis_url: The Redis of the worker pool.
        batching: Batch the front door's stream writes.
        **link_options: Those of :class:`~server_demo.queue.QueueLink`.
    """

    def __init__(self, redis_url: str, *, batching: bool = True, **link_options: Any) -> None:
        self.link = QueueLink.from_url(
            redis_url, inbox=f"frontdoor-{uuid.uuid4().hex[:12]}", batching=batching, **link_options
        )
        self._bridges: set[asyncio.Task[None]] = set()

    def http_endpoint(self, server: Server, config: StreamableHttpServerConfig) -> StreamableHttpEndpoint:
        """One of ``/mcp``, ``/mcp/json``, ``/mcp/stateless``."""
        return QueueHttpEndpoint(server, config, self)

    def websocket(self, server: Server, security: SecurityConfig, max_message_bytes: int) -> Any:
        """``/ws``: each connection bridged to a queue transport of its own."""

        async def serve(socket: WebSocketServerTransport) -> None:
            transport = QueueClientTransport(self.link)
            await bridge(socket, transport, logger=logger, names=("websocket", "queue"))

        return websocket_endpoint(server, security, max_message_bytes, serve=serve)

    async def start(self) -> None:
        """Check Redis and start reading the front door's response stream.

        Raises:
            NetworkError: Redis is unreachable.
        """
        try:
            await self.link.redis.ping()
        except (redis_errors.RedisError, OSError) as exc:
            raise redis_failure(exc, "PING") from None
        self.link.start()

    async def close(self) -> None:
        """Close every session's transport and the link."""
        await self.link.close()

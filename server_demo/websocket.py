"""WebSocket at ``/ws``: subprotocol ``mcp``, one JSON-RPC message per text frame.

:class:`WebSocketServerTransport` adapts a Starlette WebSocket to the
:class:`~pyodide_transport.transport.Transport` protocol, so the connection is
served by the same :func:`~server_demo.core.serve_transport` loop as the
in-memory and stdio transports. Bad input never takes the server down:

* invalid JSON gets a JSON-RPC parse error (-32700, id null) and the connection stays open;
* valid JSON that is not a JSON-RPC message gets -32600 and the connection stays open;
* a binary frame closes the connection with 1003 (unsupported data) and a reason;
* a frame over the size limit closes it with 1009 (message too big).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from pyodide_transport.errors import ConnectionClosedError
from pyodide_transport.messages import JSONRPCError, TransportMessage, decode_or_error, encode_message

from .config import DEFAULT_MAX_MESSAGE_BYTES, SecurityConfig
from .core import Server, serve_transport
from .http_rules import check_security

__all__ = ["SUBPROTOCOL", "WebSocketServerTransport", "websocket_endpoint"]

logger = logging.getLogger("server_demo.websocket")

SUBPROTOCOL = "mcp"


class WebSocketServerTransport:
    """One accepted WebSocket connection as a :class:`~pyodide_transport.transport.Transport`."""

    transport_type = "websocket"

    def __init__(self, websocket: WebSocket, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.websocket = websocket
        self.max_message_bytes = max_message_bytes
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def send(self, message: TransportMessage) -> None:
        """Send one message as one text frame."""
        if self._closed:
            raise ConnectionClosedError("websocket is closed")
        try:
            async with self._send_lock:
                await self.websocket.send_text(encode_message(message))
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            self._closed = True
            raise ConnectionClosedError(f"websocket closed while sending: {exc}") from None

    async def receive(self) -> TransportMessage:
        """Return the next valid message; answer or close on bad frames."""
        while True:
            if self._closed:
                raise ConnectionClosedError("websocket is closed")
            try:
                frame = await self.websocket.receive()
            except (RuntimeError, OSError) as exc:
                self._closed = True
                raise ConnectionClosedError(str(exc)) from None
            if frame["type"] == "websocket.disconnect":
                self._closed = True
                raise ConnectionClosedError("client closed the websocket", code=frame.get("code"))
            text = frame.get("text")
            if text is None:
                await self._close(1003, "binary frames are not supported: send JSON-RPC as text frames")
                raise ConnectionClosedError("client sent a binary frame", code=1003)
            if len(text.encode()) > self.max_message_bytes:
                await self._close(1009, f"message larger than {self.max_message_bytes} bytes")
                raise ConnectionClosedError("client sent an oversized frame", code=1009)
            decoded = decode_or_error(text, allow_batch=False, what="frame")
            if isinstance(decoded, JSONRPCError):
                await self.send(decoded)
                continue
            messages, _ = decoded
            return messages[0]  # no batches here: always exactly one

    async def _close(self, code: int, reason: str) -> None:
        self._closed = True
        if self.websocket.application_state == WebSocketState.CONNECTED:
            try:
                await self.websocket.close(code=code, reason=reason)
            except (RuntimeError, OSError):
                logger.debug("close after a bad frame failed", exc_info=True)

    async def close(self) -> None:
        """Close normally (1000)."""
        if not self._closed:
            await self._close(1000, "")

    def is_connected(self) -> bool:
        """Whether messages can still be sent."""
        return not self._closed


def websocket_endpoint(server: Server, security: SecurityConfig, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):  # type: ignore[no-untyped-def]
    """Build the Starlette WebSocket endpoint serving ``server``."""

    async def endpoint(websocket: WebSocket) -> None:
        rejected = check_security(websocket.headers.get("host"), websocket.headers.get("origin"), security)
        if rejected is not None:
            await websocket.close(code=1008, reason=rejected.message)  # before accept: the handshake gets 403
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await serve_transport(server, WebSocketServerTransport(websocket, max_message_bytes))

    return endpoint

"""WebSocket at ``/ws``: subprotocol ``mcp``, one JSON-RPC message per text frame.

:class:`WebSocketServerTransport` adapts a Starlette WebSocket to the
:class:`~pyodide_transport.transport.Transport` protocol, so the connection is
served by the same :func:`~server_demo.core.serve_transport` loop as the
in-memory and stdio transports. Bad input never takes the server down:

* invalid JSON gets a JSON-RPC parse error (-32700, id null) and the connection stays open;
* valid JSON that is not a JSON-RPC message gets -32600 and the connection stays open;
* a binary frame closes the connection with 1003 (unsupported data) and a reason;
* a frame over the size limit closes it with 1009 (message too big).

A :class:`FrameCodec` turns every frame into something else on the wire and back: ``/ws/encrypted``
serves the same core with each frame an encrypted envelope
(:class:`~pyodide_transport.encrypted.EnvelopeCodec`, role server). There a frame that is no envelope
or does not open (plaintext, tampered, replayed, another key) closes the connection with 1008 (policy
violation) and a reason; other connections are not affected. ``on_wire`` sees every raw frame, in
(``"in"``) and out (``"out"``), before decoding and after encoding (a test hook).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from pyodide_transport.errors import ConnectionClosedError, EnvelopeError
from pyodide_transport.messages import JSONRPCError, TransportMessage, decode_or_error, encode_message

from .config import DEFAULT_MAX_MESSAGE_BYTES, SecurityConfig
from .core import Server, serve_transport
from .http_rules import check_security

__all__ = ["SUBPROTOCOL", "FrameCodec", "WebSocketServerTransport", "WireTap", "websocket_endpoint"]

logger = logging.getLogger("server_demo.websocket")

SUBPROTOCOL = "mcp"

_MAX_CLOSE_REASON = 123  # RFC 6455: a close reason is at most 123 bytes of UTF-8

WireTap = Callable[[str, str], None]
"""Called with ``("in" | "out", frame)`` for every raw frame of a connection."""


class FrameCodec(Protocol):
    """Turns one connection's JSON-RPC texts into wire frames and back (e.g. encrypted envelopes)."""

    async def seal_text(self, text: str) -> str:
        """The frame carrying one JSON-RPC message's text."""
        ...

    async def open_text(self, frame: str | bytes) -> bytes:
        """The JSON-RPC text inside one frame; raise ``EnvelopeError`` to refuse it."""
        ...


def _close_reason(text: str) -> str:
    """``text`` cut to a valid WebSocket close reason."""
    data = text.encode()[:_MAX_CLOSE_REASON]
    return data.decode("utf-8", "ignore")


class WebSocketServerTransport:
    """One accepted WebSocket connection as a :class:`~pyodide_transport.transport.Transport`."""

    transport_type = "websocket"

    def __init__(
        self,
        websocket: WebSocket,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        *,
        codec: FrameCodec | None = None,
        on_wire: WireTap | None = None,
    ) -> None:
        self.websocket = websocket
        self.max_message_bytes = max_message_bytes
        self.codec = codec
        self.on_wire = on_wire
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def send(self, message: TransportMessage) -> None:
        """Send one message as one text frame (encoded by the codec, in order, when there is one)."""
        if self._closed:
            raise ConnectionClosedError("websocket is closed")
        try:
            async with self._send_lock:
                text = encode_message(message)
                if self.codec is not None:
                    text = await self.codec.seal_text(text)
                if self.on_wire is not None:
                    self.on_wire("out", text)
                await self.websocket.send_text(text)
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
            if self.on_wire is not None:
                self.on_wire("in", text)
            payload: str | bytes = text
            if self.codec is not None:
                try:
                    payload = await self.codec.open_text(text)
                except EnvelopeError as exc:
                    logger.info("closing a WebSocket that sent a bad envelope: %s", exc)
                    await self._close(1008, _close_reason(f"encrypted endpoint: {exc}"))
                    raise ConnectionClosedError(f"client sent a bad envelope: {exc}", code=1008) from None
            decoded = decode_or_error(payload, allow_batch=False, what="frame")
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


def websocket_endpoint(  # type: ignore[no-untyped-def]
    server: Server,
    security: SecurityConfig,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    *,
    codec: Callable[[], FrameCodec] | None = None,
    on_wire: WireTap | None = None,
    serve: Callable[[WebSocketServerTransport], Awaitable[None]] | None = None,
):
    """Build the Starlette WebSocket endpoint serving ``server``.

    Args:
        server: The core to serve.
        security: Host and Origin rules of the upgrade.
        max_message_bytes: One frame's limit (on the wire).
        codec: Makes each connection's :class:`FrameCodec` (``None``: frames are plain JSON-RPC).
        on_wire: Sees every raw frame (see :data:`WireTap`).
        serve: Serves each accepted connection instead of ``server`` (the gateway forwards it upstream).
    """

    async def endpoint(websocket: WebSocket) -> None:
        rejected = check_security(websocket.headers.get("host"), websocket.headers.get("origin"), security)
        if rejected is not None:
            await websocket.close(code=1008, reason=rejected.message)  # before accept: the handshake gets 403
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        frames = codec() if codec is not None else None
        transport = WebSocketServerTransport(websocket, max_message_bytes, codec=frames, on_wire=on_wire)
        if serve is not None:
            await serve(transport)
        else:
            await serve_transport(server, transport)

    return endpoint

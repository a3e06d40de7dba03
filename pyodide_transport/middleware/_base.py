"""What every wrapper shares: the inner transport, pass-through of the rest, and message facts.

A wrapper is a :class:`~pyodide_transport.transport.Transport` around a ``Transport``; it changes
what passes through ``send`` and ``receive`` and nothing else. ``transport_type`` stays the inner
transport's (it names the wire, which a wrapper does not change); :func:`layers` names the stack.
Attributes a wrapper does not have (``session_id``, ``url``, ``param_headers``, ...) come from the
inner transport, so code that looks at them works through any number of wrappers.

Pure: no asyncio, no I/O (the async methods only await the inner transport).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

from ..messages import JSONRPCError, JSONRPCNotification, JSONRPCRequest, RequestId, TransportMessage, encode_message
from ..transport import Transport

__all__ = ["Direction", "Kind", "Middleware", "describe", "layers", "message_size"]

Direction: TypeAlias = Literal["out", "in"]
"""``out``: we send it; ``in``: the peer sent it."""

Kind: TypeAlias = Literal["request", "notification", "response", "error"]
"""What a JSON-RPC message is."""


def describe(message: TransportMessage) -> tuple[Kind, str | None, RequestId | None]:
    """A message's kind, method (``None`` for responses) and id (``None`` for notifications)."""
    if isinstance(message, JSONRPCRequest):
        return "request", message.method, message.id
    if isinstance(message, JSONRPCNotification):
        return "notification", message.method, None
    if isinstance(message, JSONRPCError):
        return "error", None, message.id
    return "response", None, message.id


def message_size(message: TransportMessage) -> int:
    """The size of ``message`` on the wire: bytes of its compact UTF-8 JSON text."""
    return len(encode_message(message).encode("utf-8"))


class Middleware:
    """Base of the wrappers: forwards everything to ``inner``; subclasses override what they change.

    Args:
        inner: The transport that does the work (possibly another wrapper).

    Attributes:
        layer: Short name of the wrapper, for :func:`layers` (``"logging"``, ``"policy"``, ...).
    """

    layer: ClassVar[str] = "middleware"

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.transport_type = inner.transport_type

    async def send(self, message: TransportMessage) -> None:
        """Send through the inner transport."""
        await self.inner.send(message)

    async def receive(self) -> TransportMessage:
        """Receive from the inner transport."""
        return await self.inner.receive()

    async def close(self) -> None:
        """Close the inner transport (idempotent when it is)."""
        await self.inner.close()

    def is_connected(self) -> bool:
        """Whether the inner transport is connected."""
        return self.inner.is_connected()

    def __getattr__(self, name: str) -> Any:
        """Anything else public (a session id, a URL) comes from the inner transport."""
        if name == "inner" or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


def layers(transport: Transport) -> tuple[str, ...]:
    """The wrappers around a transport, outermost first, then its ``transport_type``.

    ``"+".join(layers(t))`` reads like ``"logging+policy+streamable-http"``.
    """
    names: list[str] = []
    current: Any = transport
    while isinstance(current, Middleware):
        names.append(current.layer)
        current = current.inner
    names.append(current.transport_type)
    return tuple(names)

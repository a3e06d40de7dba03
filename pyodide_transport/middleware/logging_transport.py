"""``LoggingTransport``: one structured, redacted record per message and direction.

Each message that passes (or fails to pass) becomes a :class:`LogRecord`: direction, kind,
method, id, size in bytes, and for responses and errors the seconds since their request went the
other way. Records go to a ``logging.Logger`` at INFO (the fields also as ``extra=``, named
``mcp_<field>``, for structured handlers) and/or to a callback (a page's live view).

Nothing secret reaches a record: payloads are left out unless ``payloads=True``, and then pass
through :func:`~pyodide_transport.middleware.redaction.redact` (credential keys, bearer values,
JWTs); the transport's session id appears as an 8-character prefix. Failures appear by their
exception type only, since error texts may quote what a server sent.

Works anywhere: no asyncio, no browser code; the clock is injectable.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, TypeAlias

from ..errors import TransportError
from ..messages import JSONRPCError, RequestId, TransportMessage, message_to_obj
from ..transport import Transport
from ._base import Direction, Middleware, describe, message_size
from .redaction import redact, short_id

__all__ = ["DEFAULT_LOGGER", "LogRecord", "LoggingTransport", "RecordKind"]

DEFAULT_LOGGER: Final = "pyodide_transport.middleware"

RecordKind: TypeAlias = Literal["request", "notification", "response", "error", "failure"]
"""A message's kind, or ``failure``: ``receive`` raised instead of returning one."""

_MAX_OPEN: Final = 1024
"""Requests remembered for matching their responses (the oldest are forgotten beyond it)."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One message in one direction.

    Attributes:
        direction: ``out`` (we sent it) or ``in`` (the peer sent it).
        kind: ``request``, ``notification``, ``response``, ``error``, or ``failure`` (``receive``
            raised: see ``error``).
        method: The method; for responses and errors the method of the request they answer.
        id: The JSON-RPC id (``None`` for notifications and failures).
        size: Bytes of the message's compact JSON (0 for failures).
        elapsed: For responses and errors: seconds since their request went the other way.
        transport: The inner transport's ``transport_type``.
        session: The session id's first 8 characters, when the transport has one.
        code: The JSON-RPC error code of an ``error``.
        error: The exception type, when ``send`` failed or ``receive`` raised.
        request_ids: For a failure: the requests it loses.
        payload: The message as JSON, redacted; only with ``payloads=True``.
    """

    direction: Direction
    kind: RecordKind
    method: str | None
    id: RequestId | None
    size: int
    elapsed: float | None
    transport: str
    session: str | None = None
    code: int | None = None
    error: str | None = None
    request_ids: tuple[RequestId, ...] = ()
    payload: dict[str, Any] | None = None

    def summary(self) -> str:
        """One line: ``→ request tools/call #3 (120 B)`` or ``← response tools/call #3 (88 B, 12.0 ms)``."""
        parts = ["→" if self.direction == "out" else "←", self.kind]
        if self.method:
            parts.append(self.method)
        if self.id is not None:
            parts.append(f"#{self.id}")
        details = [f"{self.size} B"] if self.kind != "failure" else []
        if self.elapsed is not None:
            details.append(f"{self.elapsed * 1000:.1f} ms")
        if self.code is not None:
            details.append(f"code {self.code}")
        if self.error is not None:
            details.append(f"failed: {self.error}")
        if self.request_ids:
            details.append("loses " + ", ".join(f"#{r}" for r in self.request_ids))
        return " ".join(parts) + (f" ({', '.join(details)})" if details else "")


class LoggingTransport(Middleware):
    """Wraps a transport and logs every message both ways (see the module docstring).

    Args:
        inner: The transport that does the work.
        logger: Where records go at INFO. ``None``: the ``pyodide_transport.middleware`` logger,
            unless ``on_record`` is given (then only the callback gets them).
        on_record: Called with each :class:`LogRecord`, inline (keep it quick; what it raises is
            logged and swallowed, never breaks the connection).
        payloads: Include each message's redacted JSON in its record (and log line).
        clock: Monotonic seconds, for ``elapsed``.
    """

    layer = "logging"

    def __init__(
        self,
        inner: Transport,
        *,
        logger: logging.Logger | None = None,
        on_record: Callable[[LogRecord], None] | None = None,
        payloads: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(inner)
        if logger is None and on_record is None:
            logger = logging.getLogger(DEFAULT_LOGGER)
        self._logger = logger
        self._on_record = on_record
        self._payloads = payloads
        self._clock = clock
        self._open: OrderedDict[tuple[Direction, RequestId], tuple[str, float]] = OrderedDict()

    def _wanted(self) -> bool:
        return self._on_record is not None or (self._logger is not None and self._logger.isEnabledFor(logging.INFO))

    def _session(self) -> str | None:
        value = getattr(self.inner, "session_id", None)
        return short_id(value) if isinstance(value, str | int) else None

    def _started(self, direction: Direction, message: TransportMessage, now: float) -> None:
        kind, method, request_id = describe(message)
        if kind == "request" and request_id is not None and method is not None:
            self._open[(direction, request_id)] = (method, now)
            if len(self._open) > _MAX_OPEN:
                self._open.popitem(last=False)

    def _record(self, direction: Direction, message: TransportMessage, now: float, error: str | None) -> LogRecord:
        kind, method, request_id = describe(message)
        elapsed = None
        if kind in ("response", "error") and request_id is not None:
            asker: Direction = "in" if direction == "out" else "out"
            started = self._open.pop((asker, request_id), None)
            if started is not None:
                method, elapsed = started[0], now - started[1]
        return LogRecord(
            direction,
            kind,
            method,
            request_id,
            message_size(message),
            elapsed,
            self.transport_type,
            self._session(),
            message.error.code if isinstance(message, JSONRPCError) else None,
            error,
            (),
            redact(message_to_obj(message)) if self._payloads else None,
        )

    def _emit(self, record: LogRecord) -> None:
        if self._on_record is not None:
            try:
                self._on_record(record)
            except Exception:
                logging.getLogger(DEFAULT_LOGGER).exception("LoggingTransport on_record callback failed")
        logger = self._logger
        if logger is not None and logger.isEnabledFor(logging.INFO):
            extra = {f"mcp_{name}": value for name, value in asdict(record).items()}
            text = record.summary()
            if record.payload is not None:
                text = f"{text} {record.payload}"
            logger.info("%s", text, extra=extra)

    async def send(self, message: TransportMessage) -> None:
        """Send, then record it (with the exception type if sending failed)."""
        if not self._wanted():
            await self.inner.send(message)
            return
        now = self._clock()
        self._started("out", message, now)  # before: its response may be received before send returns
        try:
            await self.inner.send(message)
        except BaseException as exc:
            _, _, request_id = describe(message)
            if request_id is not None:
                self._open.pop(("out", request_id), None)
            self._emit(self._record("out", message, self._clock(), type(exc).__name__))
            raise
        self._emit(self._record("out", message, self._clock(), None))

    async def receive(self) -> TransportMessage:
        """Receive, then record it; a failure of ``receive`` is recorded as kind ``failure``."""
        try:
            message = await self.inner.receive()
        except TransportError as exc:
            for request_id in exc.request_ids:
                self._open.pop(("out", request_id), None)
            if self._wanted():
                self._emit(
                    LogRecord(
                        "in",
                        "failure",
                        None,
                        None,
                        0,
                        None,
                        self.transport_type,
                        self._session(),
                        error=type(exc).__name__,
                        request_ids=tuple(exc.request_ids),
                    )
                )
            raise
        if self._wanted():
            now = self._clock()
            self._started("in", message, now)
            self._emit(self._record("in", message, now, None))
        return message

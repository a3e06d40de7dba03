"""Server-Sent Events (WHATWG ``text/event-stream``) decoding and encoding, sans-I/O.

The decoder is a small state machine with two verbs, in the h11 style:

* ``feed(data)`` takes the next chunk of body bytes (any size, split anywhere)
  and returns the events completed by it;
* ``end()`` says the body is over; an unfinished event is discarded, as the
  WHATWG algorithm requires.

Between calls it exposes what an SSE client must remember across events and
reconnects: :attr:`SSEDecoder.last_event_id` (the id of the last *complete*
event, i.e. one ended by its blank line, even if it carried no data, such as
the MCP "priming" event; an id line of an event cut off before its blank line
does not count, as in WHATWG, or a resumption would skip that event) and
:attr:`SSEDecoder.retry` (the last valid ``retry`` value, in milliseconds).

Lines are split on bytes (CR, LF and CRLF never occur inside a UTF-8
sequence), so a multi-byte character or a CR/LF pair split across two chunks
needs no special case, and the size limit counts real bytes. Each complete
line is then decoded as UTF-8 with replacement characters, which equals
decoding the whole stream at once.

:func:`encode_sse_event` is the inverse, for servers (the demo server) and tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import LocalProtocolError, MessageTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "SSEEvent", "encode_sse_event"]

DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024
"""Default limit for one event's buffered bytes (4 MiB, the official SDKs' body limit)."""

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n?|\n")
_TEXT_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event.

    Attributes:
        data: The ``data`` lines joined by LF (may be empty if a ``data:`` line was empty).
        event: The event type; ``"message"`` when the event named none.
        id: The last event id at dispatch time (WHATWG ``lastEventId``); ``""`` when none was ever set.
    """

    data: str
    event: str = "message"
    id: str = ""


class SSEDecoder:
    """Incremental ``text/event-stream`` decoder.

    Args:
        max_event_size: Most bytes one event may buffer (its ``data`` values
            plus any unterminated line); more raises :class:`MessageTooLargeError`.
        last_event_id: Initial last event id, e.g. the one a resumed stream
            continues from (WHATWG keeps it across reconnects).

    Attributes:
        last_event_id: The id set by the latest valid ``id`` field of a complete event (``""`` = none).
        retry: The latest valid ``retry`` value in milliseconds, or ``None``.
    """

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, last_event_id: str = "") -> None:
        if max_event_size < 1:
            raise ValueError("max_event_size must be positive")
        self.max_event_size = max_event_size
        self.last_event_id = last_event_id
        self._id_buffer = last_event_id  # WHATWG "last event ID buffer": applied when the event completes
        self.retry: int | None = None
        self._buf = bytearray()  # bytes not yet split into lines
        self._scanned = 0  # prefix of _buf known to hold no line end
        self._bom_checked = False
        self._skip_lf = False  # the last chunk ended with CR: a leading LF belongs to it
        self._data: list[str] = []
        self._data_size = 0
        self._event_type = ""
        self._state = "open"  # "open" -> "ended" | "failed"

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Add body bytes; return the events they complete, in order.

        Raises:
            MessageTooLargeError: One event grew past ``max_event_size``
                (the decoder is unusable afterwards).
            LocalProtocolError: Called after ``end()`` or after a failure.
        """
        if self._state != "open":
            raise LocalProtocolError(f"SSE decoder is {self._state}; cannot feed more data")
        buf = self._buf
        buf += data
        if not self._bom_checked:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return []  # could still be a BOM split across chunks
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]
            self._bom_checked = True
        pos = 0
        if self._skip_lf and buf:
            self._skip_lf = False
            if buf[0] == 0x0A:
                pos = 1
        events: list[SSEEvent] = []
        for match in _LINE_END.finditer(buf, max(pos, self._scanned)):
            event = self._line(bytes(buf[pos : match.start()]))
            if event is not None:
                events.append(event)
            pos = match.end()
            if pos == len(buf) and match.group() == b"\r":
                self._skip_lf = True
        del buf[:pos]
        self._scanned = len(buf)
        self._check_size(len(buf))
        return events

    def end(self) -> list[SSEEvent]:
        """Mark the end of the body; an unfinished event is discarded (WHATWG).

        Returns:
            Always an empty list; it exists so that both verbs look alike to callers.
        """
        self._state = "ended"
        self._buf.clear()
        self._data.clear()
        return []

    @property
    def has_partial_event(self) -> bool:
        """Whether bytes of an undispatched event are buffered (a body ending now loses them)."""
        return bool(self._buf or self._data)

    def _check_size(self, pending_line: int) -> None:
        size = self._data_size + pending_line
        if size > self.max_event_size:
            self._state = "failed"
            raise MessageTooLargeError(
                f"SSE event exceeds the limit of {self.max_event_size} bytes "
                f"(at least {size} bytes buffered without an event end)"
            )

    def _line(self, line: bytes) -> SSEEvent | None:
        """Process one complete line; return the event a blank line dispatches."""
        if not line:
            return self._dispatch()
        if line[0] == 0x3A:  # ":" comment
            return None
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
            self._data_size += len(value) + 1
            self._check_size(0)
        elif name == b"event":
            self._event_type = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id_buffer = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit(): ASCII digits, False for b""
            self.retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        self.last_event_id = self._id_buffer
        data, event_type = self._data, self._event_type
        self._data, self._data_size, self._event_type = [], 0, ""
        if not data:
            return None
        return SSEEvent(data="\n".join(data), event=event_type or "message", id=self.last_event_id)


def encode_sse_event(data: str, *, event: str | None = None, id: str | None = None, retry: int | None = None) -> bytes:
    """Encode one event as UTF-8 ``text/event-stream`` bytes, ending with the blank line.

    Line breaks in ``data`` (LF, CR or CRLF) become separate ``data`` lines, so
    the decoder returns ``data`` with every line break as LF.

    Raises:
        LocalProtocolError: ``event`` or ``id`` contains a line break (or ``id`` a NUL),
            or ``retry`` is negative.
    """
    parts: list[str] = []
    if id is not None:
        if "\0" in id or "\n" in id or "\r" in id:
            raise LocalProtocolError("an SSE event id cannot contain NUL, CR or LF")
        parts.append(f"id: {id}\n")
    if event is not None:
        if "\n" in event or "\r" in event:
            raise LocalProtocolError("an SSE event type cannot contain CR or LF")
        parts.append(f"event: {event}\n")
    if retry is not None:
        if retry < 0:
            raise LocalProtocolError("SSE retry must be a non-negative number of milliseconds")
        parts.append(f"retry: {retry}\n")
    if "\n" in data or "\r" in data:
        parts.extend(f"data: {line}\n" for line in _TEXT_LINE_END.split(data))
    else:  # one line: JSON text always is
        parts.append(f"data: {data}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")

"""The network view's model: every HTTP exchange of a connection, and what makes browsers fail (pure Python).

:class:`RecordingHTTPClient` wraps the transport's :class:`~pyodide_transport.transport.HTTPClient`
(in the page, the browser's ``fetch``) and writes each request into a :class:`NetworkLog`: method,
URL, request headers (``Authorization`` redacted), status, the response headers the page can read,
the time to the headers and to the end of the body, and the failure as the transport's typed
error gives it (the explorer's own :func:`~ptsite.settings.describe_error` text). Reading an event
stream, it also tells who listens (:meth:`~ptsite.protocol.ProtocolModel.relate`) which request
each server message came with: the only place the handshake era says so.

:func:`diagnose` names what breaks browser connections: a session id the page cannot read, a 401
whose ``WWW-Authenticate`` is hidden, CORS failures, a refused GET stream, a wrong content type.
No ``js`` here: it unit-tests in CPython with a fake inner client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pyodide_transport.errors import CORSError, NetworkError
from pyodide_transport.sse import SSEDecoder
from pyodide_transport.transport import HTTPClient, HTTPResponse

from .settings import describe_error
from .tracing import TraceEntry, describe

__all__ = [
    "KEY_HEADERS",
    "MAX_EXCHANGES",
    "Diagnosis",
    "Exchange",
    "NetworkLog",
    "RecordingHTTPClient",
    "diagnose",
    "key_headers",
    "redact",
]

MAX_EXCHANGES = 500
"""Exchanges kept; the oldest go first."""

KEY_HEADERS: tuple[str, ...] = (
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "content-type",
    "www-authenticate",
    "access-control-expose-headers",
)
"""The headers that matter for browser clients (``Mcp-Param-*`` too, see :func:`key_headers`)."""

_SPELLING = {
    "mcp-session-id": "Mcp-Session-Id",
    "mcp-protocol-version": "MCP-Protocol-Version",
    "mcp-method": "Mcp-Method",
    "mcp-name": "Mcp-Name",
    "last-event-id": "Last-Event-ID",
    "content-type": "Content-Type",
    "www-authenticate": "WWW-Authenticate",
    "access-control-expose-headers": "Access-Control-Expose-Headers",
}

FailureKind: TypeAlias = Literal["", "cors", "network", "aborted", "body"]
Level: TypeAlias = Literal["error", "warn", "info"]


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with ``Authorization`` (and cookies) hidden: the scheme stays, the secret goes."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in ("authorization", "proxy-authorization"):
            scheme = value.split(" ", 1)[0] if " " in value else ""
            out[name] = f"{scheme} [redacted]".strip()
        elif name.lower() == "cookie":
            out[name] = "[redacted]"
        else:
            out[name] = value
    return out


def _rpc(body: bytes | None) -> tuple[str, str | None, bool]:
    """``(method, id, is_request)`` of a JSON-RPC POST body (``("", None, False)`` if it is none)."""
    if not body:
        return "", None, False
    try:
        message = json.loads(body)
    except ValueError:
        return "", None, False
    if not isinstance(message, dict):
        return "", None, False
    method = message.get("method")
    raw_id = message.get("id")
    msg_id = None if raw_id is None or isinstance(raw_id, bool) else str(raw_id)
    if isinstance(method, str):
        return method, msg_id, msg_id is not None
    if "result" in message or "error" in message:
        return "(response)", msg_id, False
    return "", msg_id, False


@dataclass
class Exchange:
    """One HTTP request and how it went.

    Attributes:
        seq: 1-based, increasing.
        method: ``GET``, ``POST``, ``DELETE``...
        url: The full URL.
        request_headers: As sent, ``Authorization`` redacted.
        rpc_method: The JSON-RPC method of a POST body (``(response)`` for our answers).
        rpc_id: Its id, or the id our answer answers (``None`` for notifications and GETs).
        started: Wall time when it was sent.
        status: The HTTP status (``None`` when no response came).
        response_headers: The response headers the page could read, names lower-cased.
        headers_after: Seconds until the status and headers.
        ended_after: Seconds until the end of the body (``None`` while it streams).
        failure: What went wrong (the explorer's error text), ``""`` if nothing.
        failure_kind: ``cors``, ``network``, ``aborted`` (we stopped it), ``body`` (the body broke off).
        body_bytes: Response body bytes read so far.
        purpose: ``oauth`` requests: what for (``discovery``, ``token``...).
        cross_origin: The URL is on another origin than the page (CORS rules apply).
    """

    seq: int
    method: str
    url: str
    request_headers: dict[str, str]
    rpc_method: str
    rpc_id: str | None
    started: float
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    headers_after: float | None = None
    ended_after: float | None = None
    failure: str = ""
    failure_kind: FailureKind = ""
    body_bytes: int = 0
    purpose: str = ""
    cross_origin: bool = False
    messages: int = 0
    probe: str = ""  # after a CORS failure: "running", "reachable" or "unreachable" (a no-cors request)

    @property
    def path(self) -> str:
        """The URL's path and query."""
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def content_type(self) -> str:
        """The response's media type (no parameters), ``""`` if none was readable."""
        return self.response_headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def state(self) -> str:
        """``pending``, ``streaming``, ``done``, ``failed`` or ``aborted``."""
        if self.failure_kind == "aborted":
            return "aborted"
        if self.failure:
            return "failed"
        if self.status is None:
            return "pending"
        return "streaming" if self.ended_after is None else "done"

    def duration_text(self) -> str:
        """``12 ms``, ``12 ms to headers · streaming`` or ``""``."""
        if self.ended_after is not None:
            text = describe(self.ended_after)
            if self.headers_after is not None and self.ended_after - self.headers_after > 0.001:
                text = f"{describe(self.headers_after)} to headers · {text} in all"
            return text
        if self.headers_after is not None:
            return f"{describe(self.headers_after)} to headers · streaming"
        return ""

    def summary(self) -> str:
        """``POST /mcp tools/call #5 → 200 text/event-stream``."""
        what = f"{self.method} {self.path}"
        if self.rpc_method:
            what += f" {self.rpc_method}" + (f" #{self.rpc_id}" if self.rpc_id else "")
        outcome = str(self.status) if self.status is not None else ("failed" if self.failure else "…")
        return f"{what} → {outcome}" + (f" {self.content_type}" if self.content_type else "")


@dataclass(frozen=True)
class Diagnosis:
    """A finding about an exchange: ``code`` (stable, for tests), ``level`` and the text to show."""

    code: str
    level: Level
    text: str


def key_headers(exchange: Exchange) -> list[tuple[str, str, str]]:
    """``(direction, name, value)`` of the headers that matter (``sent``/``received``), as spelled by MCP.

    A received header the page could not read does not show: :func:`diagnose` says when that hurts.
    """
    rows: list[tuple[str, str, str]] = []
    for name, value in exchange.request_headers.items():
        low = name.lower()
        if low in KEY_HEADERS or low.startswith("mcp-param-"):
            rows.append(("sent", _SPELLING.get(low, name), value))
    for low in KEY_HEADERS:
        if low in exchange.response_headers:
            rows.append(("received", _SPELLING[low], exchange.response_headers[low].strip()))
    return rows


def _sent(exchange: Exchange, name: str) -> str | None:
    for key, value in exchange.request_headers.items():
        if key.lower() == name:
            return value
    return None


_EXPOSE = "Access-Control-Expose-Headers"


def _session_hidden(exchange: Exchange) -> bool:
    """An initialize answered without a readable session id."""
    ok = exchange.status is not None and 200 <= exchange.status < 300
    return exchange.rpc_method == "initialize" and ok and "mcp-session-id" not in exchange.response_headers


def diagnose(exchange: Exchange, earlier: list[Exchange] | tuple[Exchange, ...] = ()) -> list[Diagnosis]:
    """What in ``exchange`` breaks (or may break) a browser connection; ``earlier`` are the exchanges before it.

    Same-origin requests see every header, so only the CORS-related findings need ``cross_origin``.
    """
    found: list[Diagnosis] = []
    status = exchange.status
    readable = exchange.response_headers
    cross = exchange.cross_origin
    if exchange.failure_kind == "cors" and exchange.probe == "unreachable":
        found.append(
            Diagnosis(
                "unreachable",
                "error",
                "No answer at all: a no-cors probe of the same URL failed too, so the server is down or "
                "unreachable (the browser reports that with the same TypeError as a CORS refusal).",
            )
        )
    elif exchange.failure_kind == "cors":
        params = sorted(n for n in exchange.request_headers if n.lower().startswith("mcp-param-"))
        answers = " answers (a no-cors probe reached it) but" if exchange.probe == "reachable" else ""
        text = (
            f"Blocked by CORS: the server{answers} sent no Access-Control-Allow-Origin for this origin, or "
            "refused the preflight (OPTIONS) for the headers this request carries"
        )
        if params:
            text += f" ({', '.join(params)} must be in Access-Control-Allow-Headers too)"
        found.append(Diagnosis("cors", "error", text + "."))
    elif exchange.failure_kind == "network":
        found.append(Diagnosis("network", "error", "No response: the server is down or unreachable."))
    elif exchange.failure_kind == "body":
        found.append(Diagnosis("body", "warn", "The response body broke off before its end."))
    if status is None:
        return found
    if exchange.rpc_method == "initialize" and 200 <= status < 300 and cross and "mcp-session-id" not in readable:
        found.append(
            Diagnosis(
                "session-hidden",
                "warn",
                "The initialize response has no readable Mcp-Session-Id: either the server runs without "
                f"sessions, or it set one without listing it in {_EXPOSE} (then the next request fails "
                "with 400: the browser hid the id from this page).",
            )
        )
    if (
        status == 400
        and cross
        and exchange.rpc_method not in ("initialize", "server/discover")
        and _sent(exchange, "mcp-session-id") is None
        and any(
            e.rpc_method == "initialize" and e.status == 200 and "mcp-session-id" not in e.response_headers
            for e in earlier
        )
    ):
        found.append(
            Diagnosis(
                "session-not-exposed",
                "error",
                "400 on a request without Mcp-Session-Id after an initialize whose session id this page "
                f"could not read: the server must list Mcp-Session-Id in {_EXPOSE}.",
            )
        )
    if status == 401 and "www-authenticate" not in readable:
        text = "401 without a readable WWW-Authenticate: the page cannot learn where to sign in"
        if cross:
            text += f" (the server must list WWW-Authenticate in {_EXPOSE})"
        found.append(Diagnosis("challenge-hidden", "error", text + "."))
    if exchange.method == "GET" and exchange.rpc_method == "" and exchange.purpose == "":
        if status == 405:
            found.append(
                Diagnosis(
                    "get-405",
                    "info",
                    "405 on the GET stream: the server offers no standalone stream (allowed); its messages "
                    "come on POST responses only.",
                )
            )
        elif status == 404:
            found.append(
                Diagnosis(
                    "get-404",
                    "warn",
                    "404 on the GET stream: the session is gone, or nothing serves GET at this URL.",
                )
            )
    if exchange.method == "POST" and exchange.rpc_id is not None and exchange.rpc_method != "(response)":
        media = exchange.content_type
        if 200 <= status < 300 and status != 202 and media not in ("application/json", "text/event-stream"):
            shown = media or "none readable"
            found.append(
                Diagnosis(
                    "content-type",
                    "error",
                    f"A request answered with Content-Type {shown}: MCP wants application/json or text/event-stream.",
                )
            )
    if status == 403 and cross:
        found.append(
            Diagnosis("origin-refused", "error", "403: the server refused this page's Origin (its allowed origins).")
        )
    return found


Listener: TypeAlias = Callable[[Exchange], None]
Relater: TypeAlias = Callable[[dict[str, Any], "str | None"], None]


class NetworkLog:
    """The exchanges of the page's connections, newest last, capped at ``max_exchanges``.

    Args:
        listener: Called with an exchange each time it changes (keep it quick).
        origin: The page's origin (``""``: unknown, every URL counts as cross-origin).
    """

    def __init__(
        self, listener: Listener | None = None, *, origin: str = "", max_exchanges: int = MAX_EXCHANGES
    ) -> None:
        self.listener = listener
        self.origin = origin
        self.exchanges: deque[Exchange] = deque(maxlen=max_exchanges)
        self._seq = 0

    def _changed(self, exchange: Exchange) -> None:
        if self.listener is not None:
            self.listener(exchange)

    def _cross(self, url: str) -> bool:
        if not self.origin:
            return True
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower() != self.origin.lower()

    def begin(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, wall: float) -> Exchange:
        """A request is about to go out."""
        self._seq += 1
        rpc_method, rpc_id, _ = _rpc(body)
        exchange = Exchange(
            self._seq,
            method,
            url,
            redact(headers),
            rpc_method,
            rpc_id,
            wall,
            cross_origin=self._cross(url),
        )
        self.exchanges.append(exchange)
        self._changed(exchange)
        return exchange

    def answered(self, exchange: Exchange, status: int, headers: Mapping[str, str], after: float) -> None:
        """The status and headers arrived."""
        exchange.status = status
        exchange.response_headers = {k.lower(): v for k, v in headers.items()}
        exchange.headers_after = after
        self._changed(exchange)

    def ended(self, exchange: Exchange, after: float) -> None:
        """The body was read to its end."""
        exchange.ended_after = after
        self._changed(exchange)

    def failed(self, exchange: Exchange, kind: FailureKind, text: str, after: float) -> None:
        """No response came, or the body broke off, or we stopped it."""
        exchange.failure_kind = kind
        exchange.failure = text
        if exchange.ended_after is None:
            exchange.ended_after = after
        self._changed(exchange)

    def probed(self, exchange: Exchange, outcome: str) -> None:
        """The no-cors probe after a CORS failure: ``reachable`` (an opaque answer) or ``unreachable``."""
        exchange.probe = outcome
        self._changed(exchange)

    def oauth(self, entry: TraceEntry) -> Exchange:
        """A sign-in request (a trace entry of kind ``oauth``): names the exchange it was, or adds one.

        OAuth goes through the transport's HTTP client, so the exchange is usually recorded already:
        it gets the purpose. A request made elsewhere (before the transport) is added as it is.
        """
        http = str(entry.body.get("http", ""))
        method, _, url = http.partition(" ")
        status = entry.body.get("status")
        for exchange in reversed(self.exchanges):
            if exchange.method == method and exchange.url == url and not exchange.purpose:
                exchange.purpose = entry.method
                self._changed(exchange)
                return exchange
        self._seq += 1
        exchange = Exchange(self._seq, method, url, {}, "", None, entry.wall_time, purpose=entry.method)
        exchange.cross_origin = self._cross(url)
        if isinstance(status, int):
            exchange.status = status
        outcome = str(entry.body.get("outcome", ""))
        if status is None:
            exchange.failure, exchange.failure_kind = outcome, "network"
        exchange.ended_after = 0.0
        self.exchanges.append(exchange)
        self._changed(exchange)
        return exchange

    def diagnoses(self, exchange: Exchange) -> list[Diagnosis]:
        """:func:`diagnose` with the exchanges before this one."""
        earlier = [e for e in self.exchanges if e.seq < exchange.seq]
        return diagnose(exchange, earlier)

    def clear(self) -> None:
        """Forget every exchange."""
        self.exchanges.clear()


def _failure_kind(exc: BaseException) -> FailureKind:
    if isinstance(exc, CORSError):
        return "cors"
    if isinstance(exc, NetworkError):
        return "network"
    return "network"


class RecordedResponse:
    """The inner response, recording the end of its body (and the messages of an event stream)."""

    def __init__(
        self,
        inner: HTTPResponse,
        exchange: Exchange,
        log: NetworkLog,
        started: float,
        clock: Callable[[], float],
        relate: Relater | None,
    ) -> None:
        self._inner = inner
        self._exchange = exchange
        self._log = log
        self._started = started
        self._clock = clock
        self._relate = relate
        self._done = False

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return self._inner.status

    @property
    def headers(self) -> Mapping[str, str]:
        """The readable response headers, names lower-cased."""
        return self._inner.headers

    def _finish(self, kind: FailureKind = "", text: str = "") -> None:
        if self._done:
            return
        self._done = True
        after = self._clock() - self._started
        if kind:
            self._log.failed(self._exchange, kind, text, after)
        else:
            self._log.ended(self._exchange, after)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The inner body, chunk by chunk; an event stream's messages are told to ``relate`` first."""
        decoder = SSEDecoder() if self._exchange.content_type == "text/event-stream" else None
        related = self._exchange.rpc_id if self._exchange.rpc_method != "(response)" else None
        try:
            async for chunk in self._inner.chunks():
                self._exchange.body_bytes += len(chunk)
                if decoder is not None:
                    self._read_events(decoder, chunk, related)
                yield chunk
        except asyncio.CancelledError:
            self._finish("aborted", "stopped by the client")
            raise
        except Exception as exc:
            self._finish("body", describe_error(exc, self._exchange.url))
            raise
        self._finish()

    def _read_events(self, decoder: SSEDecoder, chunk: bytes, related: str | None) -> None:
        try:
            events = decoder.feed(chunk)
        except Exception:  # the transport reports a broken stream; the recorder just stops reading it
            return
        for event in events:
            if not event.data:
                continue
            try:
                message = json.loads(event.data)
            except ValueError:
                continue
            if isinstance(message, dict):
                self._exchange.messages += 1
                if self._relate is not None and "method" in message:
                    self._relate(message, related)

    async def aclose(self) -> None:
        """Release the inner response: the transport had what it needed (its reply came), so it ends here."""
        self._finish()
        await self._inner.aclose()


class RecordingHTTPClient:
    """An :class:`~pyodide_transport.transport.HTTPClient` that records every exchange in ``log``.

    Args:
        inner: The client that does the work (in the page: ``BrowserHTTPClient()``).
        log: Where exchanges go.
        relate: Told which request each event-stream message came with (``ProtocolModel.relate``).
        clock: Monotonic seconds; ``wall_clock``: epoch seconds.
    """

    def __init__(
        self,
        inner: HTTPClient,
        log: NetworkLog,
        *,
        relate: Relater | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.log = log
        self._relate = relate
        self._clock = clock
        self._wall = wall_clock

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> HTTPResponse:
        """Perform the request through ``inner``, recording it."""
        exchange = self.log.begin(method, url, headers, body, self._wall())
        started = self._clock()
        try:
            response = await self.inner.request(method, url, headers, body)
        except asyncio.CancelledError:
            self.log.failed(exchange, "aborted", "stopped by the client", self._clock() - started)
            raise
        except Exception as exc:
            self.log.failed(exchange, _failure_kind(exc), describe_error(exc, url), self._clock() - started)
            raise
        self.log.answered(exchange, response.status, response.headers, self._clock() - started)
        return RecordedResponse(response, exchange, self.log, started, self._clock, self._relate)

    async def aclose(self) -> None:
        """Release the inner client."""
        await self.inner.aclose()

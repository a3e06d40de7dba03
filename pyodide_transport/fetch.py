"""``FetchTransport``: MCP Streamable HTTP over the browser ``fetch``, a thin adapter.

All protocol decisions live in the sans-I/O core
(:class:`~pyodide_transport.streamable_http.StreamableHTTPClient`); this module
performs the HTTP exchanges it asks for and acts on its events. Under Pyodide
the HTTP client is the JavaScript ``fetch`` (:mod:`pyodide_transport._browser`);
anywhere else pass any object implementing :class:`HTTPClient` (the tests use
one over ``httpx``).

Behaviour:

* One POST per message (``Accept: application/json, text/event-stream``).
  ``send`` returns once the server accepted the message (2xx headers); JSON and
  SSE bodies are read in the background, SSE incrementally, and their messages
  come out of ``receive``.
* Handshake era: after ``notifications/initialized`` the standalone GET stream
  is opened (HTTP 405 = the server offers none, not an error). A stream that
  ends before its responses is resumed with ``GET`` + ``Last-Event-ID`` after
  the server's ``retry`` (or exponential backoff with jitter); the id is kept
  across every reconnect. ``close`` sends ``DELETE`` with the session id.
* 2026-07-28: cancelling a request (``notifications/cancelled``) aborts its
  fetch (``AbortController``); nothing is posted.
* Errors are reported once. An error about the message being sent (HTTP
  status, network/CORS failure, session gone) is raised by ``send``. When a
  response stream breaks after ``send`` returned, ``receive`` raises the typed
  failure with ``request_ids`` naming the requests it loses; a broken stream
  owing nothing is raised once from ``receive``. When the standalone GET
  stream runs out of reconnect attempts (the server is down for a while),
  ``receive`` raises a :class:`~pyodide_transport.errors.NetworkError` once,
  the transport stays usable, and the stream re-opens with the next message
  the server accepts.

Session expiry policy: HTTP 404 for our session id means the session is gone.
The request that got the 404 was never processed, so ``send`` raises
:class:`~pyodide_transport.errors.SessionExpiredError` and the
:class:`~pyodide_transport.client.Client` re-initializes (same client info and
capabilities, logging level and subscriptions re-applied) and re-sends it once.
When the expiry shows on a stream after ``send`` returned, ``receive`` raises
:class:`SessionExpiredError` once and the requests still waiting fail with it
(they may or may not have run, so they are not re-sent). Until a new
``initialize`` goes out, every ``send`` raises :class:`SessionExpiredError`
at once instead of posting without a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

from mcp_types.jsonrpc import JSONRPCNotification, JSONRPCRequest

from .backoff import BackoffPolicy
from .errors import (
    ConnectionClosedError,
    LocalProtocolError,
    NetworkError,
    SessionExpiredError,
    TransportError,
)
from .memory import Inbox, new_future
from .messages import TransportMessage
from .streamable_http import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AbortExchange,
    Event,
    Exchange,
    ExchangeFailed,
    LastEventIdUpdated,
    MessageReceived,
    Reconnect,
    SessionExpired,
    StreamableHTTPClient,
    StreamUnavailable,
)

__all__ = ["FetchTransport", "HTTPClient", "HTTPResponse"]

logger = logging.getLogger("pyodide_transport.fetch")

_CLOSE_TIMEOUT = 5.0  # seconds the DELETE may take on close


@runtime_checkable
class HTTPResponse(Protocol):
    """A response whose status and headers arrived; the body is read with :meth:`chunks`."""

    @property
    def status(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names lower-cased."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """Yield body chunks as they arrive; raise ``NetworkError`` if the read breaks off."""
        ...

    async def aclose(self) -> None:
        """Stop reading and release the response (abort it if the body is still open)."""
        ...


@runtime_checkable
class HTTPClient(Protocol):
    """What :class:`FetchTransport` needs from an HTTP library.

    ``request`` returns once the status line and headers arrived and raises
    :class:`~pyodide_transport.errors.NetworkError` (or ``CORSError``) when
    no response came. Cancelling the awaiting task must abort the request.
    """

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> HTTPResponse:
        """Perform one request."""
        ...

    async def aclose(self) -> None:
        """Release the client."""
        ...


def _default_http_client(fetch: Any) -> HTTPClient:
    """The HTTP client for ``fetch=``: an ``HTTPClient`` as is, else the browser's ``fetch`` or httpx."""
    if fetch is not None and isinstance(fetch, HTTPClient):
        return fetch
    if sys.platform == "emscripten":
        from ._browser import BrowserHTTPClient

        return BrowserHTTPClient(fetch)
    if fetch is not None:
        raise LocalProtocolError(f"fetch= must implement pyodide_transport.fetch.HTTPClient, got {fetch!r}")
    from .cpython import default_http_client  # the cpython extra; says how to install it when missing

    return default_http_client()


class _Closed:
    """Marker in the inbox: the transport is closed."""


_CLOSED = _Closed()


class FetchTransport:
    """MCP Streamable HTTP client transport over ``fetch`` (see the module docstring).

    Args:
        url: The MCP endpoint (``http://`` or ``https://``).
        headers: Extra headers for every request, e.g. ``{"Authorization": "Bearer ..."}``.
        fetch: Under Pyodide, a JS fetch function to use instead of the global
            one; anywhere, an :class:`HTTPClient`. ``None``: the global ``fetch``.
        open_get_stream: Open the standalone GET stream after initialize.
        reconnect_delay: First delay (seconds) before resuming a broken SSE stream.
        max_reconnect_delay: Upper bound of that delay.
        max_reconnect_attempts: Resumption attempts per stream without progress.
        max_message_size: Most bytes of one JSON body or SSE event.

    Attributes:
        stats: Counters of what the server did (SSE responses, resumptions,
            GET stream status), for diagnostics such as ``pyodide_transport.check``.
    """

    transport_type = "streamable-http"

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        fetch: Any = None,
        open_get_stream: bool = True,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 30.0,
        max_reconnect_attempts: int | None = 5,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.url = url
        self._http = _default_http_client(fetch)
        policy = BackoffPolicy(
            initial_delay=reconnect_delay, max_delay=max_reconnect_delay, max_attempts=max_reconnect_attempts
        )
        self._core = StreamableHTTPClient(url, headers=headers, max_message_size=max_message_size, backoff=policy)
        self._open_get_stream = open_get_stream
        self._inbox: Inbox[TransportMessage | TransportError | _Closed] = Inbox()
        self._tasks: set[asyncio.Task[None]] = set()
        self._exchange_tasks: dict[Exchange, asyncio.Task[None]] = {}
        self._get_task: asyncio.Task[None] | None = None
        self._closed = False
        self._expired = False
        self._get_stream_lost = False  # the GET stream gave up: re-open it with the next accepted message
        self.stats: dict[str, Any] = {
            "sse_responses": 0,
            "json_responses": 0,
            "resumptions": 0,
            "last_event_id": None,
            "get_stream": "not opened",
            "delete_status": None,
        }

    @property
    def session_id(self) -> str | None:
        """The current ``Mcp-Session-Id`` (handshake era), or ``None``."""
        return self._core.session_id

    @property
    def protocol_version(self) -> str | None:
        """The protocol version in use on the wire, or ``None`` before one is known."""
        return self._core.protocol_version or self._core.modern_version

    def is_connected(self) -> bool:
        """Whether messages can be sent (HTTP is connectionless: until ``close``)."""
        return not self._closed

    # -- sending -----------------------------------------------------------------------------------

    async def send(self, message: TransportMessage) -> None:
        """POST one message; return once the server accepted it.

        Raises:
            SessionExpiredError: The session is gone (re-initialize, then re-send).
            HTTPStatusError: The server refused the message.
            CORSError: The browser blocked a cross-origin request.
            NetworkError: No response came.
            ConnectionClosedError: The transport is closed.
        """
        if self._closed:
            raise ConnectionClosedError("the transport is closed")
        is_initialize = isinstance(message, JSONRPCRequest) and message.method == "initialize"
        if self._expired and not is_initialize:
            raise SessionExpiredError("the session expired; initialize a new one before sending")
        if is_initialize:
            self._expired = False
            self._stop_get_stream()
        action = self._core.send(message)
        if action is None:
            return
        if isinstance(action, AbortExchange):
            task = self._exchange_tasks.get(action.exchange)
            if task is not None:
                task.cancel()
            return
        # Awaited directly (no shield, no callbacks): each extra hop is a JS task in Pyodide. A cancelled
        # send cancels ``ready``, which the exchange then leaves alone (it only settles a pending future).
        ready: asyncio.Future[None] = new_future(asyncio.get_running_loop())
        task = self._spawn(self._drive(action, ready), action)
        try:
            await ready
        except asyncio.CancelledError:
            action.abort()
            task.cancel()
            raise
        initialized = isinstance(message, JSONRPCNotification) and message.method == "notifications/initialized"
        if (
            (initialized or self._get_stream_lost)
            and self._open_get_stream
            and self._core.protocol_version is not None
            and self._core.session_id is not None
        ):
            self._get_stream_lost = False
            self._start_get_stream()

    def _spawn(self, coro: Any, exchange: Exchange | None = None) -> asyncio.Task[None]:
        # A plain Task, not loop.create_task: Pyodide's webloop adds a done callback to each task it
        # makes, one more JavaScript task per exchange.
        task: asyncio.Task[None] = asyncio.Task(coro, loop=asyncio.get_running_loop())
        self._tasks.add(task)
        if exchange is not None:
            self._exchange_tasks[exchange] = task

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if exchange is not None and self._exchange_tasks.get(exchange) is t:
                del self._exchange_tasks[exchange]
            if not t.cancelled() and (exc := t.exception()) is not None:
                logger.error("FetchTransport task failed: %r", exc)
                self._inbox.put_nowait(ConnectionClosedError(f"transport task failed: {exc!r}"))

        task.add_done_callback(done)
        return task

    def _start_get_stream(self) -> None:
        self._stop_get_stream()
        try:
            exchange = self._core.open_stream()
        except LocalProtocolError:
            return
        self.stats["get_stream"] = "opening"
        self._get_task = self._spawn(self._drive(exchange, None), exchange)

    def _stop_get_stream(self) -> None:
        if self._get_task is not None:
            self._get_task.cancel()
            self._get_task = None

    # -- driving one exchange ------------------------------------------------------------------------

    async def _drive(self, exchange: Exchange, ready: asyncio.Future[None] | None) -> None:
        """Perform ``exchange`` and feed everything that happens to the core."""
        request = exchange.request
        response: HTTPResponse | None = None
        try:
            try:
                response = await self._http.request(request.method, request.url, request.headers, request.body)
            except TransportError as exc:
                self._handle(exchange.receive_network_error(exc), ready)
                return
            self._handle(exchange.receive_response(response.status, response.headers), ready)
            if exchange.kind == "get" and exchange.status == 200:
                self.stats["get_stream"] = "open"
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                if exchange.kind == "post":
                    self.stats["sse_responses"] += 1
            elif exchange.kind == "post" and exchange.status == 200:
                self.stats["json_responses"] += 1
            if ready is not None and not ready.done() and (exchange.done or 200 <= (exchange.status or 0) < 300):
                ready.set_result(None)
            if exchange.done:
                return
            try:
                async for chunk in response.chunks():
                    self._handle(exchange.receive_data(chunk), ready)
                    if exchange.done:
                        return
            except TransportError as exc:
                self._handle(exchange.receive_network_error(exc), ready)
                return
            self._handle(exchange.receive_eof(), ready)
        finally:
            if response is not None:
                with contextlib.suppress(Exception):
                    await response.aclose()
            if ready is not None and not ready.done():
                if self._closed:
                    ready.set_exception(ConnectionClosedError("the transport closed before the server answered"))
                else:
                    ready.set_result(None)

    def _handle(self, events: list[Event], ready: asyncio.Future[None] | None) -> None:
        for event in events:
            if isinstance(event, MessageReceived):
                self._inbox.put_nowait(event.message)
            elif isinstance(event, Reconnect):
                self.stats["resumptions"] += 1
                self._spawn(self._reconnect(event), event.exchange)
            elif isinstance(event, ExchangeFailed):
                self._failed(event, ready)
            elif isinstance(event, SessionExpired):
                self._expired = True
            elif isinstance(event, StreamUnavailable):
                self.stats["get_stream"] = "unavailable (405)"
            elif isinstance(event, LastEventIdUpdated):
                self.stats["last_event_id"] = event.last_event_id

    def _failed(self, event: ExchangeFailed, ready: asyncio.Future[None] | None) -> None:
        """Report a failure once: from ``send`` if it waits, else per request or from ``receive``."""
        error = event.error
        if ready is not None and not ready.done():
            ready.set_exception(error)
            return
        if self._closed:
            return
        if not event.request_ids and isinstance(error, ConnectionClosedError):
            # A stream that owed no response (the standalone GET stream) gave up. HTTP is connectionless, so
            # the client is not disconnected: report it, and re-open the stream once the server is back.
            self._get_stream_lost = True
            self._inbox.put_nowait(
                NetworkError(f"the server-to-client stream was lost ({error}); it re-opens with the next request")
            )
            return
        if isinstance(error, SessionExpiredError) or not event.request_ids:
            self._inbox.put_nowait(error)
            return
        self._inbox.put_nowait(error.losing(event.request_ids))  # typed, naming the requests it loses

    async def _reconnect(self, event: Reconnect) -> None:
        await asyncio.sleep(event.delay)
        await self._drive(event.exchange, None)

    # -- receiving and closing -----------------------------------------------------------------------

    async def receive(self) -> TransportMessage:
        """Return the next message from the server.

        Raises:
            ConnectionClosedError: The transport is closed (and drained).
            SessionExpiredError: A stream found the session gone (raised once).
            TransportError: A stream without pending requests failed (raised once).
        """
        item = await self._inbox.get()
        if isinstance(item, _Closed):
            self._inbox.put_nowait(item)
            raise ConnectionClosedError("the transport is closed")
        if isinstance(item, TransportError):
            raise item
        return item

    async def close(self) -> None:
        """Abort every stream, end the session (``DELETE``) and release the HTTP client. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._get_task = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        delete = self._core.close()
        if delete is not None:
            await self._delete(delete)
        with contextlib.suppress(Exception):
            await self._http.aclose()
        self._inbox.put_nowait(_CLOSED)

    async def _delete(self, exchange: Exchange) -> None:
        """End the session; failures are logged, never raised (the server expires it anyway)."""
        response: HTTPResponse | None = None
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                response = await self._http.request(
                    exchange.request.method, exchange.request.url, exchange.request.headers, None
                )
                self.stats["delete_status"] = response.status
        except (TransportError, TimeoutError) as exc:
            logger.debug("DELETE of the session failed: %s", exc)
        finally:
            if response is not None:
                with contextlib.suppress(Exception):
                    await response.aclose()

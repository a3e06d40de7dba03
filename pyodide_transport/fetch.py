"""``FetchTransport``: MCP Streamable HTTP over the browser ``fetch``, a thin shell over its sans-I/O core.

Every decision (sessions, expiry, the GET stream, resumption, 2026-07-28 headers and cancellation,
what each status means) is :class:`~pyodide_transport.streamable_http.StreamableHTTPClient`'s; read
its module docstring for the policy. This shell performs the exchanges the core asks for and acts
on its events. Under Pyodide the HTTP client is the JavaScript ``fetch``
(:mod:`pyodide_transport._browser`); in CPython it is ``httpx`` (:mod:`pyodide_transport.cpython`,
the ``cpython`` extra); anything implementing :class:`HTTPClient` can be passed as ``fetch=``.

``send`` POSTs one message and returns once the server accepted it (2xx headers); JSON and SSE
bodies are read in the background and their messages come out of ``receive``. Errors are reported
once: about the message being sent (HTTP status, network or CORS failure, session gone) by
``send``; a response stream that breaks later by ``receive``, typed, with ``request_ids`` naming
the requests it loses. ``close`` aborts every stream and sends ``DELETE`` for the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .backoff import BackoffPolicy
from .errors import (
    AuthorizationRequiredError,
    ConnectionClosedError,
    LocalProtocolError,
    SessionExpiredError,
    TransportError,
)
from .memory import Inbox, new_future
from .messages import TransportMessage
from .streamable_http import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Event,
    Exchange,
    ExchangeFailed,
    MessageReceived,
    Reconnect,
    StreamableHTTPClient,
)
from .transport import HTTPClient, HTTPResponse

if TYPE_CHECKING:
    from .oauth import OAuth

__all__ = ["FetchTransport", "HTTPClient", "HTTPResponse"]

logger = logging.getLogger("pyodide_transport.fetch")

_CLOSE_TIMEOUT = 5.0  # seconds the DELETE may take on close


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
        fetch: Under Pyodide, a JS fetch function to use instead of the global one; anywhere, an
            :class:`HTTPClient`. ``None``: the global ``fetch`` (Pyodide) or httpx (CPython).
        open_get_stream: Open the standalone GET stream after initialize.
        reconnect_delay: First delay (seconds) before resuming a broken SSE stream.
        max_reconnect_delay: Upper bound of that delay.
        max_reconnect_attempts: Resumption attempts per stream without progress.
        max_message_size: Most bytes of one JSON body or SSE event.
        auth: An :class:`~pyodide_transport.oauth.OAuth`: a 401 (or 403 ``insufficient_scope``) then
            signs in (or steps up) and re-sends the message; tokens go in the ``Authorization`` header.
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
        auth: OAuth | None = None,
    ) -> None:
        self.url = url
        self.auth = auth
        self._http = _default_http_client(fetch)
        policy = BackoffPolicy(
            initial_delay=reconnect_delay, max_delay=max_reconnect_delay, max_attempts=max_reconnect_attempts
        )
        self._core = StreamableHTTPClient(
            url, headers=headers, max_message_size=max_message_size, backoff=policy, get_stream=open_get_stream
        )
        self._inbox: Inbox[TransportMessage | TransportError | _Closed] = Inbox()
        self._tasks: dict[asyncio.Task[None], Exchange] = {}
        self._closed = False

    @property
    def stats(self) -> dict[str, Any]:
        """Counters of what the server did (SSE responses, resumptions, GET stream state, DELETE status)."""
        return self._core.stats

    @property
    def session_id(self) -> str | None:
        """The current ``Mcp-Session-Id`` (handshake era), or ``None``."""
        return self._core.session_id

    @property
    def protocol_version(self) -> str | None:
        """The protocol version in use on the wire, or ``None`` before one is known."""
        return self._core.protocol_version or self._core.modern_version

    def param_headers(self, message: TransportMessage) -> dict[str, str]:
        """The ``Mcp-Param-*`` headers sending ``message`` adds (tool arguments marked ``x-mcp-header``)."""
        return self._core.param_headers_for(message)

    def is_connected(self) -> bool:
        """Whether messages can be sent (HTTP is connectionless: until ``close``)."""
        return not self._closed

    async def send(self, message: TransportMessage) -> None:
        """POST one message; return once the server accepted it.

        Raises:
            SessionExpiredError: The session is gone (re-initialize, then re-send).
            HTTPStatusError: The server refused the message (``LegacyServerError`` for a modern probe).
            CORSError: The browser blocked a cross-origin request.
            NetworkError: No response came.
            ConnectionClosedError: The transport is closed.
            AuthorizationRequiredError: The server wants a sign-in and there is no ``auth``.
            AuthorizationError: ``auth`` could not sign in (the subclass says why).
        """
        if self._closed:
            raise ConnectionClosedError("the transport is closed")
        if self.auth is None:
            return await self._send(message)
        auth, refused = self.auth, 0
        while True:  # a refused message was not processed: signing in and re-sending it is safe
            if auth.needs_refresh(self.url):
                await auth.refresh(self.url, self._http)
            sent = self._core.authorization = auth.authorization(self.url)
            try:
                return await self._send(message)
            except AuthorizationRequiredError as exc:
                refused += 1
                await auth.handle(self.url, exc.status, exc.www_authenticate, sent, self._http, refused)

    async def _send(self, message: TransportMessage) -> None:
        action = self._core.send(message)
        self._stop_aborted()
        if not isinstance(action, Exchange):
            return  # nothing to post (a 2026-07-28 cancel aborts its request's fetch instead)
        # Awaited directly (no shield, no callbacks): each extra hop is a JS task in Pyodide. A cancelled
        # send cancels ``ready``, which the exchange then leaves alone (it only settles a pending future).
        ready: asyncio.Future[None] = new_future(asyncio.get_running_loop())
        task = self._spawn(action, ready)
        try:
            await ready
        except asyncio.CancelledError:
            action.abort()
            task.cancel()
            raise
        if self._core.stream_wanted:
            self._spawn(self._core.open_stream(), None)

    def _spawn(self, exchange: Exchange, ready: asyncio.Future[None] | None, delay: float = 0.0) -> asyncio.Task[None]:
        # A plain Task, not loop.create_task: Pyodide's webloop adds a done callback to each task it
        # makes, one more JavaScript task per exchange.
        task: asyncio.Task[None] = asyncio.Task(self._drive(exchange, ready, delay), loop=asyncio.get_running_loop())
        self._tasks[task] = exchange
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("FetchTransport task failed: %r", exc)
            self._inbox.put_nowait(ConnectionClosedError(f"transport task failed: {exc!r}"))

    def _stop_aborted(self) -> None:
        """Cancel the fetches of exchanges the core gave up on (a modern cancel, a new session's old stream)."""
        aborted = self._core.take_aborted()
        if aborted:
            for task, exchange in list(self._tasks.items()):
                if exchange in aborted:
                    task.cancel()

    async def _drive(self, exchange: Exchange, ready: asyncio.Future[None] | None, delay: float) -> None:
        """Perform ``exchange`` and feed everything that happens to the core."""
        if delay:
            await asyncio.sleep(delay)
        request = exchange.request
        response: HTTPResponse | None = None
        try:
            try:
                response = await self._http.request(request.method, request.url, request.headers, request.body)
            except TransportError as exc:
                self._handle(exchange.receive_network_error(exc), ready)
                return
            self._handle(exchange.receive_response(response.status, response.headers), ready)
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
                self._spawn(event.exchange, None, event.delay)
            elif isinstance(event, ExchangeFailed):
                if ready is not None and not ready.done():
                    ready.set_exception(event.error)  # send() raises it: the one report
                elif not self._closed:
                    error = event.error
                    if event.request_ids and not isinstance(error, SessionExpiredError):  # expiry: all of them
                        error.losing(event.request_ids)
                    self._inbox.put_nowait(error)

    async def receive(self) -> TransportMessage:
        """Return the next message from the server.

        Raises:
            ConnectionClosedError: The transport is closed (and drained), or a response stream
                broke (``request_ids`` names the requests it lost).
            SessionExpiredError: A stream found the session gone (raised once).
            TransportError: Another stream failure (raised once).
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
                request = exchange.request
                response = await self._http.request(request.method, request.url, request.headers, None)
                exchange.receive_response(response.status, response.headers)
        except (TransportError, TimeoutError) as exc:
            logger.debug("DELETE of the session failed: %s", exc)
        finally:
            if response is not None:
                with contextlib.suppress(Exception):
                    await response.aclose()

"""The browser boundary: JavaScript ``fetch`` and ``WebSocket`` as small Python objects.

This is the only module that imports ``js`` and ``pyodide.ffi``; it is imported
only under Pyodide (``sys.platform == "emscripten"``). It works in a page, a
Web Worker and Node: it uses ``js.globalThis`` and never ``window`` or
``document``. Nothing here blocks: every wait is an ``await`` on a JS promise or
an ``asyncio`` queue.

* :class:`BrowserHTTPClient` performs one request with ``fetch`` (an
  ``AbortController`` per request) and returns a :class:`BrowserResponse` whose
  body is read incrementally through ``body.getReader()``. Cancelling the
  awaiting task aborts the fetch. The browser's opaque ``TypeError: Failed to
  fetch`` becomes :class:`~pyodide_transport.errors.CORSError` when the URL is
  cross-origin to the page, else :class:`~pyodide_transport.errors.NetworkError`
  (naming CORS as a possible cause when the page's origin is unknown).
* :func:`open_websocket` opens a ``WebSocket`` and returns a
  :class:`BrowserWebSocket`; its four listeners are ``create_proxy`` objects,
  all destroyed when the socket closes. :func:`live_proxy_count` tells how many
  proxies this module holds right now (tests assert it does not grow).
* :class:`BrowserPort` is a ``MessagePort`` (or ``Worker``) as the
  :class:`~pyodide_transport.port.PortEndpoint` of
  :class:`~pyodide_transport.port.MessagePortTransport`: one listener proxy for ``message`` and
  ``messageerror``, destroyed on ``close``; :class:`BrowserOwner` watches a ``Worker``'s ``error``
  event; :func:`connect_worker` opens a ``MessageChannel`` to a worker.
* :class:`WebCryptoAEAD` is AES-256-GCM over ``crypto.subtle`` (the key imported once, non-extractable)
  for :class:`~pyodide_transport.encrypted.EncryptedTransport`; :func:`webcrypto_pbkdf2` derives a
  passphrase's key with WebCrypto's PBKDF2. A tag that does not verify (``OperationError``) becomes
  :class:`~pyodide_transport.errors.EnvelopeError`.
* :func:`install_scheduler` makes Pyodide's event loop run every ready callback
  in one JavaScript microtask instead of one JavaScript task each (see
  :class:`BatchScheduler`); the browser transports install it on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import js
from pyodide.ffi import JsException, JsNull, create_proxy, to_js

from .errors import CORS_HELP, ConnectionClosedError, CORSError, EnvelopeError, LocalProtocolError, NetworkError
from .memory import Inbox

__all__ = [
    "OAUTH_CALLBACK_KEY",
    "OAUTH_CHANNEL",
    "OAUTH_RETURN_KEY",
    "BatchScheduler",
    "BrowserHTTPClient",
    "BrowserOwner",
    "BrowserPort",
    "BrowserResponse",
    "BrowserWebSocket",
    "SessionStorageStore",
    "WebCryptoAEAD",
    "connect_worker",
    "follow_redirect",
    "install_scheduler",
    "live_proxy_count",
    "open_websocket",
    "page_origin",
    "page_url",
    "popup_redirect_handler",
    "redirect_to",
    "session_storage",
    "start_popup",
    "take_callback",
    "wait_popup",
    "webcrypto_pbkdf2",
]


class BatchScheduler:
    """Runs the loop's ready callbacks in batches: one JavaScript microtask for all of them.

    Pyodide's webloop gives every ``call_soon`` its own JavaScript task (a fresh once-callable
    proxy and a trip through the browser's task queue, 30-120 µs), so each asyncio hop (a task
    waking, a future's callback, a JS promise resolving into a future) costs that much. This
    scheduler takes over ``call_soon``: callbacks go into a FIFO, and one microtask drains it,
    running callbacks added meanwhile too, the way an asyncio loop runs its ready queue. A batch
    stops after :attr:`BUDGET_S` or :attr:`MAX_BATCH` callbacks and the rest continues in a new
    JavaScript task, so a Python loop that never waits cannot starve the page. Timers
    (``call_later``) stay the webloop's ``setTimeout``.

    The batch is entered through one persistent proxy, not a JSPI-"promising" once-callable per
    callback as the webloop does: that entry alone costs ~170 µs in Chromium. The price is that
    ``pyodide.ffi.run_sync`` is unavailable inside tasks while the scheduler is installed (use
    ``await``; or ``install_scheduler(False)``).
    """

    BUDGET_S = 0.008
    """Longest a batch runs before it yields to the browser (seconds)."""

    MAX_BATCH = 10_000
    """Most callbacks one batch runs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._ready: deque[asyncio.Handle] = deque()
        self._scheduled = False
        self._entry = create_proxy(self._run)  # one entry point for every batch, destroyed on uninstall
        self.batches = 0

    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> asyncio.Handle:
        """``loop.call_soon``: queue the callback; the first one of a batch schedules the microtask."""
        handle = asyncio.Handle(callback, args, self.loop, context=context)
        self._ready.append(handle)
        if not self._scheduled:
            self._scheduled = True
            js.queueMicrotask(self._entry)
        return handle

    def within(self, func: Callable[..., None], *args: Any) -> None:
        """Call ``func`` from a JavaScript event, then run what it made ready, in this one entry into Python.

        Every entry from JavaScript into Python costs tens of µs in Chromium; an event that
        resolves a future would otherwise pay a second one for the microtask that runs the
        waiting task. Our event listeners and the promise bridge enter Python through here.
        """
        if self._scheduled:  # a batch is queued or running: it runs whatever ``func`` makes ready
            func(*args)
            return
        self._scheduled = True
        try:
            func(*args)
        finally:
            self._run()

    def _run(self) -> None:
        loop: Any = self.loop
        self.batches += 1
        with contextlib.suppress(AttributeError):  # what the webloop does before each callback
            loop._install_running_loop()
            loop._install_asyncgen_hooks()
        ready = self._ready
        deadline = time.monotonic() + self.BUDGET_S
        ran = 0
        try:
            while ready:
                handle = ready.popleft()
                if not handle.cancelled():
                    handle._run()  # reports exceptions through the loop's exception handler
                ran += 1
                if ran >= self.MAX_BATCH or (ran % 64 == 0 and time.monotonic() > deadline):
                    break
        finally:
            if ready:  # yield to the browser, then go on in a new task
                js.setTimeout(self._entry, 0)
            else:
                self._scheduled = False

    def uninstall(self) -> None:
        """Give ``call_soon`` back to the loop (what is queued still runs)."""
        if self.loop.__dict__.get("call_soon") == self.call_soon:
            del self.loop.__dict__["call_soon"]
        if not self._scheduled:
            self._entry.destroy()


_scheduler: BatchScheduler | None = None
_scheduler_wanted = True


def install_scheduler(enabled: bool = True) -> BatchScheduler | None:
    """Install the :class:`BatchScheduler` on the running loop (or, ``enabled=False``, remove it for good).

    The browser transports call this on first use; call ``install_scheduler(False)`` before
    connecting to keep Pyodide's own one-task-per-callback scheduling.
    """
    global _scheduler, _scheduler_wanted
    _scheduler_wanted = enabled
    loop = asyncio.get_running_loop()
    if not enabled:
        if _scheduler is not None:
            _scheduler.uninstall()
            _scheduler = None
        return None
    if _scheduler is None or _scheduler.loop is not loop or loop.__dict__.get("call_soon") != _scheduler.call_soon:
        _scheduler = BatchScheduler(loop)
        loop.call_soon = _scheduler.call_soon  # type: ignore[method-assign, assignment]
    return _scheduler


def _entered(func: Callable[..., None], *args: Any) -> None:
    """Run a JavaScript event's Python callback through the scheduler, when one is installed."""
    scheduler = _scheduler
    if scheduler is not None and scheduler.loop.__dict__.get("call_soon") == scheduler.call_soon:
        scheduler.within(func, *args)
    else:
        func(*args)


def _auto_scheduler() -> None:
    if _scheduler_wanted and (_scheduler is None or _scheduler.loop is not asyncio.get_running_loop()):
        install_scheduler()


class _Rejected(Exception):  # noqa: N818 - a JavaScript rejection, translated where it is caught
    """A JavaScript promise rejected with ``js_error``."""

    def __init__(self, js_error: Any) -> None:
        cause = getattr(js_error, "cause", None)
        text = str(js_error)
        super().__init__(f"{text} ({cause})" if cause is not None else text)
        self.js_error = js_error


class _PromiseBridge:
    """Resolves JavaScript promises straight into plain futures.

    ``await promise`` in Pyodide makes a tracked loop future and two JSPI-"promising"
    once-callables per promise (~300 µs in Chromium). Here one persistent proxy settles every
    promise by a number: one plain JS-to-Python call when the promise settles.
    """

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, Inbox[tuple[int, Any]]] = {}
        self._next = 0
        # both live as long as the module
        self._settle_proxy = create_proxy(functools.partial(_entered, self._settle))
        self._push_proxy = create_proxy(functools.partial(_entered, self._push))
        self._attach = js.Function.new("p", "id", "cb", "p.then((v) => cb(id, v, false), (e) => cb(id, e, true));")
        self._pump = js.Function.new(
            "reader",
            "id",
            "cb",
            """
            const next = () => reader.read().then(
              (c) => { if (c.done) { cb(id, 1, undefined); } else { cb(id, 0, c.value); next(); } },
              (e) => cb(id, 2, e));
            queueMicrotask(next);
            """,
        )

    def stream(self, body: Any) -> Inbox[tuple[int, Any]]:
        """Read a ``ReadableStream`` in JavaScript; its chunks arrive as ``(0, bytes)``, then ``(1, None)``.

        A failed read arrives as ``(2, error)``. One crossing per chunk, no promise per read made
        from Python (aborting the fetch ends the stream with an error).
        """
        inbox: Inbox[tuple[int, Any]] = Inbox()
        self._next += 1
        self._streams[self._next] = inbox
        self._pump(body.getReader(), self._next, self._push_proxy)
        return inbox

    def _push(self, key: int, kind: int, value: Any) -> None:
        inbox = self._streams.get(key)
        if inbox is None:
            return
        if kind != 0:
            del self._streams[key]
        inbox.put_nowait((kind, value.to_bytes() if kind == 0 else value))

    def wait(self, promise: Any) -> asyncio.Future[Any]:
        """A future that gets ``promise``'s value, or raises :class:`_Rejected`."""
        key, future = self.expect()
        self._attach(promise, key, self._settle_proxy)
        return future

    def expect(self) -> tuple[int, asyncio.Future[Any]]:
        """A key and its future, for JavaScript that calls ``settler(key, value, failed)`` itself."""
        future: asyncio.Future[Any] = asyncio.Future(loop=asyncio.get_running_loop())
        self._next += 1
        self._waiting[self._next] = future
        return self._next, future

    @property
    def settler(self) -> Any:
        """The JavaScript function ``(key, value, failed)`` that settles an expected future."""
        return self._settle_proxy

    def _settle(self, key: int, value: Any, failed: bool) -> None:
        future = self._waiting.pop(key, None)
        if future is None or future.done():
            return  # its waiter was cancelled
        if failed:
            future.set_exception(_Rejected(value))
        else:
            future.set_result(value)


_bridge_instance: _PromiseBridge | None = None


class _JSHelpers:
    """Small JavaScript functions that save crossings between JavaScript and Python.

    Each crossing costs a few µs, and a JsProxy of a host object (a ``MessageEvent``, a
    ``Headers``) costs more to make and to read from than the strings inside it. The fetch
    starts from a microtask rather than under the Python stack that asked for it: measured in
    Chromium, a fetch started with wasm frames on the stack completes ~15 % later.
    """

    def __init__(self) -> None:
        self.listen = js.Function.new(
            "target",
            "name",
            "cb",
            "const f = name === 'message' ? (ev) => cb(ev.data) : cb; target.addEventListener(name, f); return f;",
        )
        self.send = js.Function.new("ws", "s", "if (ws.readyState !== 1) return false; ws.send(s); return true;")
        self.fetch = js.Function.new(
            "fetch",
            "url",
            "method",
            "headers",
            "body",
            "limit",
            "key",
            "cb",
            """
            const controller = new AbortController();
            const options = {method, headers: JSON.parse(headers), body, signal: controller.signal, cache: 'no-store'};
            queueMicrotask(() => (fetch || globalThis.fetch)(url, options).then((r) => {
              const h = [];
              r.headers.forEach((v, k) => { h.push(k + ':' + v); });
              const type = r.headers.get('content-type') || '';
              const length = r.headers.get('content-length');
              const hs = h.join(String.fromCharCode(10));
              if (r.body !== null && type.startsWith('application/json') && length !== null && +length <= limit) {
                r.arrayBuffer().then((b) => cb(key, [r.status, hs, r, b], false), (e) => cb(key, e, true));
              } else {
                cb(key, [r.status, hs, r, undefined], false);
              }
            }, (e) => cb(key, e, true)));
            return controller;
            """,
        )


_helpers: _JSHelpers | None = None


def _js_helpers() -> _JSHelpers:
    global _helpers
    if _helpers is None:
        _helpers = _JSHelpers()
    return _helpers


def _bridge() -> _PromiseBridge:
    global _bridge_instance
    if _bridge_instance is None:
        _bridge_instance = _PromiseBridge()
    return _bridge_instance


def _promise(promise: Any) -> asyncio.Future[Any]:
    """Await a JavaScript promise the cheap way (see :class:`_PromiseBridge`)."""
    return _bridge().wait(promise)


_live_proxies = 0


def live_proxy_count() -> int:
    """How many ``create_proxy`` objects this module created and has not destroyed yet."""
    return _live_proxies


def _proxy(func: Callable[..., None]) -> Any:
    global _live_proxies
    _live_proxies += 1
    return create_proxy(func)


def _destroy(proxy: Any) -> None:
    global _live_proxies
    _live_proxies -= 1
    proxy.destroy()


def page_url() -> str | None:
    """The URL of the page or worker running us, or ``None`` (Node has no ``location``)."""
    location = getattr(js.globalThis, "location", None)
    href = getattr(location, "href", None) if location is not None else None
    return str(href) if href else None


def page_origin() -> str | None:
    """The origin of the page or worker running us, or ``None`` when unknown."""
    location = getattr(js.globalThis, "location", None)
    origin = getattr(location, "origin", None) if location is not None else None
    return str(origin) if origin and str(origin) != "null" else None


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


def _describe(exc: JsException | _Rejected) -> str:
    if isinstance(exc, _Rejected):
        return str(exc)
    error = getattr(exc, "js_error", None)
    text = str(exc)
    cause = getattr(error, "cause", None) if error is not None else None
    if cause is not None:
        text = f"{text} ({cause})"
    return text


def translate_fetch_error(
    url: str, exc: JsException | _Rejected, headers: Mapping[str, str] | None = None
) -> NetworkError:
    """Turn a rejected ``fetch`` into the error a caller can act on (naming the ``Mcp-Param-*`` headers sent)."""
    detail = _describe(exc)
    params = sorted(name for name in headers or () if name.lower().startswith("mcp-param-"))
    if params:
        detail += (
            f"; the request carried {', '.join(params)} (SEP-2243), which the server's CORS preflight "
            "must allow too (Access-Control-Allow-Headers)"
        )
    origin = page_origin()
    if origin is None:
        return NetworkError(
            f"request to {url} failed: {detail}. If this runs in a browser, CORS may be the cause: {CORS_HELP}"
        )
    if _origin_of(url) != origin:
        return CORSError(url, detail)
    return NetworkError(f"request to {url} failed: {detail}")


_WHOLE_BODY_LIMIT = 1024 * 1024  # bytes: larger JSON bodies are read in chunks, so size limits apply early


class BrowserResponse:
    """A ``fetch`` response: status, lower-cased headers, and the body as byte chunks.

    Attributes:
        status: The HTTP status code.
        headers: The headers the browser exposes, names lower-cased.
    """

    def __init__(self, url: str, status: int, headers: str, response: Any, controller: Any, body: Any = None) -> None:
        self.url = url
        self.status = status
        self.headers: dict[str, str] = {}
        for line in headers.split("\n") if headers else ():
            name, _, value = line.partition(":")
            self.headers[name.lower()] = value
        self._response = response
        self._controller = controller
        self._whole_body = body  # a small JSON body the fetch helper already read (an ArrayBuffer)
        self._finished = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the body chunk by chunk as it arrives.

        Raises:
            NetworkError: The body read broke off.
        """
        if self._whole_body is not None:
            self._finished = True
            yield self._whole_body.to_bytes()
            return
        body = self._response.body
        if body is None:
            self._finished = True
            return
        chunks = _bridge().stream(body)
        try:
            while True:
                kind, value = await chunks.get()
                if kind == 1:
                    self._finished = True
                    return
                if kind == 2:
                    raise NetworkError(f"reading the response of {self.url} failed: {_Rejected(value)}")
                yield value
        finally:
            if not self._finished:
                self._controller.abort()

    async def aclose(self) -> None:
        """Stop reading: abort the fetch unless the body was read to the end."""
        if not self._finished:
            self._finished = True
            self._controller.abort()


class BrowserHTTPClient:
    """HTTP over the JavaScript ``fetch`` (page, Web Worker or Node).

    Args:
        fetch: A JS fetch function to use instead of the global one (e.g. a
            wrapper adding credentials or logging).
    """

    def __init__(self, fetch: Any = None) -> None:
        self._fetch = fetch

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> BrowserResponse:
        """Start a request and return once the status and headers arrived.

        Raises:
            CORSError: A cross-origin request failed (the browser hides why).
            NetworkError: The request failed before any response.
        """
        _auto_scheduler()
        bridge = _bridge()
        key, future = bridge.expect()
        # One crossing each way, with strings: the options object is built in JavaScript, and the response
        # comes back with its status, its headers as one string and a small JSON body already read.
        text = None if body is None else body.decode("utf-8")
        controller = _js_helpers().fetch(
            self._fetch, url, method, json.dumps(dict(headers)), text, _WHOLE_BODY_LIMIT, key, bridge.settler
        )
        try:
            settled = await future
        except asyncio.CancelledError:
            controller.abort()
            raise
        except (JsException, _Rejected) as exc:
            raise translate_fetch_error(url, exc, headers) from None
        status, header_text, response, whole_body = settled.to_py(depth=1)
        return BrowserResponse(url, int(status), str(header_text), response, controller, whole_body)

    async def aclose(self) -> None:
        """Nothing to release: each request owns its AbortController."""


class BrowserWebSocket:
    """An open browser ``WebSocket`` whose events land in an ``Inbox``, or go to callbacks.

    ``recv`` reads frames one by one; after :meth:`listen` every frame is handed to a callback
    right in the JavaScript event instead, which saves the transport a reader task and one
    event-loop hop per frame.

    Attributes:
        url: The socket URL.
        subprotocol: The subprotocol the server chose ("" for none).
    """

    def __init__(self, url: str, socket: Any) -> None:
        self.url = url
        self.subprotocol = ""
        self._socket = socket
        self._events: Inbox[tuple[str, Any]] = Inbox()
        self._proxies: list[Any] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._closed = False
        self._on_frame: Callable[[str | bytes], None] | None = None
        self._on_close: Callable[[ConnectionClosedError], None] | None = None
        socket.binaryType = "arraybuffer"
        helpers = _js_helpers()
        self._send = helpers.send
        listen = helpers.listen
        for name in ("open", "message", "error", "close"):
            proxy = _proxy(self._listener(name))
            self._proxies.append((name, listen(socket, name, proxy), proxy))

    def _listener(self, name: str) -> Callable[[Any], None]:
        def on_event(event: Any) -> None:
            if name == "message":  # the listener passes the frame itself, not the MessageEvent
                payload: Any = event if isinstance(event, str) else bytes(event.to_bytes())
                if self._on_frame is not None:
                    self._on_frame(payload)
                else:
                    self._events.put_nowait(("message", payload))
            elif name == "close":
                self.close_code = int(event.code)
                self.close_reason = str(event.reason or "")
                self._events.put_nowait(("close", None))
                self._release()
                if self._on_close is not None:
                    on_close, self._on_close = self._on_close, None
                    on_close(self._closed_error())
            else:
                self._events.put_nowait((name, None))

        return functools.partial(_entered, on_event)

    def _release(self) -> None:
        """Detach and destroy every listener proxy (idempotent)."""
        self._closed = True
        proxies, self._proxies = self._proxies, []
        for name, listener, proxy in proxies:
            with contextlib.suppress(Exception):
                self._socket.removeEventListener(name, listener)
            _destroy(proxy)

    async def _wait_open(self) -> None:
        while True:
            kind, _ = await self._events.get()
            if kind == "open":
                self.subprotocol = str(self._socket.protocol or "")
                return
            if kind in ("close", "error"):  # an error while connecting is fatal (Node fires no close after it)
                code = f"close code {self.close_code}" if self.close_code is not None else "error event"
                raise NetworkError(
                    f"could not open a WebSocket to {self.url} ({code}"
                    f"{': ' + self.close_reason if self.close_reason else ''}); the server may be down, "
                    "or may have refused this page's Origin or the requested subprotocol"
                )

    async def recv(self) -> str | bytes:
        """Return the next text (``str``) or binary (``bytes``) message.

        Raises:
            ConnectionClosedError: The socket closed; carries the close code and reason.
        """
        while True:
            if self._closed and self._events.empty():
                raise self._closed_error()
            kind, payload = await self._events.get()
            if kind == "message":
                return payload  # type: ignore[no-any-return]
            if kind == "close":
                self._events.put_nowait(("close", None))  # keep later calls failing
                raise self._closed_error()

    def listen(
        self, on_frame: Callable[[str | bytes], None], on_close: Callable[[ConnectionClosedError], None]
    ) -> None:
        """Hand every frame to ``on_frame`` as it arrives, and the close to ``on_close`` (once).

        Frames that arrived before are handed over first; ``recv`` is not to be used any more.
        """
        while not self._events.empty():
            kind, payload = self._events.get_nowait()
            if kind == "message":
                on_frame(payload)
            elif kind == "close":
                on_close(self._closed_error())
                return
        if self._closed:
            on_close(self._closed_error())
            return
        self._on_frame, self._on_close = on_frame, on_close

    def _closed_error(self) -> ConnectionClosedError:
        return ConnectionClosedError(
            f"WebSocket {self.url} closed (code {self.close_code})", code=self.close_code, reason=self.close_reason
        )

    async def send(self, data: str) -> None:
        """Send one text frame.

        Raises:
            ConnectionClosedError: The socket is not open (a browser would drop the frame silently).
        """
        try:
            sent = not self._closed and self._send(self._socket, data)  # one crossing: check readyState, send
        except JsException as exc:
            raise ConnectionClosedError(f"WebSocket send failed: {exc}") from None
        if not sent:
            raise ConnectionClosedError(f"WebSocket {self.url} is not open", code=self.close_code)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket and destroy its listeners now (no wait for the closing handshake)."""
        if self._closed:
            return
        with contextlib.suppress(JsException):
            self._socket.close(code, reason)
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self._release()
        self._events.put_nowait(("close", None))
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self._closed_error())


async def open_websocket(url: str, protocols: Sequence[str] = ()) -> BrowserWebSocket:
    """Open a WebSocket and wait until it is open.

    Raises:
        NetworkError: The connection could not be opened.
    """
    _auto_scheduler()
    try:
        socket = js.WebSocket.new(url, to_js(list(protocols))) if protocols else js.WebSocket.new(url)
    except JsException as exc:  # e.g. a malformed URL: SyntaxError
        raise NetworkError(f"cannot open a WebSocket to {url}: {exc}") from None
    ws = BrowserWebSocket(url, socket)
    try:
        await ws._wait_open()
    except BaseException:
        await ws.close()
        raise
    return ws


# --- MessagePort: the endpoint of MessagePortTransport ---------------------------------------------

_PORT_LISTEN_JS = """
const onMessage = (ev) => {
  const d = ev.data;
  if (typeof d === 'string') { cb(0, d); return; }
  if (d !== null && typeof d === 'object' && d.type === close) {
    cb(1, typeof d.reason === 'string' ? d.reason : String(d.reason ?? ''));
    return;
  }
  let what = d === null ? 'null' : Array.isArray(d) ? 'an array' : typeof d;
  if (d !== null && typeof d === 'object' && typeof d.type === 'string') what += ` of type ${JSON.stringify(d.type)}`;
  cb(2, `${what}, not a string (MCP over a MessagePort posts JSON text)`);
};
const onError = () => cb(2, 'a message could not be deserialized (messageerror)');
port.addEventListener('message', onMessage);
port.addEventListener('messageerror', onError);
if (typeof port.start === 'function') port.start();
return [onMessage, onError];
"""

_PORT_RELEASE_JS = """
port.removeEventListener('message', listeners[0]);
port.removeEventListener('messageerror', listeners[1]);
// only a MessagePort is closed: a worker's global scope would terminate itself, a Worker has no close
if (typeof MessagePort !== 'undefined' && port instanceof MessagePort) port.close();
"""

_OWNER_WATCH_JS = """
const f = (ev) => {
  let d = '';
  if (ev) {
    d = ev.message || (ev.error && (ev.error.message || String(ev.error))) || '';
    if (ev.filename) d += ` (${ev.filename}:${ev.lineno || 0})`;
  }
  cb(d);
};
target.addEventListener('error', f);
return f;
"""


class _PortHelpers:
    """The JavaScript halves of :class:`BrowserPort`, :class:`BrowserOwner` and :func:`connect_worker`."""

    def __init__(self) -> None:
        self.listen = js.Function.new("port", "close", "cb", _PORT_LISTEN_JS)
        self.release = js.Function.new("port", "listeners", _PORT_RELEASE_JS)
        self.post_close = js.Function.new("port", "type", "reason", "port.postMessage({type, reason});")
        self.watch = js.Function.new("target", "cb", _OWNER_WATCH_JS)
        self.unwatch = js.Function.new("target", "f", "target.removeEventListener('error', f);")
        self.connect = js.Function.new(
            "worker",
            "type",
            "const c = new MessageChannel(); worker.postMessage({type}, [c.port2]); return c.port1;",
        )


_port_helpers_instance: _PortHelpers | None = None


def _port_helpers() -> _PortHelpers:
    global _port_helpers_instance
    if _port_helpers_instance is None:
        _port_helpers_instance = _PortHelpers()
    return _port_helpers_instance


class BrowserPort:
    """A JS ``MessagePort`` (or ``Worker``, or anything with ``postMessage`` and message events) as a ``PortEndpoint``.

    One proxy serves both listeners; the JavaScript side sorts each event into a message's text,
    the peer's close message, or what is wrong with it, so one string crosses per message.
    """

    def __init__(self, port: Any) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop yet: the first transport that has one installs it
            _auto_scheduler()
        self._port = port
        self._proxy: Any = None
        self._listeners: Any = None
        self._deliver: Callable[[Any], None] | None = None
        self._closed = False

    def listen(self, deliver: Callable[[Any], None]) -> None:
        """Add the listeners (and ``start`` a ``MessagePort``): every item goes to ``deliver`` from now on."""
        from .port import PORT_CLOSE_TYPE

        if self._closed or self._proxy is not None:
            return
        self._deliver = deliver
        self._proxy = _proxy(functools.partial(_entered, self._on_event))
        try:
            self._listeners = _port_helpers().listen(self._port, PORT_CLOSE_TYPE, self._proxy)
        except JsException as exc:
            self.close()
            raise TypeError(f"not a MessagePort (no addEventListener?): {exc}") from None

    def _on_event(self, kind: int, value: Any) -> None:
        from .port import PeerClosed, Undeliverable

        deliver = self._deliver
        if deliver is None:
            return
        if kind == 0:
            deliver(str(value))
        elif kind == 1:
            deliver(PeerClosed(str(value)))
        else:
            deliver(Undeliverable(str(value)))

    def post(self, text: str) -> None:
        """``postMessage(text)``.

        Raises:
            ConnectionClosedError: The port is closed here, or ``postMessage`` threw.
        """
        if self._closed:
            raise ConnectionClosedError("the MessagePort is closed")
        try:
            self._port.postMessage(text)
        except JsException as exc:
            raise ConnectionClosedError(f"postMessage failed: {exc}") from None

    def post_close(self, reason: str) -> None:
        """``postMessage({type: "mcp-port-close", reason})``."""
        from .port import PORT_CLOSE_TYPE

        if self._closed:
            return
        try:
            _port_helpers().post_close(self._port, PORT_CLOSE_TYPE, reason)
        except JsException as exc:
            raise ConnectionClosedError(f"postMessage failed: {exc}") from None

    def close(self) -> None:
        """Remove the listeners, destroy their proxy, ``close()`` a ``MessagePort`` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._deliver = None
        proxy, self._proxy = self._proxy, None
        listeners, self._listeners = self._listeners, None
        if listeners is not None:
            with contextlib.suppress(JsException):
                _port_helpers().release(self._port, listeners)
        if proxy is not None:
            _destroy(proxy)


class BrowserOwner:
    """A JS ``Worker`` (or any ``EventTarget``) whose ``error`` event a ``MessagePortTransport`` watches."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def watch(self, on_error: Callable[[str], None]) -> Callable[[], None]:
        """Call ``on_error(description)`` on each ``error`` event; returns the function that stops (idempotent)."""
        helpers = _port_helpers()
        proxy = _proxy(functools.partial(_entered, lambda detail: on_error(str(detail))))
        try:
            listener = helpers.watch(self._target, proxy)
        except JsException as exc:
            _destroy(proxy)
            raise TypeError(f"owner must be a Worker or an EventTarget: {exc}") from None
        done = False

        def unwatch() -> None:
            nonlocal done
            if done:
                return
            done = True
            with contextlib.suppress(JsException):
                helpers.unwatch(self._target, listener)
            _destroy(proxy)

        return unwatch


def connect_worker(worker: Any) -> Any:
    """A new ``MessageChannel``: ``port2`` goes to ``worker`` with ``{"type": "mcp-connect"}``; returns ``port1``."""
    from .port import CONNECT_TYPE

    try:
        return _port_helpers().connect(worker, CONNECT_TYPE)
    except JsException as exc:
        raise ConnectionClosedError(f"could not hand a MessagePort to the worker: {exc}") from None


_WORKERS: dict[str, Any] = {}


def module_worker(url: str) -> Any:
    """The module ``Worker`` running ``url`` for this page: started on first use, shared by later connections.

    A page that knows early it will want the worker (before its own Pyodide has booted) may start it
    and register it in ``globalThis.pyodideTransportWorkers`` (a ``Map`` from the script's absolute
    URL to the ``Worker``): it is adopted instead of starting a second one.

    A worker whose script fails (its ``error`` event) is forgotten, so the next connection starts a
    fresh one; the connections it served end with that error (their transports watch it).

    Raises:
        ConnectionClosedError: The browser refused to start it (a bad URL, a CSP that forbids it).
    """
    known = _WORKERS.get(url)
    if known is not None:
        return known
    started: Any = getattr(js.globalThis, "pyodideTransportWorkers", None)  # a page may start it early (a Map)
    worker: Any = None
    if started is not None and started.has(url):
        worker = started.get(url)
        started.delete(url)
    else:
        try:
            worker = js.Worker.new(url, to_js({"type": "module"}, dict_converter=js.Object.fromEntries))
        except JsException as exc:
            raise ConnectionClosedError(f"could not start the worker {url}: {exc}") from None

    def forget(_event: Any) -> None:
        if _WORKERS.get(url) is worker:
            del _WORKERS[url]
        worker.removeEventListener("error", listener)
        _destroy(listener)

    listener = _proxy(forget)
    worker.addEventListener("error", listener)
    _WORKERS[url] = worker
    return worker


# --- OAuth: storage, the sign-in popup, the redirect fallback --------------------------------------

OAUTH_CHANNEL = "pyodide-transport-oauth"
"""The ``BroadcastChannel`` (and ``postMessage`` type prefix) the site's ``oauth/callback.html`` answers on."""

OAUTH_RETURN_KEY = "pyodide-transport.oauth.return:"
"""``sessionStorage`` key prefix (+ ``state``): the page a redirect-fallback sign-in returns to."""

OAUTH_CALLBACK_KEY = "pyodide-transport.oauth.callback"
"""``sessionStorage`` key: the callback URL a redirect-fallback sign-in came back with (until it is taken)."""


def _text_or_none(value: Any) -> str | None:
    """A JavaScript string as ``str``; ``null`` (``jsnull``) and ``undefined`` as ``None``."""
    return None if value is None or isinstance(value, JsNull) else str(value)


class SessionStorageStore:
    """An OAuth token store in the page's ``sessionStorage``: this tab only, gone when it closes."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None``."""
        return _text_or_none(self._storage.getItem(key))

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        self._storage.setItem(key, value)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._storage.removeItem(key)


def session_storage() -> Any:
    """The page's ``sessionStorage`` as a token store; memory where there is none (Node, some workers)."""
    storage = getattr(js.globalThis, "sessionStorage", None)
    if storage is not None:
        return SessionStorageStore(storage)
    from .oauth import MemoryTokenStore

    return MemoryTokenStore()


_POPUP_JS = """
const popup = globalThis.open(url, 'pyodide-transport-oauth', 'popup,width=520,height=720');
if (!popup) return null;
return new Promise((resolve, reject) => {
  let channel = null, closedAt = 0;
  const accept = (d) => d && d.type === 'pyodide-transport:oauth' && d.state === state && typeof d.url === 'string';
  const done = (settle, value) => {
    globalThis.removeEventListener('message', onMessage);
    if (channel) channel.close();
    clearInterval(timer);
    settle(value);
  };
  const onMessage = (ev) => {
    if (ev.origin === globalThis.location.origin && accept(ev.data)) done(resolve, ev.data.url);
  };
  globalThis.addEventListener('message', onMessage);
  try {
    channel = new BroadcastChannel(name);
    channel.onmessage = (ev) => { if (accept(ev.data)) done(resolve, ev.data.url); };
  } catch (e) {}
  const timer = setInterval(() => {
    if (!popup.closed) { closedAt = 0; return; }
    closedAt = closedAt || Date.now();
    if (Date.now() - closedAt > 1500) done(reject, new Error('the sign-in window was closed'));
  }, 250);
});
"""


def start_popup(url: str, state: str) -> Any:
    """Open the sign-in popup; a promise of the callback URL, or ``None`` when the browser blocked it.

    Call it from a click handler (browsers open popups only shortly after a user gesture). The
    promise rejects when the popup is closed without an answer.
    """
    helper = js.Function.new("url", "state", "name", _POPUP_JS)
    promise = helper(url, state, OAUTH_CHANNEL)
    return None if promise is None or isinstance(promise, JsNull) else promise


async def wait_popup(promise: Any) -> str:
    """The callback URL :func:`start_popup`'s promise resolves with.

    Raises:
        AuthorizationCancelledError: The popup closed without an answer.
    """
    from .errors import AuthorizationCancelledError

    try:
        return str(await promise)
    except JsException as exc:
        raise AuthorizationCancelledError(f"the sign-in did not finish: {exc}") from None


def redirect_to(url: str, state: str) -> None:
    """The fallback: leave this page for the sign-in; the site's callback page brings the user back here."""
    js.sessionStorage.setItem(OAUTH_RETURN_KEY + state, str(js.location.href))
    js.location.assign(url)


def take_callback() -> str | None:
    """The callback URL a redirect-fallback sign-in came back with, once (then forgotten)."""
    storage = getattr(js.globalThis, "sessionStorage", None)
    if storage is None:
        return None
    value = _text_or_none(storage.getItem(OAUTH_CALLBACK_KEY))
    if value is not None:
        storage.removeItem(OAUTH_CALLBACK_KEY)
    return value


async def popup_redirect_handler(prompt: Any) -> str:
    """The default sign-in in a page: a popup, or a full-page redirect when the popup is blocked.

    Raises:
        AuthorizationCancelledError: The popup closed without an answer, or there is no window here.
    """
    from .errors import AuthorizationCancelledError

    if getattr(js.globalThis, "open", None) is None or getattr(js.globalThis, "sessionStorage", None) is None:
        raise AuthorizationCancelledError(
            "signing in needs a browser window (this is a worker or Node): pass OAuth(redirect_handler=...)"
        )
    promise = start_popup(prompt.url, prompt.pending.state)
    if promise is None:
        redirect_to(prompt.url, prompt.pending.state)
        await asyncio.get_running_loop().create_future()  # the page is unloading
    return await wait_popup(promise)


async def follow_redirect(url: str) -> str:
    """GET ``url`` without following a redirect; its resolved ``Location`` ("" when none, or opaque in a page).

    Raises:
        NetworkError: No response came.
    """
    helper = js.Function.new(
        "url",
        "return fetch(url, {redirect: 'manual'}).then((r) => { const l = r.headers.get('location');"
        " return l ? new URL(l, url).href : ''; });",
    )
    try:
        return str(await helper(url))
    except JsException as exc:
        raise translate_fetch_error(url, exc) from None


# --- WebCrypto: AES-256-GCM and PBKDF2 -------------------------------------------------------------


_AES_GCM_JS = """
const algorithm = {name: 'AES-GCM', iv, additionalData: aad, tagLength: 128};
return (encrypt ? crypto.subtle.encrypt(algorithm, key, data) : crypto.subtle.decrypt(algorithm, key, data))
  .then((buffer) => new Uint8Array(buffer));
"""

_IMPORT_KEY_JS = "return crypto.subtle.importKey('raw', raw, {name: 'AES-GCM'}, false, ['encrypt', 'decrypt']);"

_PBKDF2_JS = """
return crypto.subtle.importKey('raw', password, 'PBKDF2', false, ['deriveBits'])
  .then((base) => crypto.subtle.deriveBits({name: 'PBKDF2', hash: 'SHA-256', salt, iterations}, base, 256))
  .then((bits) => new Uint8Array(bits));
"""


def _subtle() -> Any:
    """``crypto.subtle``, or say why it is missing (only secure contexts have it: https, loopback, workers of those)."""
    crypto = getattr(js.globalThis, "crypto", None)
    subtle = getattr(crypto, "subtle", None) if crypto is not None else None
    if subtle is None:
        raise LocalProtocolError(
            "WebCrypto (crypto.subtle) is not available here: the page must be a secure context "
            "(https, or http on a loopback address)"
        )
    return subtle


class WebCryptoAEAD:
    """The :class:`~pyodide_transport.envelope.AEAD` of the browser's ``crypto.subtle`` AES-GCM (one key).

    The raw key is imported once, on first use, as a non-extractable ``CryptoKey``. The promises are
    awaited directly (not through :class:`_PromiseBridge`), so a rejection keeps its ``DOMException``
    name.

    Raises:
        LocalProtocolError: There is no ``crypto.subtle`` (not a secure context).
    """

    def __init__(self, key: bytes) -> None:
        _subtle()
        self._raw: bytes | None = bytes(key)
        self._key: asyncio.Future[Any] | None = None
        self._run = js.Function.new("encrypt", "key", "iv", "aad", "data", _AES_GCM_JS)

    async def _crypto_key(self) -> Any:
        if self._key is None:
            raw, self._raw = self._raw, None
            self._key = asyncio.ensure_future(self._import(raw))
        return await asyncio.shield(self._key)

    @staticmethod
    async def _import(raw: bytes | None) -> Any:
        try:
            return await js.Function.new("raw", _IMPORT_KEY_JS)(to_js(raw))
        except JsException as exc:
            raise LocalProtocolError(f"WebCrypto refused the AES-GCM key: {exc}") from None

    async def _call(self, encrypt: bool, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        key = await self._crypto_key()
        try:
            result = await self._run(encrypt, key, to_js(nonce), to_js(aad), to_js(data))
        except JsException as exc:
            if not encrypt and getattr(exc, "name", "") == "OperationError":
                from .envelope import AUTHENTICATION_FAILED

                raise EnvelopeError(AUTHENTICATION_FAILED) from None
            raise EnvelopeError(f"WebCrypto AES-GCM {'encrypt' if encrypt else 'decrypt'} failed: {exc}") from None
        return bytes(result.to_bytes())

    async def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """``ciphertext || tag`` (WebCrypto appends the 16-byte tag)."""
        return await self._call(True, nonce, plaintext, aad)

    async def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext of ``ciphertext || tag``.

        Raises:
            EnvelopeError: It does not authenticate (WebCrypto's ``OperationError``).
        """
        return await self._call(False, nonce, ciphertext, aad)


async def webcrypto_pbkdf2(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
    """PBKDF2-HMAC-SHA256 by WebCrypto (native speed; Pyodide's ``hashlib`` has no ``pbkdf2_hmac``).

    Raises:
        LocalProtocolError: There is no ``crypto.subtle``, or it refused the parameters.
    """
    _subtle()
    derive = js.Function.new("password", "salt", "iterations", _PBKDF2_JS.replace("256)", f"{length * 8})"))
    try:
        bits = await derive(to_js(password), to_js(salt), iterations)
    except JsException as exc:
        raise LocalProtocolError(f"WebCrypto PBKDF2 failed: {exc}") from None
    return bytes(bits.to_bytes())

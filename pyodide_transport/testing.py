"""Test doubles: test code built on pyodide_transport without a server (httpx's ``MockTransport`` is the model).

Every double takes a *handler*, a plain function (sync or ``async``) that plays
the server. They run anywhere, Pyodide included.

:class:`MockTransport` is a :class:`~pyodide_transport.transport.Transport`;
its handler gets each JSON-RPC message the client sends and returns the reply::

    from pyodide_transport import Client, MCPError
    from pyodide_transport.testing import MockTransport, mcp_handler

    def echo(params):
        return {"content": [{"type": "text", "text": params["arguments"]["message"]}]}

    mock = MockTransport(mcp_handler({"tools/list": {"tools": []}, "tools/call": echo}))
    async with Client(mock, protocol_version="2025-11-25") as client:
        result = await client.call_tool("echo", {"message": "hi"})
    assert mock.requests("tools/call")[0].params["name"] == "echo"

A handler's reply is one of: a result (``dict`` or pydantic model, e.g.
``CallToolResult``); a whole message (``error_response(...)``, or any message
to deliver); an :class:`~pyodide_transport.errors.MCPError` (returned or
raised), answered as a JSON-RPC error; another
:class:`~pyodide_transport.errors.TransportError` (``NetworkError``,
``SessionExpiredError``, ...), raised by ``send`` as a failing wire would; or
``None``: no reply (notifications; a request that never gets an answer, for
timeouts). Any other exception is a bug in the handler and propagates.
:func:`mcp_handler` answers the handshake (``initialize``, or
``server/discover`` with ``versions=("2026-07-28",)``) and routes methods to
replies. The test talks back with :meth:`MockTransport.notify`,
:meth:`MockTransport.push` and ``await`` :meth:`MockTransport.request` (a
server request, e.g. ``elicitation/create``, answered by the client)::

    async def slow_tool(params):
        await mock.notify("notifications/progress", {"progressToken": params["_meta"]["progressToken"], "progress": 1})
        return {"content": []}

``send`` awaits the handler, so the client's timeouts start only once it
returns: to test a timeout, return ``None`` (no reply) rather than sleeping.

:class:`MockHTTP` is an :class:`~pyodide_transport.fetch.HTTPClient` for
:class:`~pyodide_transport.fetch.FetchTransport`; its handler maps each
:class:`MockRequest` (method, URL, lower-cased headers, body) to a
:class:`MockResponse` (status, headers, a body, JSON, SSE events or raw
chunks; an exception among the chunks breaks the body off there)::

    from pyodide_transport.testing import MockHTTP, MockResponse, http_handler

    def handler(request):
        if request.method == "POST" and request.json()["method"] == "initialize":
            return MockResponse(401, headers={"www-authenticate": 'Bearer realm="mcp"'})
        return MockResponse(405)

    transport = FetchTransport("http://mcp.test/mcp", fetch=MockHTTP(handler))
    # or speak MCP over HTTP with a message handler, as a Streamable HTTP server would:
    transport = FetchTransport("http://mcp.test/mcp", fetch=MockHTTP(http_handler(mcp_handler({...}), sse=True)))

The CPython adapters (:class:`~pyodide_transport.cpython.HttpxHTTPClient`,
:func:`~pyodide_transport.cpython.websockets_connect`) are re-exported here for
tests against real servers; they load on first access (never under Pyodide).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import itertools
import json as jsonlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from mcp_types import SERVER_INFO_META_KEY
from mcp_types.jsonrpc import (
    METHOD_NOT_FOUND,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from .errors import ConnectionClosedError, LocalProtocolError, MCPError
from .messages import (
    TransportMessage,
    decode_message,
    encode_message,
    error_response,
    make_notification,
    make_request,
    make_response,
)
from .sse import encode_sse_event

if TYPE_CHECKING:
    from .cpython import HttpxHTTPClient, websockets_connect

__all__ = [
    "HTTPHandler",
    "HttpxHTTPClient",
    "MessageHandler",
    "MockHTTP",
    "MockRequest",
    "MockResponse",
    "MockTransport",
    "Reply",
    "http_handler",
    "mcp_handler",
    "websockets_connect",
]

Reply: TypeAlias = "Mapping[str, Any] | BaseModel | TransportMessage | BaseException | None"
"""What a message handler returns (see the module docstring)."""

MessageHandler: TypeAlias = Callable[[TransportMessage], "Reply | Awaitable[Reply]"]
"""Plays the server for :class:`MockTransport`: gets each message the client sends."""

Route: TypeAlias = Callable[[dict[str, Any]], "Reply | Awaitable[Reply]"]
"""An :func:`mcp_handler` route as a function: gets the request's (or notification's) params."""

_MESSAGE_TYPES = (JSONRPCRequest, JSONRPCNotification, JSONRPCResponse, JSONRPCError)


async def _call(handler: Callable[[Any], Any], arg: Any) -> Any:
    """Run a sync or async handler; an ``MCPError`` it raises is its reply."""
    try:
        reply = handler(arg)
        if inspect.isawaitable(reply):
            reply = await reply
    except MCPError as exc:
        return exc
    return reply


def _describe(message: TransportMessage) -> str:
    method = getattr(message, "method", None)
    return f"{type(message).__name__} {method}" if method else type(message).__name__


def _to_message(message: TransportMessage, reply: Any) -> TransportMessage | None:
    """The message a reply stands for; raise the transport error it stands for.

    Raises:
        TransportError: The reply is one (the wire fails).
        LocalProtocolError: The reply makes no sense for ``message``.
    """
    if reply is None:
        return None
    if isinstance(reply, _MESSAGE_TYPES):
        return reply
    if isinstance(reply, BaseException):
        if isinstance(reply, MCPError) and isinstance(message, JSONRPCRequest):
            return error_response(message.id, reply.code, reply.error_message, reply.data)
        raise reply
    if not isinstance(message, JSONRPCRequest):
        raise LocalProtocolError(
            f"the mock handler returned a result for a {_describe(message)}: only requests get one"
        )
    if isinstance(reply, BaseModel):
        reply = reply.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(reply, Mapping):
        return make_response(message.id, dict(reply))
    raise LocalProtocolError(
        f"the mock handler returned {reply!r} for {_describe(message)}: "
        "expected a dict, a model, a message, an exception or None"
    )


# --- MockTransport --------------------------------------------------------------------------------


class _Closed:
    """Marker in the inbox: the transport is closed."""


class MockTransport:
    """A :class:`~pyodide_transport.transport.Transport` whose server is ``handler``.

    Args:
        handler: Gets every message the client sends (except answers to
            :meth:`request`) and returns the reply. ``None``: nothing is ever answered.

    Attributes:
        sent: Every message the client sent, in order.
    """

    transport_type = "mock"

    def __init__(self, handler: MessageHandler | None = None) -> None:
        self.handler = handler
        self.sent: list[TransportMessage] = []
        self._inbox: asyncio.Queue[TransportMessage | _Closed] = asyncio.Queue()
        self._closed = False
        self._ids = itertools.count(1)
        self._waiting: dict[RequestId, asyncio.Future[JSONRPCResponse | JSONRPCError]] = {}

    def is_connected(self) -> bool:
        """Whether :meth:`close` has not been called."""
        return not self._closed

    async def send(self, message: TransportMessage) -> None:
        """Record ``message``, run the handler and queue its reply for :meth:`receive`.

        Raises:
            ConnectionClosedError: The transport is closed.
            TransportError: The handler returned or raised one (other than ``MCPError``).
            LocalProtocolError: The handler's reply makes no sense for ``message``.
        """
        if self._closed:
            raise ConnectionClosedError("the mock transport is closed")
        self.sent.append(message)
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id in self._waiting:
            waiter = self._waiting.pop(message.id)
            if not waiter.done():
                waiter.set_result(message)
            return
        if self.handler is None:
            return
        reply = _to_message(message, await _call(self.handler, message))
        if reply is not None and not self._closed:
            self._inbox.put_nowait(reply)

    async def receive(self) -> TransportMessage:
        """The next message for the client (replies and pushed messages, in order).

        Raises:
            ConnectionClosedError: Closed, and every queued message was received.
        """
        item = await self._inbox.get()
        if isinstance(item, _Closed):
            self._inbox.put_nowait(item)
            raise ConnectionClosedError("the mock transport is closed")
        return item

    async def close(self) -> None:
        """Close: :meth:`receive` fails once drained, :meth:`request` waits fail. Idempotent.

        A test calls it to simulate the server going away.
        """
        if self._closed:
            return
        self._closed = True
        self._inbox.put_nowait(_Closed())
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionClosedError("the mock transport closed before the client answered"))

    # -- the server's side -------------------------------------------------------------------------

    def push(self, message: TransportMessage) -> None:
        """Deliver ``message`` to the client as if the server sent it.

        Raises:
            ConnectionClosedError: The transport is closed.
        """
        if self._closed:
            raise ConnectionClosedError("the mock transport is closed")
        self._inbox.put_nowait(message)

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        """Send the client a notification (``notifications/message``, ``.../progress``, ...)."""
        self.push(make_notification(method, dict(params) if params is not None else None))

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send the client a request (``elicitation/create``, ``roots/list``, ...) and return its result.

        Raises:
            MCPError: The client answered with a JSON-RPC error.
            ConnectionClosedError: The transport closed first.
        """
        request_id = f"mock-{next(self._ids)}"
        waiter: asyncio.Future[JSONRPCResponse | JSONRPCError] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        try:
            self.push(make_request(request_id, method, dict(params) if params is not None else None))
            answer = await waiter
        finally:
            self._waiting.pop(request_id, None)
        if isinstance(answer, JSONRPCError):
            raise MCPError(answer.error.code, answer.error.message, answer.error.data)
        return dict(answer.result)

    # -- what the client sent ----------------------------------------------------------------------

    def requests(self, method: str | None = None) -> list[JSONRPCRequest]:
        """The requests the client sent (of one ``method``, or all)."""
        return [m for m in self.sent if isinstance(m, JSONRPCRequest) and method in (None, m.method)]

    def notifications(self, method: str | None = None) -> list[JSONRPCNotification]:
        """The notifications the client sent (of one ``method``, or all)."""
        return [m for m in self.sent if isinstance(m, JSONRPCNotification) and method in (None, m.method)]


_CAPABILITY_OF = {
    "tools/": "tools",
    "resources/": "resources",
    "prompts/": "prompts",
    "logging/": "logging",
    "completion/": "completions",
}


def mcp_handler(
    routes: Mapping[str, Reply | Route],
    *,
    versions: Sequence[str] = HANDSHAKE_PROTOCOL_VERSIONS,
    server_info: Mapping[str, Any] | None = None,
    capabilities: Mapping[str, Any] | None = None,
    instructions: str | None = None,
) -> Callable[[TransportMessage], Awaitable[Reply]]:
    """A message handler that plays a small MCP server: the handshake, ``ping``, and ``routes``.

    Args:
        routes: ``{method: reply}`` or ``{method: function(params) -> reply}``
            (sync or async), for requests and notifications alike; a route
            overrides the built-in answer of that method. A request with no
            route gets ``METHOD_NOT_FOUND``; a notification with none, nothing.
        versions: The protocol versions the server speaks. With a handshake
            version, ``initialize`` agrees on the client's offer (else the newest
            spoken); with a modern one, ``server/discover`` lists them all.
        server_info: ``serverInfo`` (default ``{"name": "mock-server", "version": "0"}``).
        capabilities: The server capabilities (default: derived from the routes,
            e.g. ``tools/call`` declares ``tools``).
        instructions: Sent in the handshake when given.
    """
    info = dict(server_info or {"name": "mock-server", "version": "0"})
    caps = dict(capabilities) if capabilities is not None else {}
    if capabilities is None:
        for method in routes:
            for prefix, name in _CAPABILITY_OF.items():
                if method.startswith(prefix):
                    caps[name] = {}
    handshake = [v for v in HANDSHAKE_PROTOCOL_VERSIONS if v in versions]
    modern = [v for v in MODERN_PROTOCOL_VERSIONS if v in versions]

    def initialize(params: dict[str, Any]) -> Reply:
        if not handshake:
            return MCPError(METHOD_NOT_FOUND, "Method not found: initialize")
        offered = params.get("protocolVersion")
        result = {
            "protocolVersion": offered if offered in handshake else handshake[-1],
            "capabilities": caps,
            "serverInfo": info,
        }
        return {**result, "instructions": instructions} if instructions is not None else result

    def discover(params: dict[str, Any]) -> Reply:
        if not modern:
            return MCPError(METHOD_NOT_FOUND, "Method not found: server/discover")
        result = {"supportedVersions": list(versions), "capabilities": caps, "_meta": {SERVER_INFO_META_KEY: info}}
        return {**result, "instructions": instructions} if instructions is not None else result

    builtin: dict[str, Reply | Route] = {"initialize": initialize, "server/discover": discover, "ping": {}}
    table = {**builtin, **routes}

    async def handle(message: TransportMessage) -> Reply:
        if not isinstance(message, JSONRPCRequest | JSONRPCNotification):
            return None  # the client's answer to a request pushed without MockTransport.request
        if message.method not in table:
            if isinstance(message, JSONRPCNotification):
                return None
            return MCPError(METHOD_NOT_FOUND, f"Method not found: {message.method}")
        route = table[message.method]
        if callable(route):
            reply: Reply = await _call(route, dict(message.params or {}))
            return reply
        return route

    return handle


# --- MockHTTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MockRequest:
    """One request ``FetchTransport`` made: method, URL, headers (names lower-cased), body."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None

    def json(self) -> Any:
        """The body decoded as JSON (``None`` without a body)."""
        return jsonlib.loads(self.body) if self.body else None

    def message(self) -> TransportMessage:
        """The body as the JSON-RPC message it carries."""
        if not self.body:
            raise LocalProtocolError(f"{self.method} {self.url} has no body")
        return decode_message(self.body)


SSEItem: TypeAlias = "TransportMessage | Mapping[str, Any] | bytes | BaseException"
"""One item of ``MockResponse(sse=...)``: a message (sent as ``data:``), raw SSE bytes, or an error that cuts
the stream there."""

_NO_JSON = object()


def _json_text(value: Any) -> str:
    if isinstance(value, _MESSAGE_TYPES):
        return encode_message(value)
    if isinstance(value, BaseModel):
        return value.model_dump_json(by_alias=True, exclude_none=True)
    return jsonlib.dumps(value)


class MockResponse:
    """A made-up :class:`~pyodide_transport.fetch.HTTPResponse`: what a :class:`MockHTTP` handler returns.

    Give at most one body: ``content`` (bytes or text), ``json`` (any JSON
    value, message or model), ``sse`` (events, each sent as one chunk) or
    ``chunks`` (raw bytes, sync or async; an exception item is raised there,
    as a connection that breaks off). ``Content-Type`` is set to match unless
    ``headers`` name one.

    Attributes:
        closed: Whether the reader released the response.
    """

    def __init__(
        self,
        status: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = _NO_JSON,
        sse: Iterable[SSEItem] | None = None,
        chunks: Iterable[bytes | BaseException] | AsyncIterable[bytes] | None = None,
    ) -> None:
        given = [content is not None, json is not _NO_JSON, sse is not None, chunks is not None]
        if sum(given) > 1:
            raise LocalProtocolError("MockResponse takes one body: content, json, sse or chunks")
        self.status = status
        self.headers = {name.lower(): value for name, value in (headers or {}).items()}
        self.closed = False
        self._body: Iterable[bytes | BaseException] | AsyncIterable[bytes] = ()
        kind = None
        if content is not None:
            self._body = [content.encode() if isinstance(content, str) else content]
        elif json is not _NO_JSON:
            self._body, kind = [_json_text(json).encode()], "application/json"
        elif sse is not None:
            self._body, kind = [self._event(item) for item in sse], "text/event-stream"
        elif chunks is not None:
            self._body = chunks
        if kind is not None:
            self.headers.setdefault("content-type", kind)

    @staticmethod
    def _event(item: SSEItem) -> bytes | BaseException:
        if isinstance(item, bytes | BaseException):
            return item
        return encode_sse_event(_json_text(item))

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the body; raise the exception items where they stand."""
        if isinstance(self._body, AsyncIterable):
            async for chunk in self._body:
                if self.closed:
                    return
                yield chunk
            return
        for item in self._body:
            if self.closed:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        """Stop the body."""
        self.closed = True


HTTPHandler: TypeAlias = Callable[[MockRequest], Any]
"""Plays the server for :class:`MockHTTP`: returns (or awaits to) a :class:`MockResponse`, an ``int`` status,
a JSON-able ``dict`` / message / model (a 200 JSON response), ``None`` (202) or a ``TransportError`` to raise."""


class MockHTTP:
    """An :class:`~pyodide_transport.fetch.HTTPClient` whose server is ``handler``.

    Attributes:
        requests: Every request made, in order.
        closed: Whether ``aclose`` was called (``FetchTransport.close`` does).
    """

    def __init__(self, handler: HTTPHandler) -> None:
        self.handler = handler
        self.requests: list[MockRequest] = []
        self.closed = False

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> MockResponse:
        """Record the request and answer it with the handler.

        Raises:
            TransportError: The handler returned or raised one (e.g. ``NetworkError``: no response).
            LocalProtocolError: The handler returned something that is no response.
        """
        request = MockRequest(method, url, {k.lower(): v for k, v in headers.items()}, body)
        self.requests.append(request)
        reply = self.handler(request)
        if inspect.isawaitable(reply):
            reply = await reply
        if isinstance(reply, MockResponse):
            return reply
        if isinstance(reply, BaseException):
            raise reply
        if reply is None:
            return MockResponse(202)
        if isinstance(reply, int):
            return MockResponse(reply)
        if isinstance(reply, Mapping | BaseModel):
            return MockResponse(200, json=reply)
        raise LocalProtocolError(f"the mock HTTP handler returned {reply!r}, not a MockResponse")

    async def aclose(self) -> None:
        """Mark the client closed."""
        self.closed = True


def http_handler(
    handler: MessageHandler, *, session_id: str | None = "mock-session", sse: bool = False
) -> Callable[[MockRequest], Awaitable[MockResponse]]:
    """Serve a message handler over Streamable HTTP, for :class:`MockHTTP`.

    Each POST's message goes to ``handler`` (same replies as for
    :class:`MockTransport`): a reply comes back as JSON (or one SSE event with
    ``sse=True``), no reply as 202. The ``initialize`` response carries
    ``Mcp-Session-Id: session_id`` (``None``: a stateless server). GET (the
    standalone stream) answers 405, DELETE 200.
    """

    async def serve(request: MockRequest) -> MockResponse:
        if request.method == "GET":
            return MockResponse(405)
        if request.method == "DELETE":
            return MockResponse(200)
        message = request.message()
        reply = _to_message(message, await _call(handler, message))
        if reply is None:
            return MockResponse(202)
        headers = {}
        if session_id is not None and isinstance(message, JSONRPCRequest) and message.method == "initialize":
            headers["mcp-session-id"] = session_id
        if sse:
            return MockResponse(200, headers=headers, sse=[reply])
        return MockResponse(200, headers=headers, json=reply)

    return serve


# --- the CPython adapters, for tests against real servers -----------------------------------------

_CPYTHON_NAMES = frozenset({"HttpxHTTPClient", "websockets_connect"})


def __getattr__(name: str) -> Any:
    """Load the CPython adapters on first access, so this module imports under Pyodide too."""
    if name in _CPYTHON_NAMES:
        value = getattr(importlib.import_module(".cpython", __package__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

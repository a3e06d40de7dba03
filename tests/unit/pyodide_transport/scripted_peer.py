"""A scripted MCP server peer for Client tests, over ``InMemoryTransport.create_pair()``.

The peer answers each request from a handler table; tests override entries to
script odd behaviour (errors, silence, progress, server-to-client requests,
input-required results). ``FaultyTransport`` wraps the client's end to
simulate what only real wires do: HTTP status errors, session expiry,
malformed input. No pytest imports: this file also runs inside Pyodide.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from mcp_types import (
    CallToolResult,
    CompleteResult,
    Completion,
    DiscoverResult,
    GetPromptResult,
    Implementation,
    InitializeResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    Prompt,
    PromptMessage,
    PromptsCapability,
    ReadResourceResult,
    Resource,
    ResourcesCapability,
    ResourceTemplate,
    ServerCapabilities,
    TextContent,
    TextResourceContents,
    Tool,
    ToolsCapability,
)
from mcp_types.jsonrpc import METHOD_NOT_FOUND, JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from pyodide_transport.errors import SessionExpiredError
from pyodide_transport.memory import InMemoryTransport
from pyodide_transport.messages import (
    TransportMessage,
    error_response,
    make_notification,
    make_request,
    make_response,
)

SERVER_INFO = Implementation(name="scripted-peer", version="1.0")
NO_REPLY: Any = object()
"""Return this from a handler to never answer the request."""


class PeerError(Exception):
    """Raise in a handler to answer with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class Ctx:
    """What a handler gets: the request, its params, and ways to talk back."""

    def __init__(self, peer: ScriptedPeer, request: JSONRPCRequest) -> None:
        self.peer = peer
        self.request = request
        self.params: dict[str, Any] = dict(request.params or {})
        self.meta: dict[str, Any] = dict(self.params.get("_meta") or {})

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        params: dict[str, Any] = {"progressToken": self.meta["progressToken"], "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.peer.notify("notifications/progress", params)

    async def ask(self, method: str, params: dict[str, Any] | None = None) -> JSONRPCResponse | JSONRPCError:
        return await self.peer.ask(method, params)


Handler = Callable[[Ctx], Awaitable[Any]]


class ScriptedPeer:
    """An MCP server that answers from a handler table.

    Args:
        transport: The server end of an in-memory pair.
        versions: Protocol versions the server speaks. Handshake versions make
            it answer ``initialize``; modern versions make it answer
            ``server/discover`` (otherwise discover gets METHOD_NOT_FOUND).
        tools: Tool names offered, in pages of ``page_size``.
    """

    def __init__(
        self,
        transport: InMemoryTransport,
        *,
        versions: Iterable[str] = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS),
        tools: Iterable[str] = ("echo", "add", "slow"),
        page_size: int = 2,
        instructions: str | None = "use the echo tool",
    ) -> None:
        self.transport = transport
        self.versions = tuple(versions)
        self.tools = tuple(tools)
        self.page_size = page_size
        self.instructions = instructions
        self.received: list[TransportMessage] = []
        self.handlers: dict[str, Handler] = {
            "initialize": self._initialize,
            "server/discover": self._discover,
            "ping": self._empty,
            "tools/list": self._tools_list,
            "tools/call": self._tools_call,
            "resources/list": self._resources_list,
            "resources/read": self._resources_read,
            "resources/templates/list": self._templates_list,
            "resources/subscribe": self._empty,
            "resources/unsubscribe": self._empty,
            "prompts/list": self._prompts_list,
            "prompts/get": self._prompts_get,
            "completion/complete": self._complete,
            "logging/setLevel": self._empty,
            "subscriptions/listen": self._listen,
        }
        self._ids = itertools.count(1)
        self._asks: dict[str, asyncio.Future[JSONRPCResponse | JSONRPCError]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None

    # ----------------------------------------------------------- lifecycle

    async def __aenter__(self) -> ScriptedPeer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        self._reader = asyncio.ensure_future(self._read())

    async def stop(self) -> None:
        await self.transport.close()
        for task in (*self._tasks, self._reader):
            if task is not None:
                task.cancel()
        pending = [t for t in (*self._tasks, self._reader) if t is not None]
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    # --------------------------------------------------------- inspection

    def requests(self, method: str | None = None) -> list[JSONRPCRequest]:
        return [m for m in self.received if isinstance(m, JSONRPCRequest) and method in (None, m.method)]

    def notifications(self, method: str | None = None) -> list[JSONRPCNotification]:
        return [m for m in self.received if isinstance(m, JSONRPCNotification) and method in (None, m.method)]

    def responses(self) -> list[JSONRPCResponse | JSONRPCError]:
        return [m for m in self.received if isinstance(m, JSONRPCResponse | JSONRPCError)]

    async def wait_for(self, predicate: Callable[[], object], what: str = "condition", limit: float = 5.0) -> None:
        """Poll until ``predicate()`` is true (bounded in time)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while not predicate():
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.001)

    # ------------------------------------------------------------ sending

    async def send(self, message: TransportMessage) -> None:
        await self.transport.send(message)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self.transport.send(make_notification(method, params))

    async def ask(self, method: str, params: dict[str, Any] | None = None) -> JSONRPCResponse | JSONRPCError:
        """Send a server-to-client request and wait for the client's response."""
        request_id = f"s-{next(self._ids)}"
        future: asyncio.Future[JSONRPCResponse | JSONRPCError] = asyncio.get_running_loop().create_future()
        self._asks[request_id] = future
        await self.transport.send(make_request(request_id, method, params))
        try:
            return await future
        finally:
            self._asks.pop(request_id, None)

    # ------------------------------------------------------------ reading

    async def _read(self) -> None:
        while True:
            try:
                message = await self.transport.receive()
            except Exception:
                return
            self.received.append(message)
            if isinstance(message, JSONRPCRequest):
                task = asyncio.ensure_future(self._serve(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(message, JSONRPCResponse | JSONRPCError) and isinstance(message.id, str):
                future = self._asks.get(message.id)
                if future is not None and not future.done():
                    future.set_result(message)

    async def _serve(self, request: JSONRPCRequest) -> None:
        handler = self.handlers.get(request.method)
        reply: TransportMessage
        try:
            if handler is None:
                raise PeerError(METHOD_NOT_FOUND, f"Method not found: {request.method}")
            result = await handler(Ctx(self, request))
        except PeerError as exc:
            reply = error_response(request.id, exc.code, exc.message, exc.data)
        except asyncio.CancelledError:
            return
        else:
            if result is NO_REPLY:
                return
            reply = make_response(request.id, dump(result) if isinstance(result, BaseModel) else result)
        with contextlib.suppress(Exception):  # the client may be gone
            await self.transport.send(reply)

    # ------------------------------------------------------ default script

    def capabilities(self) -> ServerCapabilities:
        return ServerCapabilities(
            tools=ToolsCapability(list_changed=True),
            resources=ResourcesCapability(subscribe=True, list_changed=True),
            prompts=PromptsCapability(list_changed=True),
        )

    async def _initialize(self, ctx: Ctx) -> Any:
        handshake = [v for v in self.versions if v in HANDSHAKE_PROTOCOL_VERSIONS]
        if not handshake:
            raise PeerError(METHOD_NOT_FOUND, "Method not found: initialize")
        offered = ctx.params.get("protocolVersion")
        chosen = offered if offered in handshake else handshake[-1]
        return InitializeResult(
            protocol_version=chosen,
            capabilities=self.capabilities(),
            server_info=SERVER_INFO,
            instructions=self.instructions,
        )

    async def _discover(self, ctx: Ctx) -> Any:
        if not any(v in MODERN_PROTOCOL_VERSIONS for v in self.versions):
            raise PeerError(METHOD_NOT_FOUND, "Method not found: server/discover")
        return DiscoverResult(
            supported_versions=list(self.versions),
            capabilities=self.capabilities(),
            instructions=self.instructions,
            _meta={"io.modelcontextprotocol/serverInfo": dump(SERVER_INFO)},
        )

    async def _empty(self, ctx: Ctx) -> Any:
        return {}

    def _page(self, ctx: Ctx, items: tuple[str, ...]) -> tuple[list[str], str | None]:
        start = int(ctx.params.get("cursor") or 0)
        end = start + self.page_size
        return list(items[start:end]), (str(end) if end < len(items) else None)

    async def _tools_list(self, ctx: Ctx) -> Any:
        names, cursor = self._page(ctx, self.tools)
        tools = [Tool(name=n, input_schema={"type": "object"}) for n in names]
        return ListToolsResult(tools=tools, next_cursor=cursor)

    async def _tools_call(self, ctx: Ctx) -> Any:
        name = ctx.params.get("name")
        arguments = ctx.params.get("arguments") or {}
        if name not in self.tools:
            raise PeerError(-32602, f"Unknown tool: {name}", {"tool": name})
        text = f"{name}:{sorted(arguments.items())}"
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=arguments or None)

    async def _resources_list(self, ctx: Ctx) -> Any:
        uris, cursor = self._page(ctx, ("file:///a", "file:///b", "file:///c"))
        return ListResourcesResult(resources=[Resource(uri=u, name=u[-1]) for u in uris], next_cursor=cursor)

    async def _resources_read(self, ctx: Ctx) -> Any:
        uri = ctx.params["uri"]
        return ReadResourceResult(contents=[TextResourceContents(uri=uri, text=f"contents of {uri}")])

    async def _templates_list(self, ctx: Ctx) -> Any:
        return ListResourceTemplatesResult(
            resource_templates=[ResourceTemplate(uri_template="file:///{name}", name="files")]
        )

    async def _prompts_list(self, ctx: Ctx) -> Any:
        names, cursor = self._page(ctx, ("greet", "summarize", "translate"))
        return ListPromptsResult(prompts=[Prompt(name=n) for n in names], next_cursor=cursor)

    async def _prompts_get(self, ctx: Ctx) -> Any:
        args = ctx.params.get("arguments") or {}
        text = f"{ctx.params['name']} {args.get('who', 'nobody')}"
        return GetPromptResult(messages=[PromptMessage(role="user", content=TextContent(type="text", text=text))])

    async def _complete(self, ctx: Ctx) -> Any:
        value = ctx.params["argument"]["value"]
        context = (ctx.params.get("context") or {}).get("arguments") or {}
        values = [f"{value}{suffix}" for suffix in ("1", "2")] + [f"ctx={k}" for k in sorted(context)]
        return CompleteResult(completion=Completion(values=values, total=len(values)))

    async def _listen(self, ctx: Ctx) -> Any:
        await self.notify(
            "notifications/subscriptions/acknowledged", {"notifications": ctx.params.get("notifications", {})}
        )
        return NO_REPLY


class FaultyTransport:
    """Wraps the client's end of a pair to simulate what real wires do.

    * ``send_error(message)`` returning an exception makes ``send`` raise it
      (e.g. ``HTTPStatusError(404)`` for ``server/discover``).
    * ``expire_session()``: every request but ``initialize`` raises
      ``SessionExpiredError`` (never delivered) until an ``initialize`` is sent.
    * ``inject(exc)``: the next ``receive()`` raises ``exc``.
    """

    transport_type = "faulty-memory"

    def __init__(
        self,
        inner: InMemoryTransport,
        send_error: Callable[[TransportMessage], Exception | None] | None = None,
    ) -> None:
        self.inner = inner
        self.send_error = send_error
        self.expired = False
        self.expired_sends = 0
        self._injected: asyncio.Queue[Exception] = asyncio.Queue()
        self._pending_receive: asyncio.Task[TransportMessage] | None = None

    def expire_session(self) -> None:
        self.expired = True

    def inject(self, exc: Exception) -> None:
        self._injected.put_nowait(exc)

    async def send(self, message: TransportMessage) -> None:
        if self.send_error is not None:
            exc = self.send_error(message)
            if exc is not None:
                raise exc
        if isinstance(message, JSONRPCRequest):
            if message.method == "initialize":
                self.expired = False
            elif self.expired:
                await asyncio.sleep(0)  # let concurrent senders hit the expiry too
                self.expired_sends += 1
                raise SessionExpiredError("session expired (HTTP 404)")
        await self.inner.send(message)

    async def receive(self) -> TransportMessage:
        if self._pending_receive is None:
            self._pending_receive = asyncio.ensure_future(self.inner.receive())
        injected = asyncio.ensure_future(self._injected.get())
        try:
            done, _ = await asyncio.wait({self._pending_receive, injected}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            injected.cancel()
            raise
        if injected in done:
            raise injected.result()
        injected.cancel()
        task, self._pending_receive = self._pending_receive, None
        return task.result()

    async def close(self) -> None:
        if self._pending_receive is not None:
            self._pending_receive.cancel()
        await self.inner.close()

    def is_connected(self) -> bool:
        return self.inner.is_connected()


Era = Literal["modern", "handshake"]

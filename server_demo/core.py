"""The transport-agnostic server core: a registry of features and a per-connection session.

:class:`Server` is the builder: name, version, instructions, tools (JSON
Schema input, optional output schema), resources and templates, prompts and
completions. :class:`ServerSession` turns incoming JSON-RPC messages into
responses and notifications for one connection; it never touches a socket.
Whatever it wants to send goes to a *sink* together with the id of the
request it belongs to (``None`` for unrelated messages), so an HTTP adapter
can route each message to the right SSE stream while a WebSocket or stdio
adapter just writes it out.

What a request means (era, version, parsed params, how its result is
serialized, which error answers it) is decided by the pure
:mod:`server_demo.dispatch`; the session runs the handlers it picks.

Both protocol eras are served: the ``initialize`` handshake (2024-11-05 …
2025-11-25) and the 2026-07-28 per-request envelope (``server/discover``,
``_meta`` carrying version and capabilities, input-required results instead
of server-to-client requests, ``subscriptions/listen``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

import mcp_types as mt
from mcp_types.jsonrpc import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND
from pydantic import BaseModel, ValidationError

from pyodide_transport.errors import ConnectionClosedError, TransportError
from pyodide_transport.messages import (
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    error_response,
    make_notification,
    make_request,
    make_response,
)
from pyodide_transport.transport import Transport
from pyodide_transport.wire import SUPPORTED_PROTOCOL_VERSIONS

from .dispatch import (
    Era,
    Initialize,
    Reply,
    SessionState,
    TextToolResult,
    check_tool_arguments,
    duplicate_request_error,
    error_for,
    finish_result,
    missing_capability_error,
    resource_not_found_error,
    route_request,
    serialize_result,
)
from .errors import InputRequired, NoBackChannelError, RequestError

__all__ = [
    "LOG_LEVELS",
    "CompletionHandler",
    "MessageSink",
    "PromptDef",
    "PromptHandler",
    "RequestContext",
    "ResourceDef",
    "ResourceReader",
    "ServeResult",
    "Server",
    "ServerSession",
    "TemplateDef",
    "TemplateReader",
    "ToolDef",
    "ToolHandler",
    "ToolReturn",
    "serve_transport",
]

logger = logging.getLogger("server_demo")

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""Log levels, least to most severe."""

ToolReturn: TypeAlias = mt.CallToolResult | list[mt.ContentBlock] | str
ToolHandler: TypeAlias = Callable[["RequestContext", dict[str, Any]], Awaitable[ToolReturn]]
ResourceReader: TypeAlias = Callable[["RequestContext"], Awaitable[str | bytes]]
TemplateReader: TypeAlias = Callable[["RequestContext", str, dict[str, str]], Awaitable[str | bytes]]
PromptHandler: TypeAlias = Callable[["RequestContext", dict[str, str]], Awaitable[list[mt.PromptMessage]]]
CompletionHandler: TypeAlias = Callable[[str, dict[str, str]], Awaitable[list[str]]]
MessageSink: TypeAlias = Callable[[TransportMessage, RequestId | None], Awaitable[None]]
"""Where a session sends a message; the second argument is the request it belongs to, if any."""
ServeResult: TypeAlias = BaseModel
ModelT = TypeVar("ModelT", bound=BaseModel)
_SUBSCRIPTION_ID_META_KEY = "io.modelcontextprotocol/subscriptionId"
WatchCallback: TypeAlias = Callable[[str], Awaitable[None]]

_NO_CAPABILITIES = mt.ClientCapabilities()
"""What a session assumes before ``initialize`` (shared: sessions replace it, never change it)."""

_INPUT_REQUEST_MODELS: dict[str, type[mt.CreateMessageRequest | mt.ListRootsRequest | mt.ElicitRequest]] = {
    "sampling/createMessage": mt.CreateMessageRequest,
    "roots/list": mt.ListRootsRequest,
    "elicitation/create": mt.ElicitRequest,
}


@dataclass
class ToolDef:
    """A registered tool."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: ToolHandler
    output_schema: dict[str, Any] | None = None
    title: str | None = None
    annotations: mt.ToolAnnotations | None = None
    meta: dict[str, Any] | None = None  # the tool's ``_meta`` (e.g. MCP Apps' ``ui.resourceUri``)

    def to_model(self) -> mt.Tool:
        """The ``tools/list`` entry."""
        return mt.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            annotations=self.annotations,
            _meta=self.meta,
        )


@dataclass
class ResourceDef:
    """A registered static resource."""

    uri: str
    name: str
    description: str
    mime_type: str
    reader: ResourceReader
    title: str | None = None
    meta: dict[str, Any] | None = None  # ``_meta`` of the list entry and of the contents read (``ui.csp``, ...)

    def to_model(self) -> mt.Resource:
        """The ``resources/list`` entry."""
        return mt.Resource(
            uri=self.uri,
            name=self.name,
            title=self.title,
            description=self.description,
            mime_type=self.mime_type,
            _meta=self.meta,
        )


@dataclass
class TemplateDef:
    """A registered resource template (RFC 6570 level 1: ``{name}`` segments)."""

    uri_template: str
    name: str
    description: str
    mime_type: str
    reader: TemplateReader
    title: str | None = None
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{(\w+)\}", self.uri_template)
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/?#]+)" for i, part in enumerate(parts))
        self.pattern = re.compile(f"^{regex}$")

    def match(self, uri: str) -> dict[str, str] | None:
        """The template variables (percent-decoded, as RFC 6570 simple expansion encodes them) or None."""
        m = self.pattern.match(uri)
        return {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()} if m else None

    def to_model(self) -> mt.ResourceTemplate:
        """The ``resources/templates/list`` entry."""
        return mt.ResourceTemplate(
            uri_template=self.uri_template,
            name=self.name,
            title=self.title,
            description=self.description,
            mime_type=self.mime_type,
        )


@dataclass
class PromptDef:
    """A registered prompt."""

    name: str
    description: str
    arguments: list[mt.PromptArgument]
    handler: PromptHandler
    title: str | None = None

    def to_model(self) -> mt.Prompt:
        """The ``prompts/list`` entry."""
        return mt.Prompt(
            name=self.name, title=self.title, description=self.description, arguments=self.arguments or None
        )


class Server:
    """The feature registry shared by every session: the builder of the seeds' design.

    Register features with the decorators, then serve with
    :func:`serve_transport` (any :class:`~pyodide_transport.transport.Transport`)
    or the HTTP/WebSocket/stdio adapters, which all create
    :class:`ServerSession` objects from this registry.
    """

    def __init__(self, name: str, version: str, *, instructions: str | None = None, title: str | None = None):
        self.name = name
        self.version = version
        self.title = title
        self.instructions = instructions
        self.tools: dict[str, ToolDef] = {}
        self.resources: dict[str, ResourceDef] = {}
        self.templates: list[TemplateDef] = []
        self.prompts: dict[str, PromptDef] = {}
        self.completions: dict[tuple[str, str, str], CompletionHandler] = {}
        self._watchers: dict[str, set[WatchCallback]] = {}
        self.state_key = secrets.token_bytes(32)  # signs the requestState of input-required rounds
        self._watch_listeners: list[Callable[[str, int], None]] = []
        self._update_listeners: list[Callable[[str], Awaitable[None]]] = []

    # -- registration -------------------------------------------------------------------------
    def tool(
        self,
        name: str,
        *,
        description: str,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        title: str | None = None,
        annotations: mt.ToolAnnotations | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Callable[[ToolHandler], ToolHandler]:
        """Register a tool; decorate ``async def handler(ctx, arguments) -> ToolReturn``; ``meta`` is its ``_meta``."""

        def register(handler: ToolHandler) -> ToolHandler:
            schema = input_schema if input_schema is not None else {"type": "object", "properties": {}}
            self.tools[name] = ToolDef(name, description, schema, handler, output_schema, title, annotations, meta)
            return handler

        return register

    def resource(
        self,
        uri: str,
        *,
        name: str,
        description: str,
        mime_type: str = "text/plain",
        title: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Callable[[ResourceReader], ResourceReader]:
        """Register a static resource; decorate ``async def reader(ctx) -> str | bytes``.

        ``meta`` is the ``_meta`` of its ``resources/list`` entry and of the contents ``resources/read``
        returns (where MCP Apps hosts look for ``ui.csp`` and ``ui.prefersBorder``).
        """

        def register(reader: ResourceReader) -> ResourceReader:
            self.resources[uri] = ResourceDef(uri, name, description, mime_type, reader, title, meta)
            return reader

        return register

    def resource_template(
        self,
        uri_template: str,
        *,
        name: str,
        description: str,
        mime_type: str = "text/plain",
        title: str | None = None,
    ) -> Callable[[TemplateReader], TemplateReader]:
        """Register a template; decorate ``async def reader(ctx, uri, variables) -> str | bytes``."""

        def register(reader: TemplateReader) -> TemplateReader:
            self.templates.append(TemplateDef(uri_template, name, description, mime_type, reader, title))
            return reader

        return register

    def prompt(
        self,
        name: str,
        *,
        description: str,
        arguments: list[mt.PromptArgument] | None = None,
        title: str | None = None,
    ) -> Callable[[PromptHandler], PromptHandler]:
        """Register a prompt; decorate ``async def handler(ctx, arguments) -> list[PromptMessage]``."""

        def register(handler: PromptHandler) -> PromptHandler:
            self.prompts[name] = PromptDef(name, description, list(arguments or []), handler, title)
            return handler

        return register

    def completion(
        self, ref_type: Literal["ref/prompt", "ref/resource"], ref: str, argument: str
    ) -> Callable[[CompletionHandler], CompletionHandler]:
        """Register completions for one argument of a prompt (by name) or template (by URI template).

        Decorate ``async def complete(value, context_arguments) -> list[str]``.
        """

        def register(handler: CompletionHandler) -> CompletionHandler:
            self.completions[(ref_type, ref, argument)] = handler
            return handler

        return register

    # -- resource watching ---------------------------------------------------------------------
    def watch_resource(self, uri: str, callback: WatchCallback) -> Callable[[], None]:
        """Call ``callback(uri)`` whenever the resource changes; returns the unwatch function."""
        watchers = self._watchers.setdefault(uri, set())
        watchers.add(callback)
        self._notify_watch_listeners(uri)

        def unwatch() -> None:
            current = self._watchers.get(uri)
            if current is not None and callback in current:
                current.discard(callback)
                if not current:
                    del self._watchers[uri]
                self._notify_watch_listeners(uri)

        return unwatch

    def watcher_count(self, uri: str) -> int:
        """How many subscriptions watch ``uri`` right now."""
        return len(self._watchers.get(uri, ()))

    def on_watch_change(self, listener: Callable[[str, int], None]) -> None:
        """Call ``listener(uri, watcher_count)`` whenever a resource gains or loses a watcher."""
        self._watch_listeners.append(listener)

    def _notify_watch_listeners(self, uri: str) -> None:
        for listener in self._watch_listeners:
            listener(uri, self.watcher_count(uri))

    def on_resource_updated(self, listener: Callable[[str], Awaitable[None]]) -> None:
        """Also await ``listener(uri)`` on every update (a shared store tells subscribers on other replicas)."""
        self._update_listeners.append(listener)

    async def notify_resource_updated(self, uri: str) -> None:
        """Tell every subscriber of ``uri`` that it changed."""
        for callback in [*self._watchers.get(uri, ()), *self._update_listeners]:
            try:
                await callback(uri)
            except Exception:  # one broken subscriber must not starve the others
                logger.debug("resource watcher for %s failed", uri, exc_info=True)

    # -- descriptions ----------------------------------------------------------------------------
    def capabilities(self) -> mt.ServerCapabilities:
        """What this server offers."""
        return mt.ServerCapabilities(
            tools=mt.ToolsCapability(list_changed=False) if self.tools else None,
            resources=mt.ResourcesCapability(subscribe=True, list_changed=False)
            if self.resources or self.templates
            else None,
            prompts=mt.PromptsCapability(list_changed=False) if self.prompts else None,
            completions=mt.CompletionsCapability() if self.completions else None,
            logging=mt.LoggingCapability(),
        )

    def implementation(self) -> mt.Implementation:
        """The ``serverInfo`` object."""
        return mt.Implementation(name=self.name, version=self.version, title=self.title)

    def find_template(self, uri: str) -> tuple[TemplateDef, dict[str, str]] | None:
        """The first template matching ``uri`` and its variables."""
        for template in self.templates:
            variables = template.match(uri)
            if variables is not None:
                return template, variables
        return None


def seal_state(key: bytes, state: Mapping[str, Any]) -> str:
    """``state`` (JSON) with its HMAC-SHA256 under ``key``, as one URL-safe token."""
    body = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":"), sort_keys=True).encode()).decode()
    tag = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{tag}"


def open_state(key: bytes, token: str) -> dict[str, Any] | None:
    """The state in a :func:`seal_state` token, or None when it was altered or is not ours."""
    body, _, tag = token.rpartition(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(tag, expected):
        return None
    try:
        state = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, binascii.Error):
        return None
    return state if isinstance(state, dict) else None


class RequestContext:
    """What a handler may do while serving one request.

    Attributes:
        request_id: The JSON-RPC id of the request.
        era: ``"handshake"`` or ``"modern"``.
        protocol_version: The version this request is served at.
        client_capabilities: What the client declared.
        progress_token: The request's progress token, if any.
        cancelled: Set when the client cancels the request.
    """

    def __init__(
        self,
        session: ServerSession,
        request_id: RequestId,
        *,
        era: Era,
        protocol_version: str,
        client_capabilities: mt.ClientCapabilities,
        progress_token: mt.ProgressToken | None,
        log_level: str | None,
        input_responses: Mapping[str, Any] | None = None,
        request_state: str | None = None,
    ) -> None:
        self.session = session
        self.server = session.server
        self.request_id = request_id
        self.era = era
        self.protocol_version = protocol_version
        self.client_capabilities = client_capabilities
        self.progress_token = progress_token
        self.log_level = log_level
        self.input_responses = dict(input_responses or {})
        self.request_state = request_state
        self.cancelled = asyncio.Event()
        self._input_counter = itertools.count()

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification that belongs to this request."""
        await self.session.send(make_notification(method, params), self.request_id)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress, if the client asked for it (sent a progress token)."""
        if self.progress_token is None:
            return
        params = mt.ProgressNotificationParams(
            progress_token=self.progress_token, progress=progress, total=total, message=message
        )
        await self.notify("notifications/progress", params.model_dump(by_alias=True, exclude_none=True))

    async def log(self, level: mt.LoggingLevel, data: Any, logger_name: str | None = None) -> None:
        """Send a log message if the client's level lets it through."""
        if self.log_level is None or LOG_LEVELS.index(level) < LOG_LEVELS.index(self.log_level):
            return
        params = mt.LoggingMessageNotificationParams(level=level, data=data, logger=logger_name)
        await self.notify("notifications/message", params.model_dump(by_alias=True, exclude_none=True))

    def close_stream(self) -> None:
        """Ask the transport to end this request's response stream early (SSE polling, SEP-1699).

        The request keeps running; its later messages wait in the event store
        until the client reconnects. Transports without streams ignore this.
        """
        self.session.close_stream(self.request_id)

    # -- 2026-07-28 input-required rounds (SEP-2322) -------------------------------------------------

    def input_request(self, method: str, params: dict[str, Any] | None = None) -> mt.InputRequest:
        """An embedded request for an :class:`InputRequired` (``sampling/createMessage``, ``roots/list``, ...)."""
        return _INPUT_REQUEST_MODELS[method].model_validate({"method": method, "params": params or {}})

    def input_response(self, key: str, result_type: type[ModelT]) -> ModelT | None:
        """The client's answer to input request ``key`` in this retry, or None when it sent none.

        Raises:
            RequestError: The answer is not a ``result_type`` (-32602).
        """
        if key not in self.input_responses:
            return None
        try:
            return result_type.model_validate(self.input_responses[key])
        except ValidationError:
            raise RequestError(INVALID_PARAMS, f"malformed input response {key!r}") from None

    def seal(self, state: Mapping[str, Any]) -> str:
        """``state`` as an opaque ``requestState`` the client cannot alter unnoticed (HMAC-SHA256)."""
        return seal_state(self.server.state_key, state)

    def unseal(self) -> dict[str, Any] | None:
        """The state this retry echoes (from :meth:`seal`), or None when it sent none.

        Raises:
            RequestError: The state was altered or is not ours (-32602).
        """
        if self.request_state is None:
            return None
        state = open_state(self.server.state_key, self.request_state)
        if state is None:
            raise RequestError(INVALID_PARAMS, "requestState failed its integrity check")
        return state

    async def _ask(self, method: str, params: dict[str, Any], result_type: type[BaseModel]) -> Any:
        """Ask the client something: a JSON-RPC request (handshake) or an input request (modern)."""
        if self.era == "modern":
            key = f"{method.split('/')[0]}-{next(self._input_counter)}"
            if key in self.input_responses:
                try:
                    return result_type.model_validate(self.input_responses[key])
                except ValidationError:
                    raise RequestError(INVALID_PARAMS, f"malformed input response {key!r}") from None
            request = _INPUT_REQUEST_MODELS[method].model_validate({"method": method, "params": params})
            raise InputRequired({key: request})
        raw = await self.session.request(method, params, related_request_id=self.request_id)
        return result_type.model_validate(raw)

    async def sample(
        self, messages: list[mt.SamplingMessage], *, max_tokens: int, system_prompt: str | None = None
    ) -> mt.CreateMessageResult:
        """Ask the client's LLM to sample a message.

        Raises:
            RequestError: The client lacks the ``sampling`` capability (modern: -32021).
        """
        self._check_can_ask("sampling", self.client_capabilities.sampling is not None)
        params = mt.CreateMessageRequestParams(messages=messages, max_tokens=max_tokens, system_prompt=system_prompt)
        result: mt.CreateMessageResult = await self._ask(
            "sampling/createMessage", params.model_dump(by_alias=True, exclude_none=True), mt.CreateMessageResult
        )
        return result

    async def elicit(self, message: str, requested_schema: dict[str, Any]) -> mt.ElicitResult:
        """Ask the user (through the client) to fill in a form.

        Raises:
            RequestError: The client lacks the ``elicitation`` capability (modern: -32021).
        """
        self._check_can_ask("elicitation", self.client_capabilities.elicitation is not None)
        params: dict[str, Any] = {"message": message, "requestedSchema": requested_schema}
        if self.protocol_version not in ("2025-06-18",):
            params["mode"] = "form"
        result: mt.ElicitResult = await self._ask("elicitation/create", params, mt.ElicitResult)
        return result

    async def list_roots(self) -> mt.ListRootsResult:
        """Ask the client for its roots."""
        self._check_can_ask("roots", self.client_capabilities.roots is not None)
        result: mt.ListRootsResult = await self._ask("roots/list", {}, mt.ListRootsResult)
        return result

    def _check_can_ask(self, name: str, declared: bool) -> None:
        if self.era == "handshake" and not self.session.back_channel:
            raise NoBackChannelError(INVALID_REQUEST, f"this transport cannot carry {name} requests to the client")
        if not declared:
            raise missing_capability_error(self.era, name)


class ServerSession:
    """One connection's protocol state: handshake, subscriptions, in-flight requests.

    Feed it every incoming message with :meth:`handle`; requests run as
    concurrent tasks and their responses (and any notifications or
    server-to-client requests) go to ``sink``. Call :meth:`close` when the
    connection ends.

    Args:
        server: The feature registry.
        sink: ``async sink(message, related_request_id)``; raises
            ``ConnectionClosedError`` when the message cannot be delivered.
        back_channel: Whether server-to-client requests can reach the client.
        protocol_version: Pre-set the negotiated version (stateless HTTP: no
            handshake happens on this connection).
        on_request_done: Called with a request id once its task ends,
            whether or not a response was sent (cancellation sends none).
        on_close_stream: Called by :meth:`RequestContext.close_stream`.
    """

    def __init__(
        self,
        server: Server,
        sink: MessageSink,
        *,
        back_channel: bool = True,
        protocol_version: str | None = None,
        on_request_done: Callable[[RequestId], None] | None = None,
        on_close_stream: Callable[[RequestId], None] | None = None,
    ) -> None:
        self.server = server
        self._sink = sink
        self.back_channel = back_channel
        self.protocol_version = protocol_version
        self.client_capabilities = _NO_CAPABILITIES
        self.client_info: mt.Implementation | None = None
        self.log_level: str | None = "debug"
        self.closed = False
        self._on_request_done = on_request_done
        self._on_close_stream = on_close_stream
        self._tasks: dict[RequestId, asyncio.Task[None]] = {}
        self._contexts: dict[RequestId, RequestContext] = {}
        self._pending: dict[RequestId, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._unwatch: dict[str, Callable[[], None]] = {}
        self.request_id_prefix = "srv-"
        """Of the ids of server-to-client requests (replicas put their own name in it, to get the answers back)."""
        self.subscription_hook: Callable[[str, bool], Awaitable[None]] | None = None
        """Set by a shell whose subscriptions live in a shared store: ``hook(uri, subscribed)``; the
        store's owner then delivers the updates (the local watch only keeps the resource's watcher count)."""

    @property
    def initialized(self) -> bool:
        """Whether the handshake has happened (or was pre-set)."""
        return self.protocol_version is not None

    @property
    def active_requests(self) -> int:
        """How many requests are still running."""
        return len(self._tasks)

    # -- plumbing ------------------------------------------------------------------------------------
    async def send(self, message: TransportMessage, related_request_id: RequestId | None = None) -> None:
        """Send through the sink (used by contexts and subscriptions)."""
        if self.closed:
            raise ConnectionClosedError("session is closed")
        await self._sink(message, related_request_id)

    def close_stream(self, request_id: RequestId) -> None:
        """Forward a context's early-close wish to the transport."""
        if self._on_close_stream is not None:
            self._on_close_stream(request_id)

    async def request(
        self, method: str, params: dict[str, Any] | None, *, related_request_id: RequestId | None = None
    ) -> dict[str, Any]:
        """Send a server-to-client request and wait for its result.

        Raises:
            NoBackChannelError: This connection cannot carry requests to the client.
            RequestError: The client answered with an error.
        """
        if not self.back_channel:
            raise NoBackChannelError(INVALID_REQUEST, f"cannot send {method} to the client on this transport")
        request_id: RequestId = f"{self.request_id_prefix}{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                await self.send(make_request(request_id, method, params), related_request_id)
            except ConnectionClosedError as exc:
                raise NoBackChannelError(INVALID_REQUEST, f"cannot send {method} to the client: {exc}") from None
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def close(self) -> None:
        """End the session: cancel running requests, drop subscriptions, fail pending requests."""
        if self.closed:
            return
        self.closed = True
        for unwatch in self._unwatch.values():
            unwatch()
        self._unwatch.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosedError("session closed"))
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    # -- incoming ------------------------------------------------------------------------------------
    async def handle(self, message: TransportMessage) -> None:
        """Process one incoming message; requests are started, not awaited."""
        if self.closed:
            raise ConnectionClosedError("session is closed")
        if isinstance(message, JSONRPCRequest):
            if message.id in self._tasks:
                await self.send(duplicate_request_error(message.id), message.id)
                return
            task = asyncio.create_task(self._run_request(message))
            self._tasks[message.id] = task
        elif isinstance(message, JSONRPCNotification):
            await self._handle_notification(message)
        else:
            future = self._pending.get(message.id) if message.id is not None else None
            if future is None or future.done():
                logger.debug("dropping response to unknown request %r", message.id)
            elif isinstance(message, JSONRPCResponse):
                future.set_result(message.result)
            else:
                future.set_exception(RequestError(message.error.code, message.error.message, message.error.data))

    async def _handle_notification(self, note: JSONRPCNotification) -> None:
        params = note.params or {}
        if note.method == "notifications/cancelled":
            request_id = params.get("requestId")
            task = self._tasks.get(request_id) if isinstance(request_id, str | int) else None
            if task is not None:
                ctx = self._contexts.get(request_id)  # type: ignore[arg-type]
                if ctx is not None:
                    ctx.cancelled.set()
                task.cancel()
        # notifications/initialized, progress and roots/list_changed need no action here.

    async def _run_request(self, req: JSONRPCRequest) -> None:
        response: TransportMessage | None = None
        try:
            result = await self._dispatch(req)
            response = make_response(req.id, result)
        except asyncio.CancelledError:
            response = None  # a cancelled request gets no response
        except Exception as exc:
            if not isinstance(exc, RequestError):
                logger.exception("request %r (%s) failed", req.id, req.method)
            response = error_for(req.id, exc)
        finally:
            self._tasks.pop(req.id, None)
            self._contexts.pop(req.id, None)
        try:
            if response is not None and not self.closed:
                await self.send(response, req.id)
        except ConnectionClosedError:
            logger.debug("response to %r dropped: connection closed", req.id)
        finally:
            if self._on_request_done is not None:
                self._on_request_done(req.id)

    async def _dispatch(self, req: JSONRPCRequest) -> dict[str, Any]:
        """Serve one request as :func:`~server_demo.dispatch.route_request` decides; its result's wire form."""
        state = SessionState(self.protocol_version, self.client_capabilities, self.log_level)
        route = route_request(req, state)
        if isinstance(route, Reply):
            return route.result
        if isinstance(route, Initialize):
            return self._initialize(route)
        ctx = RequestContext(
            self,
            req.id,
            era=route.era,
            protocol_version=route.protocol_version,
            client_capabilities=route.client_capabilities,
            progress_token=route.progress_token,
            log_level=route.log_level,
            input_responses=route.input_responses,
            request_state=route.request_state,
        )
        self._contexts[req.id] = ctx
        result: BaseModel | TextToolResult
        try:
            result = await self._call_handler(ctx, route.request)
        except InputRequired as need:
            if route.era != "modern":
                raise
            result = mt.InputRequiredResult(input_requests=need.input_requests, request_state=need.request_state)
        return finish_result(route, result, self.server.implementation)

    def _initialize(self, accepted: Initialize) -> dict[str, Any]:
        """Adopt the negotiated handshake and answer with this server's description."""
        self.client_capabilities = accepted.client_capabilities
        self.client_info = accepted.client_info
        self.protocol_version = accepted.protocol_version
        result = mt.InitializeResult(
            protocol_version=accepted.protocol_version,
            capabilities=self.server.capabilities(),
            server_info=self.server.implementation(),
            instructions=self.server.instructions,
        )
        return serialize_result("initialize", accepted.protocol_version, result)

    # -- method handlers --------------------------------------------------------------------------
    async def _call_handler(self, ctx: RequestContext, model: mt.Request[Any, Any]) -> BaseModel | TextToolResult:
        server = self.server
        modern = ctx.era == "modern"
        done = "complete" if modern else None
        match model:
            case mt.PingRequest():
                return mt.EmptyResult(result_type=done)
            case mt.DiscoverRequest():
                return mt.DiscoverResult(
                    supported_versions=list(SUPPORTED_PROTOCOL_VERSIONS),
                    capabilities=server.capabilities(),
                    instructions=server.instructions,
                )
            case mt.ListToolsRequest():
                return mt.ListToolsResult(tools=[t.to_model() for t in server.tools.values()])
            case mt.CallToolRequest():
                return await self._call_tool(ctx, model.params.name, model.params.arguments or {})
            case mt.ListResourcesRequest():
                return mt.ListResourcesResult(resources=[r.to_model() for r in server.resources.values()])
            case mt.ListResourceTemplatesRequest():
                return mt.ListResourceTemplatesResult(resource_templates=[t.to_model() for t in server.templates])
            case mt.ReadResourceRequest():
                return await self._read_resource(ctx, model.params.uri)
            case mt.SubscribeRequest():
                await self._subscribe(model.params.uri)
                return mt.EmptyResult()
            case mt.UnsubscribeRequest():
                await self._unsubscribe(model.params.uri)
                return mt.EmptyResult()
            case mt.ListPromptsRequest():
                return mt.ListPromptsResult(prompts=[p.to_model() for p in server.prompts.values()])
            case mt.GetPromptRequest():
                return await self._get_prompt(ctx, model.params.name, model.params.arguments or {})
            case mt.CompleteRequest():
                return await self._complete(model.params)
            case mt.SetLevelRequest():
                self.log_level = model.params.level
                return mt.EmptyResult()
            case mt.SubscriptionsListenRequest():
                return await self._listen(ctx, model.params.notifications)
        raise RequestError(METHOD_NOT_FOUND, f"method not found: {model.method}")

    async def _call_tool(
        self, ctx: RequestContext, name: str, arguments: dict[str, Any]
    ) -> mt.CallToolResult | TextToolResult:
        tool = self.server.tools.get(name)
        if tool is None:
            raise RequestError(INVALID_PARAMS, f"unknown tool: {name}")
        problem = check_tool_arguments(tool.input_schema, arguments)
        if problem is not None:
            return mt.CallToolResult(content=[mt.TextContent(text=f"invalid arguments: {problem}")], is_error=True)
        try:
            returned = await tool.handler(ctx, arguments)
        except (RequestError, InputRequired, asyncio.CancelledError):
            raise
        except Exception as exc:  # a tool failure is a result the model can see, not a protocol error
            return mt.CallToolResult(content=[mt.TextContent(text=str(exc) or type(exc).__name__)], is_error=True)
        if isinstance(returned, mt.CallToolResult):
            return returned
        if isinstance(returned, str):
            return TextToolResult(returned)  # laid out by finish_result without building the models
        return mt.CallToolResult(content=returned)

    async def _read_resource(self, ctx: RequestContext, uri: str) -> mt.ReadResourceResult:
        static = self.server.resources.get(uri)
        meta: dict[str, Any] | None = None
        if static is not None:
            data, mime, meta = await static.reader(ctx), static.mime_type, static.meta
        else:
            found = self.server.find_template(uri)
            if found is None:
                raise resource_not_found_error(ctx.era, uri)
            template, variables = found
            data, mime = await template.reader(ctx, uri, variables), template.mime_type
        contents: mt.TextResourceContents | mt.BlobResourceContents
        if isinstance(data, bytes):
            contents = mt.BlobResourceContents(
                uri=uri, mime_type=mime, blob=base64.b64encode(data).decode(), _meta=meta
            )
        else:
            contents = mt.TextResourceContents(uri=uri, mime_type=mime, text=data, _meta=meta)
        return mt.ReadResourceResult(contents=[contents])

    async def _subscribe(self, uri: str) -> None:
        if uri in self._unwatch:
            return

        async def updated(changed: str) -> None:
            params = mt.ResourceUpdatedNotificationParams(uri=changed).model_dump(by_alias=True, exclude_none=True)
            with contextlib.suppress(ConnectionClosedError):
                await self.send(make_notification("notifications/resources/updated", params), None)

        async def counted_only(changed: str) -> None:
            """The shared store's owner tells this subscriber; the watch keeps the resource's watcher count."""

        if self.subscription_hook is not None:
            await self.subscription_hook(uri, True)
        self._unwatch[uri] = self.server.watch_resource(
            uri, updated if self.subscription_hook is None else counted_only
        )

    async def _unsubscribe(self, uri: str) -> None:
        unwatch = self._unwatch.pop(uri, None)
        if unwatch is not None:
            unwatch()
        if self.subscription_hook is not None:
            await self.subscription_hook(uri, False)

    async def _get_prompt(self, ctx: RequestContext, name: str, arguments: dict[str, str]) -> mt.GetPromptResult:
        prompt = self.server.prompts.get(name)
        if prompt is None:
            raise RequestError(INVALID_PARAMS, f"unknown prompt: {name}")
        missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
        if missing:
            raise RequestError(INVALID_PARAMS, f"prompt {name!r} needs argument(s): {', '.join(missing)}")
        messages = await prompt.handler(ctx, arguments)
        return mt.GetPromptResult(description=prompt.description, messages=messages)

    async def _complete(self, params: mt.CompleteRequestParams) -> mt.CompleteResult:
        ref = params.ref
        key = (
            ("ref/prompt", ref.name, params.argument.name)
            if isinstance(ref, mt.PromptReference)
            else ("ref/resource", ref.uri, params.argument.name)
        )
        handler = self.server.completions.get(key)
        context = (params.context.arguments if params.context else None) or {}
        values = await handler(params.argument.value, context) if handler is not None else []
        return mt.CompleteResult(
            completion=mt.Completion(values=values[:100], total=len(values), has_more=len(values) > 100)
        )

    async def _listen(self, ctx: RequestContext, wanted: mt.SubscriptionFilter) -> mt.SubscriptionsListenResult:
        honored = mt.SubscriptionFilter(
            tools_list_changed=wanted.tools_list_changed,
            prompts_list_changed=wanted.prompts_list_changed,
            resources_list_changed=wanted.resources_list_changed,
            resource_subscriptions=wanted.resource_subscriptions,
        )
        tag = {_SUBSCRIPTION_ID_META_KEY: ctx.request_id}  # every notification of the stream names it (SEP-2575)
        ack = mt.SubscriptionsAcknowledgedNotificationParams(notifications=honored)
        params = ack.model_dump(by_alias=True, exclude_none=True)
        await ctx.notify("notifications/subscriptions/acknowledged", {**params, "_meta": tag})

        async def updated(changed: str) -> None:
            await ctx.notify("notifications/resources/updated", {"uri": changed, "_meta": tag})

        unwatchers = [self.server.watch_resource(uri, updated) for uri in wanted.resource_subscriptions or []]
        try:
            await asyncio.Event().wait()  # until the client closes the stream (cancellation)
        finally:
            for unwatch in unwatchers:
                unwatch()
        raise AssertionError("unreachable")  # pragma: no cover


async def serve_transport(server: Server, transport: Transport) -> None:
    """Serve one connection over any :class:`~pyodide_transport.transport.Transport` until it closes.

    Every message goes straight out through ``transport.send``: message-per-
    frame transports (in-memory, WebSocket, stdio, MessagePort) need no routing. A message the
    transport could not read (``receive`` raised, the connection still up) is answered with an
    Invalid Request error (id null) and serving goes on.
    """

    async def sink(message: TransportMessage, related_request_id: RequestId | None) -> None:
        await transport.send(message)

    session = ServerSession(server, sink)
    try:
        while True:
            try:
                message = await transport.receive()
            except ConnectionClosedError:
                break
            except TransportError as exc:  # one bad message (not JSON-RPC, too large): say so, keep serving
                logger.info("a bad message on a %s connection: %s", transport.transport_type, exc)
                with contextlib.suppress(ConnectionClosedError):
                    await transport.send(error_response(None, INVALID_REQUEST, f"Invalid message: {exc}"))
                continue
            await session.handle(message)
    finally:
        await session.close()
        await transport.close()

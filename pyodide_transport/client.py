"""The MCP client session layer: one ``Client`` over any :class:`~pyodide_transport.transport.Transport`.

The same code runs in CPython and in Pyodide: single-threaded asyncio, no
threads, no blocking calls, no browser code. The transport moves messages;
this module decides what they mean.

Protocol eras (``mcp_types.version``):

* **modern** (2026-07-28): no handshake and no session. ``server/discover``
  tells which versions the server speaks; every request carries the protocol
  version, client info and client capabilities in ``params._meta``; server to
  client requests (sampling, elicitation, roots) come back inside results as
  input-required results, which the client answers by re-issuing the request.
* **handshake** (2024-11-05 .. 2025-11-25): ``initialize`` then
  ``notifications/initialized``; server to client requests arrive as ordinary
  JSON-RPC requests and get ordinary responses.

By default the client probes ``server/discover`` first and falls back to the
handshake when the server shows no sign of speaking the modern era.

Modern-era notifications outside a request (list changes, resource updates)
need a ``subscriptions/listen`` stream: the client keeps one open whose filter
follows the list-changed handlers set at connect time and the URIs passed to
:meth:`Client.subscribe`, and re-opens it (cancelling the old one) whenever
that set changes or :meth:`Client.update_subscriptions` is called.

Session expiry policy (handshake era): when ``transport.send`` raises
:class:`SessionExpiredError` (HTTP 404 for our session id: the request was
never processed), the client re-runs the handshake with the same client info
and capabilities, re-applies the logging level and resource subscriptions,
then re-sends that request once. Concurrent expiries trigger one
re-initialization (single-flight, tracked by a session generation counter).
Requests that were already in flight on the old session may or may not have
run; when the transport reports the expiry from ``receive()`` they fail with
``SessionExpiredError`` and are not re-sent.

Importing this module does not import ``mcp_types.methods`` (its per-version
validator maps are slow to import in Pyodide); results are parsed with the
version-free ``mcp_types`` models.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeAlias, TypeVar, overload

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
    CallToolResult,
    ClientCapabilities,
    CompleteResult,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    DiscoverResult,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    EmptyResult,
    GetPromptResult,
    Implementation,
    InitializeResult,
    InputRequiredResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListRootsResult,
    ListToolsResult,
    LoggingLevel,
    LoggingMessageNotificationParams,
    Prompt,
    PromptReference,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    ResourceTemplateReference,
    RootsCapability,
    SamplingCapability,
    ServerCapabilities,
    Tool,
    UnsupportedProtocolVersionErrorData,
)
from mcp_types.jsonrpc import (
    CONNECTION_CLOSED,
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    REQUEST_TIMEOUT,
    UNSUPPORTED_PROTOCOL_VERSION,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import BaseModel, ValidationError

from .errors import (
    ConnectionClosedError,
    HTTPStatusError,
    LocalProtocolError,
    MCPError,
    RemoteProtocolError,
    RequestTimeoutError,
    SessionExpiredError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from .memory import Inbox, Watchdog, new_future
from .messages import error_response, make_notification, make_request, make_response
from .transport import Transport

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "Client",
    "ElicitationHandler",
    "ErrorCallback",
    "ListChangedHandler",
    "LogHandler",
    "ProgressCallback",
    "ResourceUpdatedHandler",
    "RootsHandler",
    "SamplingHandler",
]

logger = logging.getLogger("pyodide_transport.client")

DEFAULT_REQUEST_TIMEOUT: Final[float] = 60.0
"""Seconds a request may wait for its response (or for progress) by default."""

DEFAULT_CLIENT_INFO: Final = Implementation(name="pyodide-transport", version="0.1.0")

_MAX_INPUT_ROUNDS: Final = 10
"""Cap on input-required retry rounds for one request (matches the other SDKs)."""

_STATE_ONLY_DELAY: Final = (0.05, 0.25)
"""First and maximum back-off (seconds) when an input-required result carries only requestState."""

_MAX_PAGES: Final = 10_000
"""Cap on pages followed by one ``list_*`` call: a server that loops its cursors cannot hang us."""

_MAX_RECEIVE_ERRORS: Final = 64
"""Consecutive failing ``receive()`` calls after which the connection counts as lost."""

_MODERN_ERRORS: Final = frozenset({HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION})
_FALLBACK_HTTP_STATUSES: Final = frozenset({400, 404, 405})

LogHandler: TypeAlias = Callable[[LoggingMessageNotificationParams], Awaitable[None] | None]
"""Called with each ``notifications/message`` the server sends."""

ProgressCallback: TypeAlias = Callable[[float, float | None, str | None], Awaitable[None] | None]
"""Called as ``callback(progress, total, message)`` for each progress notification of one request."""

ListChangedHandler: TypeAlias = Callable[[], Awaitable[None] | None]
"""Called when the server says its tool, resource or prompt list changed."""

ResourceUpdatedHandler: TypeAlias = Callable[[str], Awaitable[None] | None]
"""Called with the URI of a subscribed resource that changed."""

RootsHandler: TypeAlias = Callable[[], Awaitable[ListRootsResult]]
"""Answers the server's ``roots/list``."""

SamplingHandler: TypeAlias = Callable[
    [CreateMessageRequestParams], Awaitable[CreateMessageResult | CreateMessageResultWithTools]
]
"""Answers the server's ``sampling/createMessage``; raise :class:`MCPError` to refuse."""

ElicitationHandler: TypeAlias = Callable[[ElicitRequestFormParams | ElicitRequestURLParams], Awaitable[ElicitResult]]
"""Answers the server's ``elicitation/create``; raise :class:`MCPError` to refuse."""

ErrorCallback: TypeAlias = Callable[[Exception], None]
"""Told about problems that belong to no request: malformed messages, unknown ids, handler failures."""

Params: TypeAlias = Mapping[str, Any] | BaseModel | None
ResultT = TypeVar("ResultT", bound=BaseModel)
_PageT = TypeVar("_PageT", ListToolsResult, ListResourcesResult, ListResourceTemplatesResult, ListPromptsResult)
Era: TypeAlias = Literal["modern", "handshake"]


class _Unset:
    """Marker type for "use the client's default"."""

    def __repr__(self) -> str:
        return "<default>"


_UNSET: Final = _Unset()
Timeout: TypeAlias = float | _Unset | None


class _TimedOutError(Exception):
    """Set on a pending request's future by its timer; becomes a RequestTimeoutError."""


class _Pending:
    """One request waiting for its response."""

    __slots__ = ("deadline", "future", "last_activity", "method", "progress", "sent", "timeout", "total_timeout")

    def __init__(self, future: asyncio.Future[dict[str, Any]], method: str, progress: ProgressCallback | None) -> None:
        self.future = future
        self.method = method
        self.progress = progress
        self.last_activity = future.get_loop().time()
        self.sent = False
        self.timeout: float | None = None  # set while the response is awaited: seconds without activity
        self.total_timeout: float | None = None
        self.deadline: float | None = None  # loop time the total limit ends

    def due(self) -> float | None:
        """Loop time this request times out unless a response or progress comes first."""
        due = None if self.timeout is None else self.last_activity + self.timeout
        if self.deadline is not None:
            due = self.deadline if due is None else min(due, self.deadline)
        return due


def _dump(model: BaseModel) -> dict[str, Any]:
    """A model as the JSON-ready dict sent on the wire."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _params_dict(params: Params) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, BaseModel):
        return _dump(params)
    return dict(params)


def _supported_versions(data: Any) -> tuple[str, ...] | None:
    """The ``supported`` list of a -32022 error's data, or None when it has none."""
    try:
        return tuple(UnsupportedProtocolVersionErrorData.model_validate(data).supported)
    except ValidationError:
        return None


def _error_to_exception(error: ErrorData) -> TransportError:
    """Turn a JSON-RPC error (real or synthesized by the transport) into the matching exception."""
    if error.code == CONNECTION_CLOSED:
        return ConnectionClosedError(error.message or "connection closed")
    if error.code == REQUEST_TIMEOUT:
        return RequestTimeoutError(error.message or "request timed out")
    if error.code == UNSUPPORTED_PROTOCOL_VERSION:
        supported = _supported_versions(error.data) or ()
        return UnsupportedProtocolVersionError(error.code, error.message, error.data, supported=supported)
    return MCPError(error.code, error.message, error.data)


def _parse(result_type: type[ResultT], raw: Mapping[str, Any], method: str) -> ResultT:
    try:
        return result_type.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "result"
        raise RemoteProtocolError(f"invalid {method} result: {where}: {first['msg']}") from None


async def _call(handler: Callable[..., Awaitable[None] | None], *args: Any) -> None:
    """Call a handler that may be sync or async."""
    outcome = handler(*args)
    if inspect.isawaitable(outcome):
        await outcome


class Client:
    """An MCP client session over one transport, speaking every known protocol version.

    Use as ``async with Client(transport) as client:`` or call :meth:`connect`
    and :meth:`close` yourself. See the module docstring for the version
    negotiation and session expiry policies.

    Args:
        transport: Any object implementing the ``Transport`` protocol.
        client_info: Our name and version, sent to the server.
        capabilities: Extra client capabilities. ``roots``, ``sampling`` and
            ``elicitation`` are declared exactly when the matching handler is set.
        protocol_version: ``None`` negotiates (modern first, then handshake);
            a handshake version skips ``server/discover`` and requires the
            server to agree on exactly that version; a modern version requires
            the server's ``server/discover`` to list it.
        request_timeout: Default seconds to wait for a response; any progress
            notification for the request restarts the clock. ``None``: wait forever.
        max_total_timeout: Default upper bound (seconds) on a request however
            much progress arrives. ``None``: no bound.
        on_log: Handler for ``notifications/message``.
        on_tools_list_changed: Handler for ``notifications/tools/list_changed``.
        on_resources_list_changed: Handler for ``notifications/resources/list_changed``.
        on_prompts_list_changed: Handler for ``notifications/prompts/list_changed``.
        on_resource_updated: Handler for ``notifications/resources/updated``.
        roots_handler: Answers ``roots/list``.
        sampling_handler: Answers ``sampling/createMessage``.
        elicitation_handler: Answers ``elicitation/create``.
        on_error: Told about problems that belong to no request (also logged).

    Notification handlers run one at a time in arrival order, in a task of
    their own, so they may call the client. Server requests each get a task.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        client_info: Implementation | None = None,
        capabilities: ClientCapabilities | None = None,
        protocol_version: str | None = None,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        max_total_timeout: float | None = None,
        on_log: LogHandler | None = None,
        on_tools_list_changed: ListChangedHandler | None = None,
        on_resources_list_changed: ListChangedHandler | None = None,
        on_prompts_list_changed: ListChangedHandler | None = None,
        on_resource_updated: ResourceUpdatedHandler | None = None,
        roots_handler: RootsHandler | None = None,
        sampling_handler: SamplingHandler | None = None,
        elicitation_handler: ElicitationHandler | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        if protocol_version is not None and protocol_version not in KNOWN_PROTOCOL_VERSIONS:
            raise LocalProtocolError(
                f"unknown protocol version {protocol_version!r}; known: {', '.join(KNOWN_PROTOCOL_VERSIONS)}"
            )
        self._transport = transport
        self.client_info = client_info or DEFAULT_CLIENT_INFO
        self._base_capabilities = capabilities or ClientCapabilities()
        self._requested_version = protocol_version
        self.request_timeout = request_timeout
        self.max_total_timeout = max_total_timeout
        self.on_log = on_log
        self.on_tools_list_changed = on_tools_list_changed
        self.on_resources_list_changed = on_resources_list_changed
        self.on_prompts_list_changed = on_prompts_list_changed
        self.on_resource_updated = on_resource_updated
        self.roots_handler = roots_handler
        self.sampling_handler = sampling_handler
        self.elicitation_handler = elicitation_handler
        self.on_error = on_error

        self._state: Literal["new", "connecting", "ready", "closed"] = "new"
        self._lost: TransportError | None = None
        self._era: Era | None = None
        self._protocol_version: str | None = None
        self._server_info: Implementation | None = None
        self._server_capabilities: ServerCapabilities | None = None
        self._instructions: str | None = None
        self._log_level: LoggingLevel | None = None
        self._subscriptions: set[str] = set()

        self._next_id = 0
        self._pending: dict[RequestId, _Pending] = {}
        self._recently_cancelled: deque[RequestId] = deque(maxlen=256)
        self._generation = 0
        self._recovery: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._events: Inbox[tuple[Callable[..., Awaitable[None] | None], tuple[Any, ...]] | None] | None = None
        self._server_requests: dict[RequestId, asyncio.Task[None]] = {}
        self._listen_task: asyncio.Task[None] | None = None
        self._watchdog = Watchdog(self._on_watchdog)  # one timer for every pending request's timeout

    # ------------------------------------------------------------------ state

    @property
    def transport(self) -> Transport:
        """The transport this client runs over."""
        return self._transport

    @property
    def protocol_version(self) -> str | None:
        """The negotiated protocol version (None before connect)."""
        return self._protocol_version

    @property
    def era(self) -> Era | None:
        """``"modern"`` (2026-07-28, no session) or ``"handshake"`` (initialize), once connected."""
        return self._era

    @property
    def server_info(self) -> Implementation | None:
        """The server's self-reported name and version (modern servers may not send it)."""
        return self._server_info

    @property
    def server_capabilities(self) -> ServerCapabilities | None:
        """What the server said it supports."""
        return self._server_capabilities

    @property
    def instructions(self) -> str | None:
        """The server's usage instructions, if it gave any."""
        return self._instructions

    @property
    def session_generation(self) -> int:
        """How many times the session was re-established after expiring (handshake era)."""
        return self._generation

    @property
    def capabilities(self) -> ClientCapabilities:
        """The capabilities we declare: the given ones, with roots/sampling/elicitation set by handler."""
        caps = self._base_capabilities.model_copy()
        if self.roots_handler is None:
            caps.roots = None
        elif caps.roots is None:
            caps.roots = RootsCapability(list_changed=True)
        if self.sampling_handler is None:
            caps.sampling = None
        elif caps.sampling is None:
            caps.sampling = SamplingCapability()
        if self.elicitation_handler is None:
            caps.elicitation = None
        elif caps.elicitation is None:
            caps.elicitation = ElicitationCapability()
        return caps

    def is_connected(self) -> bool:
        """Whether the client is connected and usable."""
        return self._state == "ready" and self._lost is None

    # ------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Start reading and negotiate the protocol version with the server.

        The client owns the transport: a failed connect closes the client and
        the transport, like :meth:`close`.

        Raises:
            UnsupportedProtocolVersionError: No version both sides speak.
            MCPError: The server refused the handshake.
            TransportError: The transport failed.
        """
        if self._state != "new":
            raise LocalProtocolError(f"connect() called on a client that is {self._state}")
        self._state = "connecting"
        self._events = Inbox()
        self._reader = asyncio.ensure_future(self._read_loop())
        self._dispatcher = asyncio.ensure_future(self._dispatch_loop())
        try:
            await self._negotiate()
        except BaseException:
            await self.close()
            raise
        self._state = "ready"
        if self._era == "modern" and self._listen_filter() is not None:
            await self._restart_listen()

    async def close(self) -> None:
        """Stop the reader, fail pending requests and close the transport. Idempotent.

        Modern era: an open ``subscriptions/listen`` stream is cancelled first.
        Handshake era: MCP has no shutdown message; the transport ends the
        session its own way (e.g. HTTP ``DELETE``).
        """
        if self._state == "closed":
            return
        self._state = "closed"
        tasks: list[asyncio.Task[None]] = []
        if self._listen_task is not None:  # cancelling it tells the server (notifications/cancelled)
            self._listen_task.cancel()
            await asyncio.wait((self._listen_task,), timeout=1.0)
            self._listen_task = None
        for task in (self._reader, self._dispatcher, self._recovery, *self._server_requests.values()):
            if task is not None and not task.done():
                task.cancel()
                tasks.append(task)
        self._fail_pending(ConnectionClosedError("client closed"))
        self._watchdog.cancel()
        try:
            await self._transport.close()
        except TransportError as exc:
            logger.debug("transport close failed: %s", exc)
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    # ------------------------------------------------------------ negotiation

    async def _negotiate(self) -> None:
        pinned = self._requested_version
        if pinned in HANDSHAKE_PROTOCOL_VERSIONS:
            await self._initialize()
            return
        version = pinned or LATEST_MODERN_VERSION
        for attempt in range(2):
            try:
                raw = await self._request_raw("server/discover", {}, probe_version=version, recover=False)
            except MCPError as exc:
                if pinned is not None:
                    raise
                if exc.code == UNSUPPORTED_PROTOCOL_VERSION:
                    supported = _supported_versions(exc.data)
                    mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in (supported or ())]
                    if mutual and attempt == 0 and mutual[-1] != version:
                        version = mutual[-1]
                        continue
                    if supported is not None and not any(v in HANDSHAKE_PROTOCOL_VERSIONS for v in supported):
                        raise UnsupportedProtocolVersionError(
                            exc.code,
                            f"server speaks only {', '.join(supported) or 'nothing'}; we speak "
                            f"{', '.join(KNOWN_PROTOCOL_VERSIONS)}",
                            exc.data,
                            supported=supported,
                        ) from exc
                elif exc.code in _MODERN_ERRORS:
                    raise
                logger.debug("server/discover failed (%s); falling back to initialize", exc)
            except HTTPStatusError as exc:
                if pinned is not None or exc.status not in _FALLBACK_HTTP_STATUSES:
                    raise
                logger.debug("server/discover got HTTP %s; falling back to initialize", exc.status)
            else:
                if self._adopt_discover(raw, version):
                    return
            await self._initialize()
            return

    def _adopt_discover(self, raw: dict[str, Any], probed: str) -> bool:
        """Take a DiscoverResult; False when it is no evidence of a modern server we can talk to."""
        pinned = self._requested_version
        try:
            result = DiscoverResult.model_validate(raw)
        except ValidationError as exc:
            if pinned is not None:
                raise RemoteProtocolError(f"invalid server/discover result: {exc.errors()[0]['msg']}") from None
            return False
        mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in result.supported_versions]
        if pinned is not None and pinned not in result.supported_versions:
            raise UnsupportedProtocolVersionError(
                UNSUPPORTED_PROTOCOL_VERSION,
                f"server does not support {pinned}; it supports {', '.join(result.supported_versions)}",
                supported=tuple(result.supported_versions),
            )
        if not mutual:
            return False
        self._era = "modern"
        self._protocol_version = probed if probed in mutual else mutual[-1]
        self._server_capabilities = result.capabilities
        self._instructions = result.instructions
        info = (result.meta or {}).get(SERVER_INFO_META_KEY)
        if info is not None:
            try:
                self._server_info = Implementation.model_validate(info)
            except ValidationError:
                self._report(RemoteProtocolError("server/discover carries an invalid serverInfo"))
        return True

    async def _initialize(self) -> None:
        """Run the initialize handshake (also used to re-establish an expired session)."""
        pinned = self._requested_version
        offer = pinned if pinned in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        params = {
            "protocolVersion": offer,
            "capabilities": _dump(self.capabilities),
            "clientInfo": _dump(self.client_info),
        }
        raw = await self._request_raw("initialize", params, recover=False, handshake=True)
        result = _parse(InitializeResult, raw, "initialize")
        acceptable = (pinned,) if pinned is not None else HANDSHAKE_PROTOCOL_VERSIONS
        if result.protocol_version not in acceptable:
            raise UnsupportedProtocolVersionError(
                UNSUPPORTED_PROTOCOL_VERSION,
                f"server chose protocol version {result.protocol_version!r}; we accept {', '.join(acceptable)}",
                supported=(result.protocol_version,),
            )
        self._era = "handshake"
        self._protocol_version = result.protocol_version
        self._server_info = result.server_info
        self._server_capabilities = result.capabilities
        self._instructions = result.instructions
        await self._transport.send(make_notification("notifications/initialized"))

    # ------------------------------------------------------- session expiry

    async def _recover_session(self, generation: int) -> None:
        """Re-initialize after a session expiry, once for all concurrent callers."""
        if generation != self._generation:
            return  # someone already re-initialized since this request was sent
        if self._recovery is None:
            self._recovery = asyncio.ensure_future(self._reinitialize())
            self._recovery.add_done_callback(_retrieve)
        await self._await_recovery(self._recovery)

    async def _await_recovery(self, recovery: asyncio.Task[None]) -> None:
        """Wait for a session recovery without letting one waiter's cancellation stop it for all."""
        try:
            await asyncio.shield(recovery)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if recovery.cancelled() and (task is None or not task.cancelling()):
                raise ConnectionClosedError("client closed while re-initializing the session") from None
            raise

    async def _reinitialize(self) -> None:
        try:
            logger.info("session expired; re-initializing")
            await self._initialize()
            self._generation += 1
            if self._log_level is not None:
                await self._request_raw("logging/setLevel", {"level": self._log_level}, recover=False)
            for uri in sorted(self._subscriptions):
                try:
                    await self._request_raw("resources/subscribe", {"uri": uri}, recover=False)
                except MCPError as exc:
                    self._report(exc)
        finally:
            self._recovery = None

    # ------------------------------------------------------------- requests

    @overload
    async def request(
        self,
        method: str,
        params: Params = None,
        result_type: None = None,
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = _UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = _UNSET,
    ) -> dict[str, Any]: ...

    @overload
    async def request(
        self,
        method: str,
        params: Params,
        result_type: type[ResultT],
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = _UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = _UNSET,
    ) -> ResultT: ...

    async def request(
        self,
        method: str,
        params: Params = None,
        result_type: type[ResultT] | None = None,
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = _UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = _UNSET,
    ) -> ResultT | dict[str, Any]:
        """Send any request and wait for its result.

        Input-required results (modern era) are answered through the
        sampling/elicitation/roots handlers and the request is re-issued until
        it completes.

        Args:
            method: The JSON-RPC method.
            params: Params as a dict or a model (``_meta`` entries are kept).
            result_type: Model to parse the result into; ``None`` returns the raw dict.
            progress: Called for each progress notification of this request.
            timeout: Seconds without response or progress before giving up
                (default: the client's ``request_timeout``).
            max_total_timeout: Upper bound in seconds regardless of progress
                (default: the client's ``max_total_timeout``).

        Raises:
            MCPError: The server answered with a JSON-RPC error.
            RequestTimeoutError: The request timed out (the server was told to cancel it).
            ConnectionClosedError: The connection closed before the response.
            RemoteProtocolError: The result does not match ``result_type``.
        """
        self._check_usable()
        base = _params_dict(params)
        raw = await self._request_raw(
            method, base, progress=progress, timeout=timeout, max_total_timeout=max_total_timeout
        )
        raw = await self._resolve_input_required(method, base, raw, progress, timeout, max_total_timeout)
        if result_type is None:
            return raw
        return _parse(result_type, raw, method)

    async def notify(self, method: str, params: Params = None) -> None:
        """Send a notification to the server."""
        self._check_usable()
        body = _params_dict(params)
        await self._transport.send(make_notification(method, body or None))

    def _check_usable(self) -> None:
        if self._lost is not None:
            raise ConnectionClosedError(f"connection lost: {self._lost}") from self._lost
        if self._state == "closed":
            raise ConnectionClosedError("client is closed")
        if self._state != "ready":
            raise LocalProtocolError("client is not connected; use 'async with Client(...)' or connect()")

    def _meta_for(self, version: str | None) -> dict[str, Any]:
        """The reserved ``_meta`` entries every modern-era request carries."""
        if version is None:
            return {}
        meta: dict[str, Any] = {
            PROTOCOL_VERSION_META_KEY: version,
            CLIENT_INFO_META_KEY: _dump(self.client_info),
            CLIENT_CAPABILITIES_META_KEY: _dump(self.capabilities),
        }
        if self._log_level is not None:
            meta[LOG_LEVEL_META_KEY] = self._log_level
        return meta

    async def _request_raw(
        self,
        method: str,
        params: dict[str, Any],
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = _UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = _UNSET,
        probe_version: str | None = None,
        recover: bool = True,
        handshake: bool = False,
        sent: asyncio.Future[None] | None = None,
    ) -> dict[str, Any]:
        """Send one request and wait for its raw result (no input-required handling).

        ``sent``, if given, is resolved once the transport accepted the request.
        """
        if self._lost is not None:
            raise ConnectionClosedError(f"connection lost: {self._lost}") from self._lost
        if recover and self._recovery is not None:
            await self._await_recovery(self._recovery)
        request_timeout = self.request_timeout if isinstance(timeout, _Unset) else timeout
        total_timeout = self.max_total_timeout if isinstance(max_total_timeout, _Unset) else max_total_timeout

        if self._lost is not None:  # lost while we waited for a recovery
            raise ConnectionClosedError(f"connection lost: {self._lost}") from self._lost
        self._next_id += 1
        request_id: RequestId = self._next_id
        body = dict(params)
        meta = dict(body.get("_meta") or {})
        meta.update(self._meta_for(probe_version or (self._protocol_version if self._era == "modern" else None)))
        if progress is not None:
            meta["progressToken"] = request_id
        if meta:
            body["_meta"] = meta
        message = make_request(request_id, method, body or None)

        loop = asyncio.get_running_loop()
        entry = _Pending(new_future(loop), method, progress)
        self._pending[request_id] = entry
        try:
            generation = self._generation
            try:
                await self._transport.send(message)
            except SessionExpiredError:
                if not recover or self._era != "handshake":
                    raise
                await self._recover_session(generation)
                entry.last_activity = loop.time()
                await self._transport.send(message)  # once: a second expiry propagates
            entry.sent = True
            if sent is not None and not sent.done():
                sent.set_result(None)
            return await self._await_response(request_id, entry, request_timeout, total_timeout, handshake)
        finally:
            self._pending.pop(request_id, None)
            if not entry.future.done():
                entry.future.cancel()

    async def _await_response(
        self,
        request_id: RequestId,
        entry: _Pending,
        timeout: float | None,  # noqa: ASYNC109
        total_timeout: float | None,
        handshake: bool,
    ) -> dict[str, Any]:
        """Wait for the response; the client's watchdog timer fails it on timeout (progress re-arms it).

        The task awaits the pending future itself rather than ``asyncio.wait`` on it, and one timer
        serves every pending request rather than one timer each: under Pyodide every event-loop hop
        and every timer is a JavaScript task.
        """
        loop = asyncio.get_running_loop()
        future = entry.future
        entry.timeout = timeout
        entry.total_timeout = total_timeout
        entry.deadline = None if total_timeout is None else loop.time() + total_timeout
        due = self._expire(entry, loop.time())
        if due is not None:
            self._watchdog.arm(loop, due)
        try:
            return await future
        except _TimedOutError as exc:
            self._pending.pop(request_id, None)
            if not handshake:  # the spec forbids cancelling initialize
                await self._cancel_remote(request_id, "request timed out")
            raise RequestTimeoutError(f"{entry.method} (id {request_id}): {exc}") from None
        except asyncio.CancelledError:
            if future.cancelled() and not handshake:  # cancelled before any response came
                self._pending.pop(request_id, None)
                await self._cancel_remote(request_id, "cancelled by the client")
            raise

    def _expire(self, entry: _Pending, now: float) -> float | None:
        """Fail ``entry`` if its time is up; else when it is due (``None``: never)."""
        if entry.future.done():
            return None
        due = entry.due()
        if due is None or due > now:
            return due
        if entry.deadline is not None and now >= entry.deadline:
            entry.future.set_exception(_TimedOutError(f"no response within its total limit of {entry.total_timeout} s"))
        else:
            entry.future.set_exception(_TimedOutError(f"no response or progress within {entry.timeout} s"))
        return None

    def _on_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time out every awaited request that is due; re-arm for the next one."""
        now = loop.time()
        earliest: float | None = None
        for entry in list(self._pending.values()):
            if entry.sent and (due := self._expire(entry, now)) is not None:
                earliest = due if earliest is None else min(earliest, due)
        if earliest is not None:
            self._watchdog.arm(loop, earliest)

    async def _cancel_remote(self, request_id: RequestId, reason: str) -> None:
        """Tell the server we gave up on a request; the transport decides what that means on its wire."""
        self._recently_cancelled.append(request_id)
        if self._lost is not None or not self._transport.is_connected():
            return
        try:
            await self._transport.send(
                make_notification("notifications/cancelled", {"requestId": request_id, "reason": reason})
            )
        except TransportError as exc:
            logger.debug("could not send notifications/cancelled for %r: %s", request_id, exc)

    async def _resolve_input_required(
        self,
        method: str,
        base: dict[str, Any],
        raw: dict[str, Any],
        progress: ProgressCallback | None,
        timeout: Timeout,  # noqa: ASYNC109
        max_total_timeout: Timeout,
    ) -> dict[str, Any]:
        """Answer input-required results and re-issue the request until it completes (modern era)."""
        rounds = 0
        delay = _STATE_ONLY_DELAY[0]
        while raw.get("resultType") == "input_required":
            rounds += 1
            if rounds > _MAX_INPUT_ROUNDS:
                raise RemoteProtocolError(f"{method}: server asked for input more than {_MAX_INPUT_ROUNDS} times")
            interim = _parse(InputRequiredResult, raw, method)
            retry = {k: v for k, v in base.items() if k not in ("inputResponses", "requestState")}
            if interim.input_requests:
                delay = _STATE_ONLY_DELAY[0]
                retry["inputResponses"] = await self._answer_inputs(
                    {key: _dump(req) for key, req in interim.input_requests.items()}
                )
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _STATE_ONLY_DELAY[1])
            if interim.request_state is not None:
                retry["requestState"] = interim.request_state
            raw = await self._request_raw(
                method, retry, progress=progress, timeout=timeout, max_total_timeout=max_total_timeout
            )
        return raw

    async def _answer_inputs(self, requests: dict[str, dict[str, Any]]) -> dict[str, Any]:
        tasks = {
            key: asyncio.ensure_future(self._serve(req.get("method", ""), req.get("params")))
            for key, req in requests.items()
        }
        try:
            results = await asyncio.gather(*tasks.values())
        except BaseException:
            for task in tasks.values():
                task.cancel()
            raise
        return dict(zip(tasks, results, strict=True))

    # ---------------------------------------------------------- MCP methods

    async def ping(self) -> None:
        """Check that the server is alive.

        The modern era removed ``ping``; there a ``server/discover`` serves as the liveness check.
        """
        if self._era == "modern":
            await self.request("server/discover", None, DiscoverResult)
        else:
            await self.request("ping", None, EmptyResult)

    async def list_tools(self, cursor: str | None = None, *, paginate: bool = True) -> ListToolsResult:
        """List the server's tools, following ``nextCursor`` to the end unless ``paginate=False``."""
        return await self._list("tools/list", ListToolsResult, "tools", cursor, paginate)

    async def list_resources(self, cursor: str | None = None, *, paginate: bool = True) -> ListResourcesResult:
        """List the server's resources, following ``nextCursor`` unless ``paginate=False``."""
        return await self._list("resources/list", ListResourcesResult, "resources", cursor, paginate)

    async def list_resource_templates(
        self, cursor: str | None = None, *, paginate: bool = True
    ) -> ListResourceTemplatesResult:
        """List the server's resource templates, following ``nextCursor`` unless ``paginate=False``."""
        return await self._list(
            "resources/templates/list", ListResourceTemplatesResult, "resource_templates", cursor, paginate
        )

    async def list_prompts(self, cursor: str | None = None, *, paginate: bool = True) -> ListPromptsResult:
        """List the server's prompts, following ``nextCursor`` unless ``paginate=False``."""
        return await self._list("prompts/list", ListPromptsResult, "prompts", cursor, paginate)

    async def iter_tools(self) -> AsyncIterator[Tool]:
        """Yield the server's tools, fetching one page at a time."""
        async for page in self._pages("tools/list", ListToolsResult):
            for tool in page.tools:
                yield tool

    async def iter_resources(self) -> AsyncIterator[Resource]:
        """Yield the server's resources, fetching one page at a time."""
        async for page in self._pages("resources/list", ListResourcesResult):
            for resource in page.resources:
                yield resource

    async def iter_resource_templates(self) -> AsyncIterator[ResourceTemplate]:
        """Yield the server's resource templates, fetching one page at a time."""
        async for page in self._pages("resources/templates/list", ListResourceTemplatesResult):
            for template in page.resource_templates:
                yield template

    async def iter_prompts(self) -> AsyncIterator[Prompt]:
        """Yield the server's prompts, fetching one page at a time."""
        async for page in self._pages("prompts/list", ListPromptsResult):
            for prompt in page.prompts:
                yield prompt

    async def _pages(self, method: str, page_type: type[_PageT], cursor: str | None = None) -> AsyncIterator[_PageT]:
        seen: set[str] = set()
        while True:
            page = await self.request(method, {"cursor": cursor} if cursor is not None else None, page_type)
            yield page
            cursor = page.next_cursor
            if cursor is None:
                return
            if cursor in seen or len(seen) >= _MAX_PAGES:
                raise RemoteProtocolError(f"{method}: server repeats cursor {cursor!r} (pagination loop)")
            seen.add(cursor)

    async def _list(
        self, method: str, page_type: type[_PageT], field: str, cursor: str | None, paginate: bool
    ) -> _PageT:
        if not paginate:
            return await self.request(method, {"cursor": cursor} if cursor is not None else None, page_type)
        items: list[Any] = []
        last: _PageT | None = None
        async for page in self._pages(method, page_type, cursor):
            items.extend(getattr(page, field))
            last = page
        assert last is not None
        return last.model_copy(update={field: items, "next_cursor": None})

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = _UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = _UNSET,
    ) -> CallToolResult:
        """Call a tool. A tool's own failure comes back as ``result.is_error``, not as an exception.

        Args:
            name: The tool name.
            arguments: The tool arguments.
            progress: Called as ``progress(progress, total, message)`` while the tool runs.
            timeout: Seconds without response or progress (default: the client's).
            max_total_timeout: Upper bound in seconds regardless of progress (default: the client's).
        """
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = dict(arguments)
        return await self.request(
            "tools/call",
            params,
            CallToolResult,
            progress=progress,
            timeout=timeout,
            max_total_timeout=max_total_timeout,
        )

    async def read_resource(self, uri: str) -> ReadResourceResult:
        """Read one resource."""
        return await self.request("resources/read", {"uri": uri}, ReadResourceResult)

    async def get_prompt(self, name: str, arguments: Mapping[str, str] | None = None) -> GetPromptResult:
        """Get a prompt, filled in with ``arguments``."""
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = dict(arguments)
        return await self.request("prompts/get", params, GetPromptResult)

    async def complete(
        self,
        ref: PromptReference | ResourceTemplateReference | Mapping[str, Any],
        argument_name: str,
        value: str,
        context_arguments: Mapping[str, str] | None = None,
    ) -> CompleteResult:
        """Ask for completions of one argument of a prompt or resource template."""
        params: dict[str, Any] = {
            "ref": _params_dict(ref),
            "argument": {"name": argument_name, "value": value},
        }
        if context_arguments is not None:
            params["context"] = {"arguments": dict(context_arguments)}
        return await self.request("completion/complete", params, CompleteResult)

    async def set_logging_level(self, level: LoggingLevel) -> None:
        """Ask the server for log messages at ``level`` and above.

        Handshake era: sends ``logging/setLevel`` (re-sent after a session
        expiry). Modern era: the level rides in every request's ``_meta``.
        """
        self._check_usable()
        if self._era == "handshake":
            await self.request("logging/setLevel", {"level": level}, EmptyResult)
        self._log_level = level

    async def subscribe(self, uri: str) -> None:
        """Get ``notifications/resources/updated`` for ``uri`` (see ``on_resource_updated``).

        Handshake era: ``resources/subscribe`` (re-sent after a session
        expiry). Modern era: the URI joins the ``subscriptions/listen`` stream,
        which is re-opened with the new set.
        """
        self._check_usable()
        if self._era == "handshake":
            await self.request("resources/subscribe", {"uri": uri}, EmptyResult)
            self._subscriptions.add(uri)
        else:
            self._subscriptions.add(uri)
            await self._restart_listen()

    async def unsubscribe(self, uri: str) -> None:
        """Stop updates for ``uri``."""
        self._check_usable()
        if self._era == "handshake":
            await self.request("resources/unsubscribe", {"uri": uri}, EmptyResult)
            self._subscriptions.discard(uri)
        else:
            self._subscriptions.discard(uri)
            await self._restart_listen()

    async def notify_roots_list_changed(self) -> None:
        """Tell the server our roots changed (handshake era; the modern era has no such notification)."""
        if self._era == "handshake":
            await self.notify("notifications/roots/list_changed")

    async def update_subscriptions(self) -> None:
        """Re-open the modern-era ``subscriptions/listen`` stream after changing list-changed handlers."""
        self._check_usable()
        if self._era == "modern":
            await self._restart_listen()

    @property
    def subscriptions(self) -> frozenset[str]:
        """The resource URIs we are subscribed to."""
        return frozenset(self._subscriptions)

    # ----------------------------------------------------- modern listening

    def _listen_filter(self) -> dict[str, Any] | None:
        filt: dict[str, Any] = {}
        if self.on_tools_list_changed is not None:
            filt["toolsListChanged"] = True
        if self.on_prompts_list_changed is not None:
            filt["promptsListChanged"] = True
        if self.on_resources_list_changed is not None:
            filt["resourcesListChanged"] = True
        if self._subscriptions:
            filt["resourceSubscriptions"] = sorted(self._subscriptions)
        return filt or None

    async def _restart_listen(self) -> None:
        """Close the current ``subscriptions/listen`` stream (if any) and open one with the current filter."""
        old, self._listen_task = self._listen_task, None
        if old is not None:
            old.cancel()  # the request's cancel path tells the server
            await asyncio.wait((old,), timeout=1.0)
        filt = self._listen_filter()
        if filt is not None and self._state == "ready":
            sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._listen_task = task = asyncio.ensure_future(self._listen(filt, sent))
            await asyncio.wait((sent, task), return_when=asyncio.FIRST_COMPLETED)  # the server has been asked

    async def _listen(self, filt: dict[str, Any], sent: asyncio.Future[None]) -> None:
        try:
            await self._request_raw(
                "subscriptions/listen", {"notifications": filt}, timeout=None, max_total_timeout=None, sent=sent
            )
        except TransportError as exc:
            if self._state != "closed":
                self._report(exc)

    # --------------------------------------------------------------- reading

    async def _read_loop(self) -> None:
        failures = 0
        while True:
            try:
                message = await self._transport.receive()
            except ConnectionClosedError as exc:
                self._connection_lost(exc)
                return
            except SessionExpiredError as exc:
                self._report(exc)
                self._fail_pending(exc, sent_only=True)
            except TransportError as exc:  # RemoteProtocolError and friends: report, keep reading
                self._report(exc)
            except Exception as exc:
                self._report(exc)
                self._connection_lost(ConnectionClosedError(f"transport failed: {exc!r}"))
                return
            else:
                failures = 0
                try:
                    self._handle(message)
                except Exception as exc:
                    self._report(exc)
                continue
            failures += 1
            if failures >= _MAX_RECEIVE_ERRORS:
                self._connection_lost(ConnectionClosedError(f"{failures} receive errors in a row"))
                return
            await asyncio.sleep(0)

    def _handle(self, message: Any) -> None:
        if isinstance(message, JSONRPCResponse):
            self._resolve(message.id, message.result, None)
        elif isinstance(message, JSONRPCError):
            if message.id is None:
                self._report(
                    RemoteProtocolError(
                        f"server error without a request id: [{message.error.code}] {message.error.message}"
                    )
                )
            else:
                self._resolve(message.id, None, _error_to_exception(message.error))
        elif isinstance(message, JSONRPCNotification):
            self._on_notification(message.method, message.params or {})
        elif isinstance(message, JSONRPCRequest):
            task = asyncio.ensure_future(self._answer(message))
            self._server_requests[message.id] = task
            task.add_done_callback(functools.partial(self._forget_server_request, message.id))
        else:
            self._report(RemoteProtocolError(f"transport delivered a {type(message).__name__}, not a JSON-RPC message"))

    def _resolve(self, request_id: RequestId, result: dict[str, Any] | None, error: Exception | None) -> None:
        entry = self._pending.get(request_id)
        if entry is None or entry.future.done():
            if request_id in self._recently_cancelled or (entry is not None and entry.future.cancelled()):
                logger.debug("late response for cancelled request %r dropped", request_id)
            else:
                self._report(RemoteProtocolError(f"response for unknown request id {request_id!r}"))
            return
        if error is not None:
            entry.future.set_exception(error)
        else:
            assert result is not None
            entry.future.set_result(result)

    def _on_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/progress":
            token = params.get("progressToken")
            entry = self._pending.get(token) if isinstance(token, (int, str)) else None
            if entry is None or entry.progress is None:
                logger.debug("progress for unknown token %r", token)
                return
            entry.last_activity = asyncio.get_running_loop().time()
            progress = params.get("progress")
            total = params.get("total")
            if not isinstance(progress, (int, float)):
                self._report(RemoteProtocolError(f"progress notification without a numeric progress: {params!r}"))
                return
            self._queue(
                entry.progress,
                float(progress),
                float(total) if isinstance(total, (int, float)) else None,
                params.get("message") if isinstance(params.get("message"), str) else None,
            )
        elif method == "notifications/cancelled":
            cancelled = params.get("requestId")
            task = self._server_requests.get(cancelled) if isinstance(cancelled, int | str) else None
            if task is not None:
                task.cancel()
        elif method == "notifications/message":
            if self.on_log is not None:
                try:
                    self._queue(self.on_log, LoggingMessageNotificationParams.model_validate(params))
                except ValidationError:
                    self._report(RemoteProtocolError(f"invalid notifications/message params: {params!r}"))
        elif method == "notifications/tools/list_changed":
            self._queue(self.on_tools_list_changed)
        elif method == "notifications/resources/list_changed":
            self._queue(self.on_resources_list_changed)
        elif method == "notifications/prompts/list_changed":
            self._queue(self.on_prompts_list_changed)
        elif method == "notifications/resources/updated":
            uri = params.get("uri")
            if isinstance(uri, str):
                self._queue(self.on_resource_updated, uri)
            else:
                self._report(RemoteProtocolError(f"notifications/resources/updated without a uri: {params!r}"))
        else:
            logger.debug("ignoring notification %s", method)

    def _queue(self, handler: Callable[..., Awaitable[None] | None] | None, *args: Any) -> None:
        if handler is not None and self._events is not None:
            self._events.put_nowait((handler, args))

    async def _dispatch_loop(self) -> None:
        assert self._events is not None
        while True:
            item = await self._events.get()
            if item is None:
                return
            handler, args = item
            try:
                await _call(handler, *args)
            except Exception as exc:
                self._report(exc)

    def _connection_lost(self, exc: TransportError) -> None:
        if self._lost is None and self._state != "closed":
            self._lost = exc
        self._fail_pending(exc if isinstance(exc, ConnectionClosedError) else ConnectionClosedError(str(exc)))

    def _fail_pending(self, exc: TransportError, *, sent_only: bool = False) -> None:
        for entry in list(self._pending.values()):
            if not entry.future.done() and (entry.sent or not sent_only):
                entry.future.set_exception(exc)

    def _report(self, exc: Exception) -> None:
        logger.warning("%s: %s", type(exc).__name__, exc)
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:
                logger.exception("on_error callback failed")

    # ------------------------------------------------- server -> client

    async def _answer(self, request: JSONRPCRequest) -> None:
        try:
            result = await self._serve(request.method, request.params)
            reply: JSONRPCResponse | JSONRPCError = make_response(request.id, result)
        except MCPError as exc:
            reply = error_response(request.id, exc.code, exc.error_message, exc.data)
        except ValidationError as exc:
            reply = error_response(request.id, INVALID_PARAMS, f"invalid params: {exc.errors()[0]['msg']}")
        except asyncio.CancelledError:
            return  # the server cancelled its request: no response
        except Exception as exc:
            self._report(exc)
            reply = error_response(request.id, INTERNAL_ERROR, f"client handler failed: {exc}")
        try:
            await self._transport.send(reply)
        except TransportError as exc:
            self._report(exc)

    def _forget_server_request(self, request_id: RequestId, _task: object) -> None:
        self._server_requests.pop(request_id, None)

    async def _serve(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """Run the handler for one server request; raise MCPError when there is none."""
        body = {"method": method, "params": params or {}}
        if method == "ping":
            return {}
        if method == "roots/list" and self.roots_handler is not None:
            return _dump(await self.roots_handler())
        if method == "sampling/createMessage" and self.sampling_handler is not None:
            return _dump(await self.sampling_handler(CreateMessageRequest.model_validate(body).params))
        if method == "elicitation/create" and self.elicitation_handler is not None:
            return _dump(await self.elicitation_handler(ElicitRequest.model_validate(body).params))
        raise MCPError(METHOD_NOT_FOUND, f"client does not handle {method!r}")


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a background task's exception as seen (its awaiters already got it)."""
    if not task.cancelled():
        task.exception()

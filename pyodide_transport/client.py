"""The MCP client: a thin asyncio shell over the sans-I/O :class:`~pyodide_transport.session.ClientSession`.

The same code runs in CPython and in Pyodide: single-threaded asyncio, no threads, no blocking
calls, no browser code. The transport moves messages; the session core decides what they mean;
this shell waits, sends, and runs handlers.

Protocol eras (``mcp_types.version``):

* **modern** (2026-07-28): no handshake and no session. ``server/discover`` tells which versions
  the server speaks; every request carries the protocol version, client info and capabilities in
  ``params._meta``; server-to-client requests (sampling, elicitation, roots) come back inside
  results as input-required results, answered by re-issuing the request.
* **handshake** (2024-11-05 .. 2025-11-25): ``initialize`` then ``notifications/initialized``;
  server-to-client requests arrive as JSON-RPC requests and get JSON-RPC responses.

By default the client probes ``server/discover`` first and falls back to the handshake when the
server shows no sign of speaking the modern era (the table is
:data:`pyodide_transport.session.NEGOTIATION`).

Modern-era notifications outside a request (list changes, resource updates) need a
``subscriptions/listen`` stream: the client keeps one open whose filter follows the list-changed
handlers set at connect time and the URIs passed to :meth:`Client.subscribe`, and re-opens it
(cancelling the old one) whenever that set changes or :meth:`Client.update_subscriptions` is called.

Session expiry policy (handshake era): when ``transport.send`` raises :class:`SessionExpiredError`
(the request was never processed), the client re-runs the handshake with the same client info and
capabilities, re-applies the logging level and resource subscriptions, then re-sends that request
once. Concurrent expiries trigger one re-initialization (single-flight, tracked by the session
generation). Requests already in flight may or may not have run; when the transport reports the
expiry from ``receive()`` they fail with ``SessionExpiredError`` and are not re-sent.

Importing this module does not import ``mcp_types.methods`` (its per-version validator maps are
slow to import in Pyodide); results are parsed with the version-free ``mcp_types`` models.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, TypeAlias, TypeVar

from mcp_types import (
    ClientCapabilities,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    EmptyResult,
    Implementation,
    ListRootsResult,
    LoggingLevel,
    LoggingMessageNotificationParams,
    RootsCapability,
    SamplingCapability,
    ServerCapabilities,
)
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, JSONRPCError, JSONRPCResponse
from mcp_types.jsonrpc import JSONRPCRequest as _Request
from pydantic import BaseModel, ValidationError

from ._api import UNSET, MCPMethods, Params, ProgressCallback, Timeout, Unset, params_dict
from .errors import (
    ConnectionClosedError,
    LocalProtocolError,
    MCPError,
    SessionExpiredError,
    TransportError,
)
from .memory import Inbox, Watchdog, new_future
from .messages import RequestId, TransportMessage, error_response, make_notification, make_response
from .session import (
    ClientSession,
    Completed,
    ConnectionLost,
    Discover,
    Era,
    Event,
    Failed,
    Handshake,
    Initialize,
    ListChanged,
    LogReceived,
    Modern,
    Negotiation,
    Progressed,
    ResourceUpdated,
    Send,
    ServerRequest,
    ServerRequestCancelled,
    Step,
    Violation,
    dump,
    input_round,
    listen_filter,
    parse_result,
    reissuable,
)
from .transport import Transport
from .wire import validation_message

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

_STATE_ONLY_DELAY: Final = (0.05, 0.25)
"""First and maximum back-off (seconds) when an input-required result carries only requestState."""

_MAX_RECEIVE_ERRORS: Final = 64
"""Consecutive failing ``receive()`` calls after which the connection counts as lost."""

LogHandler: TypeAlias = Callable[[LoggingMessageNotificationParams], Awaitable[None] | None]
"""Called with each ``notifications/message`` the server sends."""

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

ResultT = TypeVar("ResultT", bound=BaseModel)
_Waiter: TypeAlias = "tuple[asyncio.Future[dict[str, Any]], ProgressCallback | None]"


async def _call(handler: Callable[..., Awaitable[None] | None], *args: Any) -> None:
    """Call a handler that may be sync or async."""
    outcome = handler(*args)
    if inspect.isawaitable(outcome):
        await outcome


class Client(MCPMethods):
    """An MCP client session over one transport, speaking every known protocol version.

    Use as ``async with Client(transport) as client:`` or call :meth:`connect` and :meth:`close`
    yourself. See the module docstring for the negotiation and session expiry policies.

    Args:
        transport: Any object implementing the ``Transport`` protocol.
        client_info: Our name and version, sent to the server.
        capabilities: Extra client capabilities. ``roots``, ``sampling`` and ``elicitation`` are
            declared exactly when the matching handler is set.
        protocol_version: ``None`` negotiates (modern first, then handshake); a handshake version
            skips ``server/discover`` and requires the server to agree on exactly that version; a
            modern version requires the server's ``server/discover`` to list it.
        request_timeout: Default seconds to wait for a response; any progress notification for
            the request restarts the clock. ``None``: wait forever.
        max_total_timeout: Default upper bound (seconds) on a request however much progress
            arrives. ``None``: no bound.
        on_log: Handler for ``notifications/message``.
        on_tools_list_changed: Handler for ``notifications/tools/list_changed``.
        on_resources_list_changed: Handler for ``notifications/resources/list_changed``.
        on_prompts_list_changed: Handler for ``notifications/prompts/list_changed``.
        on_resource_updated: Handler for ``notifications/resources/updated``.
        roots_handler: Answers ``roots/list``.
        sampling_handler: Answers ``sampling/createMessage``.
        elicitation_handler: Answers ``elicitation/create``.
        on_error: Told about problems that belong to no request (also logged).

    Notification handlers run one at a time in arrival order, in a task of their own, so they may
    call the client. Server requests each get a task.
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
        self._negotiation = Negotiation(protocol_version)  # refuses an unknown version at once
        self._transport = transport
        self.client_info = client_info or DEFAULT_CLIENT_INFO
        self._base_capabilities = capabilities or ClientCapabilities()
        self._core = ClientSession(self.client_info, self._base_capabilities)
        self.request_timeout = request_timeout
        self.max_total_timeout = max_total_timeout
        self.on_log = on_log
        self.on_tools_list_changed = on_tools_list_changed
        self.on_resources_list_changed = on_resources_list_changed
        self.on_prompts_list_changed = on_prompts_list_changed
        self.on_resource_updated = on_resource_updated
        self._roots_handler = roots_handler
        self._sampling_handler = sampling_handler
        self._elicitation_handler = elicitation_handler
        self.on_error = on_error
        self._refresh_capabilities()

        self._state: Literal["new", "connecting", "ready", "closed"] = "new"
        self._lost: TransportError | None = None
        self._server_info: Implementation | None = None
        self._server_capabilities: ServerCapabilities | None = None
        self._instructions: str | None = None
        self._subscriptions: set[str] = set()
        self._waiters: dict[RequestId, _Waiter] = {}
        self._recovery: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._events: Inbox[tuple[Callable[..., Awaitable[None] | None], tuple[Any, ...]] | None] = Inbox()
        self._server_requests: dict[RequestId, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._listen_task: asyncio.Task[None] | None = None
        self._watchdog = Watchdog(self._on_watchdog)  # one timer for every pending request's timeout
        self._tool_hints = {}

    # ------------------------------------------------------------------ state

    @property
    def transport(self) -> Transport:
        """The transport this client runs over."""
        return self._transport

    @property
    def protocol_version(self) -> str | None:
        """The negotiated protocol version (None before connect)."""
        return self._core.protocol_version

    @property
    def era(self) -> Era | None:
        """``"modern"`` (2026-07-28, no session) or ``"handshake"`` (initialize), once connected."""
        return self._core.era

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
        return self._core.generation

    @property
    def capabilities(self) -> ClientCapabilities:
        """The capabilities we declare: the given ones, with roots/sampling/elicitation set by handler."""
        return self._core.capabilities

    @property
    def roots_handler(self) -> RootsHandler | None:
        """Answers ``roots/list``; setting it changes the capabilities we declare."""
        return self._roots_handler

    @roots_handler.setter
    def roots_handler(self, handler: RootsHandler | None) -> None:
        self._roots_handler = handler
        self._refresh_capabilities()

    @property
    def sampling_handler(self) -> SamplingHandler | None:
        """Answers ``sampling/createMessage``; setting it changes the capabilities we declare."""
        return self._sampling_handler

    @sampling_handler.setter
    def sampling_handler(self, handler: SamplingHandler | None) -> None:
        self._sampling_handler = handler
        self._refresh_capabilities()

    @property
    def elicitation_handler(self) -> ElicitationHandler | None:
        """Answers ``elicitation/create``; setting it changes the capabilities we declare."""
        return self._elicitation_handler

    @elicitation_handler.setter
    def elicitation_handler(self, handler: ElicitationHandler | None) -> None:
        self._elicitation_handler = handler
        self._refresh_capabilities()

    def _refresh_capabilities(self) -> None:
        caps = self._base_capabilities.model_copy()
        caps.roots = None if self._roots_handler is None else caps.roots or RootsCapability(list_changed=True)
        caps.sampling = None if self._sampling_handler is None else caps.sampling or SamplingCapability()
        caps.elicitation = None if self._elicitation_handler is None else caps.elicitation or ElicitationCapability()
        self._core.capabilities = caps

    def is_connected(self) -> bool:
        """Whether the client is connected and usable."""
        return self._state == "ready" and self._lost is None

    # ------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Client:
        """Connect (unless already connected: ``async with await connect(url) as client`` works too)."""
        if self._state == "new":
            await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Start reading and negotiate the protocol version with the server.

        The client owns the transport: a failed connect closes the client and the transport,
        like :meth:`close`.

        Raises:
            UnsupportedProtocolVersionError: No version both sides speak.
            MCPError: The server refused the handshake.
            TransportError: The transport failed.
        """
        if self._state != "new":
            raise LocalProtocolError(f"connect() called on a client that is {self._state}")
        self._state = "connecting"
        self._reader = asyncio.ensure_future(self._read_loop())
        self._dispatcher = asyncio.ensure_future(self._dispatch_loop())
        try:
            await self._negotiate()
        except BaseException:
            await self.close()
            raise
        self._state = "ready"
        if self._core.era == "modern" and self._listen_filter() is not None:
            await self._restart_listen()

    async def close(self) -> None:
        """Stop the reader, fail pending requests and close the transport. Idempotent.

        Modern era: an open ``subscriptions/listen`` stream is cancelled first. Handshake era: MCP
        has no shutdown message; the transport ends the session its own way (e.g. HTTP ``DELETE``).
        """
        if self._state == "closed":
            return
        self._state = "closed"
        if self._listen_task is not None:  # cancelling it tells the server (notifications/cancelled)
            self._listen_task.cancel()
            await asyncio.wait((self._listen_task,), timeout=1.0)
            self._listen_task = None
        tasks = [
            t
            for t in (
                self._reader,
                self._dispatcher,
                self._recovery,
                *self._server_requests.values(),
                *self._background,
            )
            if t is not None and not t.done()
        ]
        for task in tasks:
            task.cancel()
        self._apply(self._core.close(ConnectionClosedError("client closed")))
        self._watchdog.cancel()
        try:
            await self._transport.close()
        except TransportError as exc:
            logger.debug("transport close failed: %s", exc)
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    # ------------------------------------------------------------ negotiation

    async def _negotiate(self) -> None:
        negotiation = self._negotiation
        step: Step = negotiation.start()
        while True:
            if isinstance(step, Discover):
                try:
                    raw = await self._request_raw("server/discover", {}, probe_version=step.version, recover=False)
                except TransportError as exc:
                    logger.debug("server/discover failed (%s)", exc)
                    step = negotiation.discover_failed(exc)
                else:
                    step = negotiation.discovered(raw)
            elif isinstance(step, Initialize):
                step = await self._initialize(step.version)
            elif isinstance(step, Modern):
                self._core.adopt("modern", step.version)
                self._server_capabilities = step.result.capabilities
                self._instructions = step.result.instructions
                self._server_info = step.server_info
                if step.problem is not None:
                    self._report(step.problem)
                return
            else:
                return

    async def _initialize(self, version: str) -> Handshake:
        """Run the initialize handshake (also used to re-establish an expired session)."""
        params = {
            "protocolVersion": version,
            "capabilities": dump(self.capabilities),
            "clientInfo": dump(self.client_info),
        }
        raw = await self._request_raw("initialize", params, recover=False)
        step = self._negotiation.initialized(raw)
        result = step.result
        self._core.adopt("handshake", result.protocol_version)
        self._server_info = result.server_info
        self._server_capabilities = result.capabilities
        self._instructions = result.instructions
        await self._transport.send(make_notification("notifications/initialized"))
        return step

    # ------------------------------------------------------- session expiry

    async def _recover_session(self, generation: int) -> None:
        """Re-initialize after a session expiry, once for all concurrent callers."""
        if generation != self._core.generation:
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
            await self._initialize(self._negotiation.reinitialize().version)
            self._core.generation += 1
            if self._core.log_level is not None:
                await self._request_raw("logging/setLevel", {"level": self._core.log_level}, recover=False)
            for uri in sorted(self._subscriptions):
                try:
                    await self._request_raw("resources/subscribe", {"uri": uri}, recover=False)
                except MCPError as exc:
                    self._report(exc)
        finally:
            self._recovery = None

    # ------------------------------------------------------------- requests

    async def _request(
        self,
        method: str,
        params: Params,
        result_type: type[ResultT] | None,
        *,
        progress: ProgressCallback | None,
        timeout: Timeout,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout,
    ) -> ResultT | dict[str, Any]:
        """:meth:`request`: send, answer input-required results (modern era) until complete, parse."""
        self._check_usable()
        base = params_dict(params)
        raw = await self._reissuing(
            method, base, progress=progress, timeout=timeout, max_total_timeout=max_total_timeout
        )
        rounds = 0
        delay = _STATE_ONLY_DELAY[0]
        while (interim := input_round(method, raw, rounds)) is not None:  # modern era: input required
            rounds += 1
            retry = {k: v for k, v in base.items() if k not in ("inputResponses", "requestState")}
            if interim.input_requests:
                delay = _STATE_ONLY_DELAY[0]
                retry["inputResponses"] = await self._answer_inputs(
                    {key: dump(req) for key, req in interim.input_requests.items()}
                )
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _STATE_ONLY_DELAY[1])
            if interim.request_state is not None:
                retry["requestState"] = interim.request_state
            raw = await self._reissuing(
                method, retry, progress=progress, timeout=timeout, max_total_timeout=max_total_timeout
            )
        if result_type is None:
            return raw
        parsed: ResultT = parse_result(result_type, raw, method)
        return parsed

    async def _reissuing(
        self,
        method: str,
        params: dict[str, Any],
        *,
        progress: ProgressCallback | None,
        timeout: Timeout,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout,
    ) -> dict[str, Any]:
        """One request; in the 2026-07-28 era, sent once more (new id) if its answer was lost and it is safe.

        A 2026-07-28 stream cannot be resumed, so a broken one loses its request. What cannot change
        anything (see :func:`~pyodide_transport.session.reissuable`) is sent again, once; anything
        else fails with an error that says it may or may not have run.
        """
        options: dict[str, Any] = {"progress": progress, "timeout": timeout, "max_total_timeout": max_total_timeout}
        try:
            return await self._request_raw(method, params, **options)
        except ConnectionClosedError as exc:
            if not exc.request_ids or self._core.era != "modern" or self._lost is not None:
                raise
            if not reissuable(method, params, self._tool_hints):
                raise ConnectionClosedError(
                    f"{exc}; {method} may or may not have run, and was not sent again (it could change something)",
                    code=exc.code,
                    reason=exc.reason,
                ) from exc
            logger.info("%s lost with its stream (%s); sending it again", method, exc)
        return await self._request_raw(method, params, **options)  # once: a second loss propagates

    async def notify(self, method: str, params: Params = None) -> None:
        """Send a notification to the server."""
        self._check_usable()
        body = params_dict(params)
        await self._transport.send(make_notification(method, body or None))

    def _check_usable(self) -> None:
        if self._lost is not None:
            raise ConnectionClosedError(f"connection lost: {self._lost}") from self._lost
        if self._state == "closed":
            raise ConnectionClosedError("client is closed")
        if self._state != "ready":
            raise LocalProtocolError("client is not connected; use 'async with Client(...)' or connect()")

    async def _request_raw(
        self,
        method: str,
        params: dict[str, Any],
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = UNSET,
        probe_version: str | None = None,
        recover: bool = True,
        sent: asyncio.Future[None] | None = None,
    ) -> dict[str, Any]:
        """Send one request and wait for its raw result (no input-required handling).

        Awaits the waiter future itself (no ``asyncio.wait``), and one watchdog timer serves every
        request: under Pyodide every event-loop hop and every timer is a JavaScript task.
        ``sent``, if given, is resolved once the transport accepted the request.
        """
        if self._lost is not None:
            raise ConnectionClosedError(f"connection lost: {self._lost}") from self._lost
        if recover and self._recovery is not None:
            await self._await_recovery(self._recovery)
            if self._lost is not None:  # lost while we waited for the recovery
                raise ConnectionClosedError(f"connection lost: {self._lost}") from self._lost
        core = self._core
        message = core.begin(
            method,
            params,
            progress=progress is not None,
            timeout=self.request_timeout if isinstance(timeout, Unset) else timeout,
            total_timeout=self.max_total_timeout if isinstance(max_total_timeout, Unset) else max_total_timeout,
            version=probe_version,
        )
        request_id = message.id
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = new_future(loop)
        self._waiters[request_id] = (future, progress)
        try:
            generation = core.generation
            try:
                await self._transport.send(message)
            except SessionExpiredError:
                if not recover or core.era != "handshake":
                    raise
                await self._recover_session(generation)
                await self._transport.send(message)  # once: a second expiry propagates
            core.sent(request_id, loop.time())
            due = core.next_deadline
            if due is not None:
                self._watchdog.arm(loop, due)
            if sent is not None and not sent.done():
                sent.set_result(None)
            return await future
        except asyncio.CancelledError:
            note = core.cancel(request_id, "cancelled by the client")
            if note is not None:
                await self._tell(note)
            raise
        finally:
            del self._waiters[request_id]
            core.forget(request_id)
            if not future.done():
                future.cancel()

    async def _tell(self, message: TransportMessage) -> None:
        """Send something the session owes the server (a cancellation); failures are only logged."""
        if self._lost is not None or not self._transport.is_connected():
            return
        try:
            await self._transport.send(message)
        except TransportError as exc:
            logger.debug("could not send %s: %s", getattr(message, "method", "a message"), exc)

    def _on_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time out every request that is due; re-arm for the next one."""
        self._apply(self._core.expire(loop.time()))
        due = self._core.next_deadline
        if due is not None:
            self._watchdog.arm(loop, due)

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

    # ---------------------------------------------------------- era-aware methods

    async def set_logging_level(self, level: LoggingLevel) -> None:
        """Ask the server for log messages at ``level`` and above.

        Handshake era: sends ``logging/setLevel`` (re-sent after a session expiry). Modern era:
        the level rides in every request's ``_meta``.
        """
        self._check_usable()
        if self._core.era == "handshake":
            await self.request("logging/setLevel", {"level": level}, EmptyResult)
        self._core.set_log_level(level)

    async def subscribe(self, uri: str) -> None:
        """Get ``notifications/resources/updated`` for ``uri`` (see ``on_resource_updated``).

        Handshake era: ``resources/subscribe`` (re-sent after a session expiry). Modern era: the
        URI joins the ``subscriptions/listen`` stream, which is re-opened with the new set.
        """
        self._check_usable()
        if self._core.era == "handshake":
            await self.request("resources/subscribe", {"uri": uri}, EmptyResult)
            self._subscriptions.add(uri)
        else:
            self._subscriptions.add(uri)
            await self._restart_listen()

    async def unsubscribe(self, uri: str) -> None:
        """Stop updates for ``uri``."""
        self._check_usable()
        if self._core.era == "handshake":
            await self.request("resources/unsubscribe", {"uri": uri}, EmptyResult)
            self._subscriptions.discard(uri)
        else:
            self._subscriptions.discard(uri)
            await self._restart_listen()

    async def notify_roots_list_changed(self) -> None:
        """Tell the server our roots changed (handshake era; the modern era has no such notification)."""
        if self._core.era == "handshake":
            await self.notify("notifications/roots/list_changed")

    async def update_subscriptions(self) -> None:
        """Re-open the modern-era ``subscriptions/listen`` stream after changing list-changed handlers."""
        self._check_usable()
        if self._core.era == "modern":
            await self._restart_listen()

    @property
    def subscriptions(self) -> frozenset[str]:
        """The resource URIs we are subscribed to."""
        return frozenset(self._subscriptions)

    # ----------------------------------------------------- modern listening

    def _listen_filter(self) -> dict[str, Any] | None:
        return listen_filter(
            self.on_tools_list_changed is not None,
            self.on_prompts_list_changed is not None,
            self.on_resources_list_changed is not None,
            self._subscriptions,
        )

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
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await self._transport.receive()
            except TransportError as exc:
                self._apply(self._core.fail(exc))
                if self._lost is not None:
                    return
                if exc.request_ids:
                    continue  # the transport lost particular requests, not the connection
                failures += 1
                if failures >= _MAX_RECEIVE_ERRORS:
                    self._lose(ConnectionClosedError(f"{failures} receive errors in a row"))
                    return
                await asyncio.sleep(0)
                continue
            except Exception as exc:
                self._report(exc)
                self._lose(ConnectionClosedError(f"transport failed: {exc!r}"))
                return
            failures = 0
            try:
                self._apply(self._core.receive(message, loop.time()))
            except Exception as exc:
                self._report(exc)

    def _lose(self, error: ConnectionClosedError) -> None:
        self._apply([*self._core.close(error), ConnectionLost(error)])

    def _apply(self, events: list[Event]) -> None:
        """Act on what the session core decided."""
        for event in events:
            if isinstance(event, Completed):
                waiter = self._waiters.get(event.request_id)
                if waiter is not None and not waiter[0].done():
                    waiter[0].set_result(event.result)
            elif isinstance(event, Failed):
                waiter = self._waiters.get(event.request_id)
                if waiter is not None and not waiter[0].done():
                    waiter[0].set_exception(event.error)
            elif isinstance(event, Progressed):
                waiter = self._waiters.get(event.request_id)
                if waiter is not None and waiter[1] is not None:
                    self._queue(waiter[1], event.progress, event.total, event.message)
            elif isinstance(event, LogReceived):
                self._queue(self.on_log, event.params)
            elif isinstance(event, ListChanged):
                self._queue(getattr(self, f"on_{event.kind}_list_changed"))
            elif isinstance(event, ResourceUpdated):
                self._queue(self.on_resource_updated, event.uri)
            elif isinstance(event, ServerRequest):
                self._start_answer(event.request)
            elif isinstance(event, ServerRequestCancelled):
                task = self._server_requests.get(event.request_id)
                if task is not None:
                    task.cancel()
            elif isinstance(event, Send):
                self._spawn(self._tell(event.message))
            elif isinstance(event, Violation):
                self._report(event.error)
            elif isinstance(event, ConnectionLost) and self._lost is None and self._state != "closed":
                self._lost = event.error

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _queue(self, handler: Callable[..., Awaitable[None] | None] | None, *args: Any) -> None:
        if handler is not None:
            self._events.put_nowait((handler, args))

    async def _dispatch_loop(self) -> None:
        while True:
            item = await self._events.get()
            if item is None:
                return
            handler, args = item
            try:
                await _call(handler, *args)
            except Exception as exc:
                self._report(exc)

    def _report(self, exc: Exception) -> None:
        logger.warning("%s: %s", type(exc).__name__, exc)
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:
                logger.exception("on_error callback failed")

    # ------------------------------------------------- server -> client

    def _start_answer(self, request: _Request) -> None:
        task = asyncio.ensure_future(self._answer(request))
        self._server_requests[request.id] = task
        task.add_done_callback(functools.partial(self._forget_server_request, request.id))

    async def _answer(self, request: _Request) -> None:
        try:
            result = await self._serve(request.method, request.params)
            reply: JSONRPCResponse | JSONRPCError = make_response(request.id, result)
        except MCPError as exc:
            reply = error_response(request.id, exc.code, exc.error_message, exc.data)
        except ValidationError as exc:
            reply = error_response(request.id, INVALID_PARAMS, validation_message(exc, "invalid params"))
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
        if method == "roots/list" and self._roots_handler is not None:
            return dump(await self._roots_handler())
        if method == "sampling/createMessage" and self._sampling_handler is not None:
            return dump(await self._sampling_handler(CreateMessageRequest.model_validate(body).params))
        if method == "elicitation/create" and self._elicitation_handler is not None:
            return dump(await self._elicitation_handler(ElicitRequest.model_validate(body).params))
        raise MCPError(METHOD_NOT_FOUND, f"client does not handle {method!r}")


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a background task's exception as seen (its awaiters already got it)."""
    if not task.cancelled():
        task.exception()

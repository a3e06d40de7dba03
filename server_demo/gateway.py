"""Gateway mode: upstream MCP servers offered to browsers at ``/gateway/NAME/mcp`` and ``/gateway/NAME/ws``.

The browser side is the demo server's own endpoints, reused: :class:`GatewayEndpoint` is a
:class:`~server_demo.http.StreamableHttpEndpoint` (same CORS, Origin and Host rules, limits,
sessions, SSE streams, both protocol eras) whose :meth:`~GatewayEndpoint.new_core` makes a
:class:`ForwardingSession` instead of the demo core, and ``/ws`` is the demo's WebSocket endpoint
with a ``serve`` hook. ``GET /gateway`` lists the upstreams (name, kind, endpoints; never a command,
URL or environment). ``GET /gateway/match?url=URL`` names the URL upstream configured with that URL
(404 otherwise): the explorer asks after a direct connection failed with a CORS error, and the
caller learns only whether the URL it already knows is configured. ``GET /gateway/match?command=C&args=JSON``
(optional ``&name=N``) names the stdio upstream configured with that command line, the same way: the
explorer asks when it imports an ``mcpServers`` file with stdio entries.

Isolation: every browser session gets its own upstream connection (a process per session for a
stdio upstream, its own HTTP session or socket for a URL): no state, ids or server-to-client
requests can cross between sessions, and messages are forwarded verbatim (ids unchanged). A
2026-07-28 request has no session: to a URL upstream it goes on a short-lived connection of its
own; to a stdio upstream, on the upstream's shared process (below).

An upstream may list replicas (``"url": [...]``): each new session takes the next one round-robin,
skipping those whose breaker (one per replica) is open, and stays on it. A router entry
(``"routes": {PREFIX: UPSTREAM}``, optional ``"default"``) is served by a ``RouterSession``
(:mod:`server_demo.gateway_router`): one connection per target, tool names prefixed, ids and
progress tokens rewritten by the gateway. The sessionless requests of a stdio upstream share one
long-lived process, ids and progress tokens rewritten (:mod:`server_demo.gateway_shared`).

Each upstream connection is ``LoggingTransport(PolicyTransport(CircuitBreakerTransport(raw)))``:
one structured log record per message (method, id, size; no payloads, so no secrets), the
configured allow/deny lists and rate per session (a refused request is answered with a JSON-RPC
error and the session goes on), and a circuit breaker shared by all sessions of that upstream (a
dead upstream fails fast with "Backend unavailable" until its cool-down, then one trial).

Security: upstreams come only from the server's configuration (an unknown NAME is a 404, nothing
is ever spawned or fetched on a request's say-so); a stdio process gets only
:data:`~server_demo.gateway_config.INHERITED_ENV` plus its configured ``env``; a browser's
``Authorization`` reaches an upstream only with ``"forwardAuthorization": true``; configured env and
header values are scrubbed from upstream stderr before it is logged. Idle HTTP sessions expire
(and their processes stop) after the endpoint's idle timeout; a WebSocket's upstream lives as long
as the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import mcp_types as mt
from mcp_types.jsonrpc import INTERNAL_ERROR
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from pyodide_transport.errors import CircuitOpenError, ConnectionClosedError, PolicyError, TransportError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    TransportMessage,
    decode_or_error,
    encode_message,
    error_response,
)
from pyodide_transport.middleware import (
    POLICY_ERROR_CODE,
    CircuitBreaker,
    CircuitBreakerTransport,
    LoggingTransport,
    PolicyTransport,
    RateLimit,
)
from pyodide_transport.transport import Transport

from .config import DEFAULT_MAX_MESSAGE_BYTES, SecurityConfig, StreamableHttpServerConfig
from .core import MessageSink, Server
from .http import SessionCore, StreamableHttpEndpoint
from .http_rules import check_security, cors_headers
from .websocket import WebSocketServerTransport, websocket_endpoint

__all__ = [
    "UPSTREAM_ERROR",
    "ForwardingSession",
    "Gateway",
    "GatewayEndpoint",
    "StdioUpstreamTransport",
    "Upstream",
    "gateway_routes",
    "normalize_url",
]

from .gateway_config import INHERITED_ENV, GatewayConfig, UpstreamConfig
from .gateway_shared import SharedRequest, SharedUpstream

logger = logging.getLogger("server_demo.gateway")

UPSTREAM_ERROR: Final = INTERNAL_ERROR
"""The JSON-RPC code of a request the upstream could not answer (gone, unreachable, over a limit)."""

_STOP_GRACE: Final = 2.0


_MAX_MATCH_URL: Final = 2048
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_url(url: str) -> str | None:
    """``url`` in a comparable form (lower-case scheme and host, no default port, no trailing ``/``), or None.

    ``http://LOCALHOST:80/mcp/`` and ``http://localhost/mcp`` are the same endpoint; a URL that is not
    absolute http(s) or ws(s) is None.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/") or "", parts.query, ""))


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class StdioUpstreamTransport:
    """A child process speaking newline-delimited JSON-RPC on stdin/stdout, as a ``Transport``.

    The process starts on the first ``send``; ``close`` closes its stdin, waits a little, then
    terminates (and kills) it. Its stderr goes to the gateway log at DEBUG, configured secrets scrubbed.
    """

    transport_type = "stdio"

    def __init__(self, config: UpstreamConfig, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        assert config.command is not None
        self.config = config
        self.max_message_bytes = max_message_bytes
        self.process: asyncio.subprocess.Process | None = None
        self._closed = False
        self._start_lock = asyncio.Lock()
        self._stderr_task: asyncio.Task[None] | None = None

    def environment(self) -> dict[str, str]:
        """What the child's environment is: :data:`INHERITED_ENV` (when set here) plus the configured ``env``."""
        env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
        env.update(self.config.env)
        return env

    async def _start(self) -> asyncio.subprocess.Process:
        async with self._start_lock:
            if self.process is not None:
                return self.process
            if self._closed:
                raise self._gone()
            assert self.config.command is not None
            try:
                self.process = await asyncio.create_subprocess_exec(
                    self.config.command,
                    *self.config.args,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=self.environment(),
                    cwd=self.config.cwd,
                    limit=self.max_message_bytes + 1024,
                )
            except OSError as exc:
                self._closed = True
                raise ConnectionClosedError(
                    f"upstream {self.config.name!r}: cannot start its command: {exc.strerror or exc}"
                ) from None
            self._stderr_task = asyncio.create_task(self._drain_stderr(self.process))
            logger.info("upstream %s: process %d started", self.config.name, self.process.pid)
            return self.process

    async def _drain_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        secrets = self.config.secrets()
        with contextlib.suppress(OSError, ValueError):
            while line := await process.stderr.readline():
                text = line.decode("utf-8", "replace").rstrip()
                logger.debug("upstream %s stderr: %s", self.config.name, _scrub(text, secrets))

    def _gone(self) -> ConnectionClosedError:
        code = self.process.returncode if self.process is not None else None
        how = f" (exit code {code})" if code is not None else ""
        return ConnectionClosedError(f"upstream {self.config.name!r}: its process ended{how}")

    async def send(self, message: TransportMessage) -> None:
        """Write one message as one line (starting the process first)."""
        if self._closed:
            raise self._gone()
        process = await self._start()
        assert process.stdin is not None
        try:
            process.stdin.write(encode_message(message).encode() + b"\n")
            await process.stdin.drain()
        except (OSError, RuntimeError) as exc:
            self._closed = True
            raise ConnectionClosedError(f"upstream {self.config.name!r}: its stdin closed: {exc}") from None

    async def receive(self) -> TransportMessage:
        """The next valid line from the process; raises ``ConnectionClosedError`` once it ended."""
        process = await self._start()
        assert process.stdout is not None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line over the limit: the process cannot be trusted to resynchronise
                self._closed = True
                raise ConnectionClosedError(f"upstream {self.config.name!r} sent an oversized line") from None
            except OSError:
                line = b""
            if not line:
                self._closed = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 1.0)
                raise self._gone()
            if not line.strip():
                continue
            decoded = decode_or_error(line, allow_batch=False, what="line")
            if isinstance(decoded, JSONRPCError):
                logger.warning("upstream %s sent a bad line: %s", self.config.name, decoded.error.message)
                continue
            return decoded[0][0]

    async def close(self) -> None:
        """Stop the process: close its stdin, wait, terminate, kill. Idempotent."""
        self._closed = True
        async with self._start_lock:  # a start under way finishes first, then is stopped like any other
            process = self.process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), _STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._stderr_task is not None:
            self._stderr_task.cancel()
        logger.info("upstream %s: process %d stopped", self.config.name, process.pid)

    def is_connected(self) -> bool:
        """Whether the process runs (or has yet to start)."""
        return not self._closed


class Upstream:
    """One configured upstream at run time: its breakers (one per replica), replica choice and live count.

    A router entry is an ``Upstream`` too (it has endpoints and a listing entry) whose ``targets``
    the :class:`Gateway` fills in; it has no connection of its own (``open`` refuses).
    """

    def __init__(self, config: UpstreamConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        settings = config.breaker
        self.breakers = [CircuitBreaker(settings.failures, settings.cool_down) for _ in range(config.replicas)]
        self.breaker = self.breakers[0]  # the only one unless ``url`` lists replicas
        self.opened = [0] * config.replicas  # connections made per replica, ever
        self.live = 0
        self.clock = clock
        self.targets: dict[str, Upstream] = {}  # a router's targets, by name
        self._next_replica = 0

    @property
    def endpoints(self) -> dict[str, str]:
        """Paths the browser connects to."""
        base = f"/gateway/{self.config.name}"
        return {"mcp": f"{base}/mcp", "ws": f"{base}/ws"}

    def describe(self) -> dict[str, Any]:
        """The listing entry: name, kind, endpoints, and a replica count or a router's routes (never a URL)."""
        config = self.config
        entry: dict[str, Any] = {"name": config.name, "kind": config.kind, "endpoints": self.endpoints}
        if config.replicas > 1:
            entry["replicas"] = config.replicas
        if config.kind == "router":
            entry["routes"] = dict(config.routes)
            if config.default is not None:
                entry["default"] = config.default
        return entry

    def pick_replica(self) -> int:
        """The replica of the next connection: round-robin, skipping those whose breaker is open.

        When every breaker is open the next replica in turn is used anyway: its breaker fails the
        session fast with "circuit open" (and a retry time), which is what the browser should see.
        """
        count = len(self.breakers)
        now = self.clock()
        chosen = self._next_replica % count
        for step in range(count):
            index = (self._next_replica + step) % count
            breaker = self.breakers[index]
            if breaker.state != "open" or breaker.retry_after(now) <= 0.0:
                chosen = index
                break
        self._next_replica = (chosen + 1) % count
        return chosen

    def open(self, browser_headers: Mapping[str, str]) -> Transport:
        """A new upstream connection, on the next replica, wrapped in logging, policy and that replica's breaker.

        The connection stays on its replica for its whole life (an MCP session is stateful).

        Raises:
            ConnectionClosedError: The live-process limit of a stdio upstream is reached, or this is a router.
        """
        config = self.config
        if config.kind == "router":
            raise ConnectionClosedError(f"upstream {config.name!r} is a router: it has no connection of its own")
        raw: Transport
        headers = dict(config.headers)
        auth = browser_headers.get("authorization")
        if config.forward_authorization and auth is not None:
            headers["Authorization"] = auth
        replica = 0
        if config.kind == "stdio":
            if self.live >= config.max_processes:
                raise ConnectionClosedError(
                    f"upstream {config.name!r}: {config.max_processes} processes are running (the limit); try later"
                )
            raw = StdioUpstreamTransport(config)
        else:
            replica = self.pick_replica()
            url = config.urls[replica]
            if config.kind == "http":
                from pyodide_transport.cpython import HttpxHTTPClient
                from pyodide_transport.fetch import FetchTransport

                raw = FetchTransport(url, headers=headers, fetch=HttpxHTTPClient(), max_reconnect_attempts=2)
            else:
                from pyodide_transport.cpython import websockets_connect
                from pyodide_transport.websocket import WebSocketTransport

                raw = WebSocketTransport(url, connector=websockets_connect, auto_reconnect=False)
            if config.replicas > 1:
                logger.info("upstream %s: new connection on replica %d of %d", config.name, replica, config.replicas)
        self.opened[replica] += 1
        # The replica's breaker, shared by every session on that replica.
        breaker = CircuitBreakerTransport(raw, clock=self.clock, breaker=self.breakers[replica])
        policy = config.policy
        rate = RateLimit(policy.rate, max(1, int(policy.rate))) if policy.rate is not None else None
        guarded = PolicyTransport(breaker, allow_methods=policy.allow, deny_methods=policy.deny, rate=rate)
        return LoggingTransport(guarded, logger=logging.getLogger(f"server_demo.gateway.{config.name}"))

    def session(
        self,
        sink: MessageSink,
        *,
        headers: Mapping[str, str],
        protocol_version: str | None = None,
        on_request_done: Callable[[RequestId], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> SessionCore:
        """What stands behind one browser session: a :class:`ForwardingSession`, or a router's session."""
        if self.config.kind == "router":
            from .gateway_router import RouterSession  # it builds on this module

            router = RouterSession(self, sink, headers=headers, on_request_done=on_request_done, on_lost=on_lost)
            router.set_protocol_version(protocol_version)
            return router
        forwarder = ForwardingSession(self, sink, headers=headers, on_request_done=on_request_done, on_lost=on_lost)
        forwarder.protocol_version = protocol_version
        return forwarder


def _error_for(request_id: RequestId, exc: TransportError, config: UpstreamConfig) -> JSONRPCError:
    """The JSON-RPC error a browser's request gets when its upstream refused or failed it.

    The upstream's URL and configured secrets are scrubbed from the text: the browser learns the
    upstream's name and what went wrong, not where it lives or what it was given.
    """
    name = config.name
    hidden = (*config.secrets(), *((config.url,) if config.url else ()))
    text = _scrub(str(exc), tuple(sorted(hidden, key=len, reverse=True)))
    if isinstance(exc, PolicyError):
        data = {"rule": exc.rule, "reason": text}
        return error_response(request_id, POLICY_ERROR_CODE, f"Request refused by policy ({text})", data)
    if isinstance(exc, CircuitOpenError):
        return error_response(
            request_id,
            UPSTREAM_ERROR,
            f"Upstream {name!r} unavailable (circuit open: {text})",
            {"retry_after": exc.retry_after, "upstream": name},
        )
    return error_response(request_id, UPSTREAM_ERROR, f"Upstream {name!r} failed: {text}", {"upstream": name})


class ForwardingSession:
    """Stands in for the demo core behind one browser session: forwards both ways to its own upstream.

    Browser messages go upstream verbatim; upstream messages go to ``sink`` with the browser request
    they belong to: a response its id, a progress notification the request that sent the token,
    anything else (logging, list changes, sampling/elicitation/roots requests) the newest request
    still running, else ``None`` (the session's GET stream). When the upstream ends, every running
    request is answered with an error naming it and ``on_lost`` is called (the HTTP endpoint ends
    the session, so the browser's next request gets 404 and a fresh upstream).
    """

    def __init__(
        self,
        upstream: Upstream,
        sink: MessageSink,
        *,
        headers: Mapping[str, str],
        on_request_done: Callable[[RequestId], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.protocol_version: str | None = None
        self.client_info: mt.Implementation | None = None
        self.client_capabilities = mt.ClientCapabilities()
        self._sink = sink
        self._headers = dict(headers)
        self._on_request_done = on_request_done
        self._on_lost = on_lost
        self._transport: Transport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[RequestId, None] = {}  # insertion-ordered: the newest is last
        self._tokens: dict[str | int, RequestId] = {}
        self._lost: str | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.closed = False

    @property
    def active_requests(self) -> int:
        """Browser requests the upstream has not answered yet."""
        return len(self._pending)

    def _open(self) -> Transport:
        if self._transport is None:
            self._transport = self.upstream.open(self._headers)
            self.upstream.live += 1
            self._reader = asyncio.create_task(self._read(self._transport))
        return self._transport

    async def handle(self, message: TransportMessage) -> None:
        """Forward one browser message upstream (a refused or failed request is answered at once)."""
        if self.closed:
            raise ConnectionClosedError("session is closed")
        if isinstance(message, JSONRPCRequest):
            if self._lost is not None:
                await self._answer(message.id, ConnectionClosedError(self._lost))
                return
            self._pending[message.id] = None
            meta = (message.params or {}).get("_meta")
            token = meta.get("progressToken") if isinstance(meta, dict) else None
            if isinstance(token, str | int) and not isinstance(token, bool):
                self._tokens[token] = message.id
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            cancelled = (message.params or {}).get("requestId")
            if isinstance(cancelled, str | int) and cancelled in self._pending:
                self._finish(cancelled)
                if self._on_request_done is not None:
                    self._on_request_done(cancelled)
        if self._lost is not None:
            return  # nothing more reaches a dead upstream
        try:
            transport = self._open()
        except TransportError as exc:
            await self._failed(message, exc)
            return
        if self.upstream.config.kind == "http":
            # Streamable HTTP's send may last as long as the request (a JSON-mode answer), while the upstream
            # asks the browser something that must reach it meanwhile: send on the side, never block the caller.
            task = asyncio.create_task(self._send(transport, message))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        else:
            await self._send(transport, message)  # a pipe or a socket: quick, and in order

    async def _send(self, transport: Transport, message: TransportMessage) -> None:
        try:
            await transport.send(message)
        except TransportError as exc:
            await self._failed(message, exc)

    async def _failed(self, message: TransportMessage, exc: TransportError) -> None:
        """A message the upstream did not take: a request is answered with the error (once), anything else dropped."""
        if not isinstance(message, JSONRPCRequest):
            logger.info("upstream %s: dropped a %s: %s", self.upstream.config.name, type(message).__name__, exc)
        elif message.id in self._pending:
            self._finish(message.id)
            await self._answer(message.id, exc)

    def _finish(self, request_id: RequestId) -> None:
        self._pending.pop(request_id, None)
        for token in [t for t, rid in self._tokens.items() if rid == request_id]:
            del self._tokens[token]

    async def _answer(self, request_id: RequestId, exc: TransportError) -> None:
        with contextlib.suppress(ConnectionClosedError):
            await self._sink(_error_for(request_id, exc, self.upstream.config), request_id)

    def _related(self, message: TransportMessage) -> RequestId | None:
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            return message.id
        if isinstance(message, JSONRPCNotification) and message.method == "notifications/progress":
            token = (message.params or {}).get("progressToken")
            if isinstance(token, str | int) and token in self._tokens:
                return self._tokens[token]
        return next(reversed(self._pending)) if self._pending else None

    async def _read(self, transport: Transport) -> None:
        while True:
            try:
                message = await transport.receive()
            except TransportError as exc:
                if exc.request_ids:  # those requests are lost; the connection goes on
                    for request_id in exc.request_ids:
                        if request_id in self._pending:
                            self._finish(request_id)
                            await self._answer(request_id, exc)
                    continue
                await self._upstream_ended(exc)
                return
            if isinstance(message, JSONRPCResponse | JSONRPCError):
                if message.id is None or message.id not in self._pending:
                    continue  # an answer to a request already cancelled or failed
                if isinstance(message, JSONRPCResponse) and isinstance(message.result, dict):
                    version = message.result.get("protocolVersion")
                    if isinstance(version, str) and self.protocol_version is None:
                        self.protocol_version = version
                related: RequestId | None = message.id
                self._finish(message.id)
            else:
                related = self._related(message)
            try:
                await self._sink(message, related)
            except ConnectionClosedError as exc:
                if isinstance(message, JSONRPCRequest):  # the browser cannot be asked: tell the upstream
                    with contextlib.suppress(TransportError):
                        await transport.send(error_response(message.id, UPSTREAM_ERROR, f"client unreachable: {exc}"))

    async def _upstream_ended(self, exc: TransportError) -> None:
        name = self.upstream.config.name
        self._lost = f"upstream {name!r} is gone ({exc}); start a new session"
        if not self.closed:
            logger.warning("upstream %s ended under a live session: %s", name, exc)
        for request_id in list(self._pending):
            self._finish(request_id)
            await self._answer(request_id, exc)
        if self._on_lost is not None and not self.closed:
            self._on_lost()

    async def close(self) -> None:
        """Stop forwarding and close the upstream (a stdio upstream's process stops)."""
        if self.closed:
            return
        self.closed = True
        transport, self._transport = self._transport, None
        if transport is not None:
            self.upstream.live -= 1
            with contextlib.suppress(TransportError):
                await transport.close()
        for task in [*self._sending, *((self._reader,) if self._reader is not None else ())]:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class GatewayEndpoint(StreamableHttpEndpoint):
    """``/gateway/NAME/mcp``: the demo's Streamable HTTP endpoint with a :class:`ForwardingSession` per session."""

    def __init__(self, upstream: Upstream, config: StreamableHttpServerConfig) -> None:
        super().__init__(Server(f"gateway:{upstream.config.name}", "0"), config)
        self.upstream = upstream
        self._ending: set[asyncio.Future[None]] = set()
        # the sessionless requests of a stdio upstream share one process (a URL upstream is stateless already)
        self.shared = SharedUpstream(upstream, clock=config.clock) if upstream.config.kind == "stdio" else None

    def new_core(
        self,
        sink: MessageSink,
        *,
        back_channel: bool,
        protocol_version: str | None = None,
        on_request_done: Callable[[RequestId], None] | None = None,
        on_close_stream: Callable[[RequestId], None] | None = None,
        headers: Mapping[str, str],
        sessionless: bool = False,
    ) -> SessionCore:
        """A forwarder (or a router's session); when its upstream ends, the HTTP session holding it ends too.

        A sessionless (2026-07-28) request to a stdio upstream rides the endpoint's shared process instead
        (:mod:`server_demo.gateway_shared`).
        """
        if sessionless and self.shared is not None:
            return SharedRequest(self.shared, sink)

        def lost() -> None:
            for session_id, http_session in list(self.sessions.items()):
                if http_session.core is session:
                    self._ending.add(asyncio.ensure_future(self._end_session(session_id)))

        session = self.upstream.session(
            sink, headers=headers, protocol_version=protocol_version, on_request_done=on_request_done, on_lost=lost
        )
        return session

    async def expire_idle(self) -> None:
        """End the sessions idle for longer than the endpoint's idle timeout (and an idle shared process)."""
        await self._expire_idle()
        if self.shared is not None:
            await self.shared.stop_if_idle(self.config.session_idle_timeout)

    async def close(self) -> None:
        """End every session and stop the shared process."""
        await super().close()
        if self.shared is not None:
            await self.shared.close()


class Gateway:
    """Every configured upstream and the routes that serve them."""

    def __init__(self, config: GatewayConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.upstreams = {name: Upstream(upstream, clock=clock) for name, upstream in config.upstreams.items()}
        for upstream in self.upstreams.values():  # a router reaches its targets' own breakers and replicas
            upstream.targets = {name: self.upstreams[name] for name in upstream.config.targets}
        self.endpoints: list[GatewayEndpoint] = []

    def listing(self) -> list[dict[str, Any]]:
        """``GET /gateway``'s body."""
        return [upstream.describe() for upstream in self.upstreams.values()]

    def match(self, url: str) -> Upstream | None:
        """The URL upstream configured with ``url`` (compared after :func:`normalize_url`), if any.

        The explorer asks after a direct connection failed with a CORS error: the answer names the
        upstream to go through; the browser already knows the URL it tried, and learns nothing of
        any other configured URL.
        """
        wanted = normalize_url(url)
        if wanted is None:
            return None
        for upstream in self.upstreams.values():
            if any(normalize_url(u) == wanted for u in upstream.config.urls):
                return upstream
        return None

    def match_stdio(self, command: str, args: tuple[str, ...], name: str = "") -> Upstream | None:
        """The stdio upstream configured with ``command`` and exactly ``args``, if any (the one named ``name`` first).

        A command matches when equal, or when the given one is a bare name (no slash or backslash) equal to
        the configured command's file name (``python`` matches ``/usr/bin/python``). The name alone
        never matches: a different command under the same name is a different server. The explorer asks
        when it imports an ``mcpServers`` file: the browser learns only whether the command line it
        already holds is configured (never an environment, a working directory or a URL).
        """

        def same_command(configured: str) -> bool:
            if command == configured:
                return True
            bare = "/" not in command and "\\" not in command
            return bare and configured.replace("\\", "/").rsplit("/", 1)[-1] == command

        found = [
            upstream
            for upstream in self.upstreams.values()
            if upstream.config.kind == "stdio"
            and upstream.config.command is not None
            and same_command(upstream.config.command)
            and upstream.config.args == args
        ]
        return next((u for u in found if u.config.name == name), found[0] if found else None)

    async def serve_websocket(
        self,
        upstream: Upstream,
        transport: WebSocketServerTransport,
        *,
        idle: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """One browser WebSocket: a :class:`ForwardingSession` (or a router's session) writing straight back to it.

        With ``idle``, a socket with no message either way for that long and no request running is
        closed (1001), which stops its upstream process: a socket whose peer vanished without a close
        keeps nothing alive for long.
        """
        lost = asyncio.Event()
        last = [clock()]

        async def sink(message: TransportMessage, related: RequestId | None) -> None:
            last[0] = clock()
            await transport.send(message)

        headers = {k.lower(): v for k, v in transport.websocket.headers.items()}
        session = upstream.session(sink, headers=headers, on_lost=lost.set)

        async def pump() -> None:
            while True:
                try:
                    message = await transport.receive()
                except ConnectionClosedError:
                    return
                last[0] = clock()
                await session.handle(message)

        async def watch(limit: float) -> None:
            while True:
                await asyncio.sleep(min(max(limit / 4, 0.05), 30.0))
                if not session.active_requests and clock() - last[0] > limit:
                    return

        pumping = asyncio.create_task(pump())
        ended = asyncio.create_task(lost.wait())
        waits: set[asyncio.Task[Any]] = {pumping, ended}
        idling = asyncio.create_task(watch(idle)) if idle is not None else None
        if idling is not None:
            waits.add(idling)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await session.close()
            if ended.done() and not ended.cancelled():
                await transport._close(1011, "upstream ended")
            elif idling is not None and idling.done() and not idling.cancelled():
                logger.info("upstream %s: a WebSocket idle for %.0f s closed", upstream.config.name, idle)
                await transport._close(1001, "idle timeout")
            await transport.close()

    def routes(
        self, security: SecurityConfig, endpoint_config: Callable[[], StreamableHttpServerConfig], max_ws: int
    ) -> list[Route | WebSocketRoute]:
        """``GET /gateway`` and, per upstream, ``/gateway/NAME/mcp`` and ``/gateway/NAME/ws``.

        Only configured names get routes: any other ``/gateway/...`` path is a plain 404.
        """

        async def listing(request: Request) -> Response:
            answered, cors = _guard(request, security)
            if answered is not None:
                return answered
            return JSONResponse({"upstreams": self.listing()}, headers=cors)

        async def match(request: Request) -> Response:
            answered, cors = _guard(request, security)
            if answered is not None:
                return answered
            params = request.query_params
            if "command" in params:
                return _match_stdio(
                    self, params.get("command", ""), params.get("args", "[]"), params.get("name", ""), cors
                )
            url = params.get("url", "")
            if not url or len(url) > _MAX_MATCH_URL:
                return JSONResponse({"error": f"give ?url= (at most {_MAX_MATCH_URL} characters)"}, 400, headers=cors)
            upstream = self.match(url)
            if upstream is None:
                return JSONResponse({"error": "no configured upstream has that URL"}, 404, headers=cors)
            return JSONResponse(upstream.describe(), headers=cors)

        routes: list[Route | WebSocketRoute] = [
            Route("/gateway", listing, methods=["GET", "OPTIONS"]),
            Route("/gateway/match", match, methods=["GET", "OPTIONS"]),
        ]
        for upstream in self.upstreams.values():
            endpoint = GatewayEndpoint(upstream, endpoint_config())
            self.endpoints.append(endpoint)

            async def serve(
                transport: WebSocketServerTransport, upstream: Upstream = upstream, endpoint: GatewayEndpoint = endpoint
            ) -> None:
                config = endpoint.config
                await self.serve_websocket(upstream, transport, idle=config.session_idle_timeout, clock=config.clock)

            ws = websocket_endpoint(endpoint.server, security, max_ws, serve=serve)
            routes.append(Route(upstream.endpoints["mcp"], endpoint))
            routes.append(WebSocketRoute(upstream.endpoints["ws"], ws))
        return routes

    async def sweep_idle(self, interval: float) -> None:
        """Every ``interval`` seconds, end idle HTTP sessions (stopping their processes) without waiting for traffic."""
        while True:
            await asyncio.sleep(interval)
            for endpoint in self.endpoints:
                await endpoint.expire_idle()

    async def close(self) -> None:
        """End every session (stopping every upstream process)."""
        for endpoint in self.endpoints:
            await endpoint.close()


def _match_stdio(gateway: Gateway, command: str, args_text: str, name: str, cors: dict[str, str]) -> Response:
    """``GET /gateway/match?command=C&args=JSON&name=N``: the stdio upstream with that command line, or 404."""
    if not command or len(command) + len(args_text) + len(name) > _MAX_MATCH_URL:
        return JSONResponse(
            {"error": f"give ?command= (at most {_MAX_MATCH_URL} characters in all)"}, 400, headers=cors
        )
    try:
        args = json.loads(args_text)
    except ValueError:
        args = None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return JSONResponse({"error": "?args= must be a JSON list of strings"}, 400, headers=cors)
    upstream = gateway.match_stdio(command, tuple(args), name)
    if upstream is None:
        return JSONResponse({"error": "no configured stdio upstream has that command and arguments"}, 404, headers=cors)
    return JSONResponse(upstream.describe(), headers=cors)


def _guard(request: Request, security: SecurityConfig) -> tuple[Response | None, dict[str, str]]:
    """Host/Origin checks and CORS of a GET endpoint: (a refusal or the preflight's answer, else None; CORS)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    origin = headers.get("origin")
    rejected = check_security(headers.get("host"), origin, security)
    if rejected is not None:
        return Response(rejected.body(), rejected.status, media_type=rejected.media_type), {}
    cors = cors_headers(origin, security)
    if request.method == "OPTIONS":
        return Response(b"", 204, headers={**cors, "Access-Control-Allow-Methods": "GET, OPTIONS"}), cors
    return None, cors


def gateway_routes(
    gateway: Gateway,
    security: SecurityConfig,
    endpoint_config: Callable[[], StreamableHttpServerConfig],
    max_ws: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[Route | WebSocketRoute]:
    """The gateway's routes (see :meth:`Gateway.routes`)."""
    return gateway.routes(security, endpoint_config, max_ws)

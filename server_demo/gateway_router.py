"""Capability routing's shell: :class:`RouterSession` carries out a :class:`~server_demo.gateway_core.RouterCore`.

A router entry (``{"routes": {"calc_": "demo-a", "sdk_": "sdk"}, "default": "demo-a"}``, see
:mod:`server_demo.gateway_config`) is served at ``/gateway/NAME/mcp`` and ``/ws`` like any upstream;
behind each browser session sits a :class:`RouterSession`: one upstream connection per target (each
a :class:`~server_demo.gateway.ForwardingSession`, so each keeps its own policy, breaker, replica
choice and error scrubbing), and the core deciding where every message goes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import mcp_types as mt

from pyodide_transport.errors import ConnectionClosedError
from pyodide_transport.messages import JSONRPCRequest, JSONRPCResponse, RequestId, TransportMessage

from .core import MessageSink
from .gateway import ForwardingSession, Upstream
from .gateway_core import RouterCore, ToBrowser, ToTarget

__all__ = ["RouterSession"]


class RouterSession:
    """The async shell around a :class:`RouterCore`: plays the ``SessionCore`` role, like ``ForwardingSession``.

    Each target is a :class:`~server_demo.gateway.ForwardingSession` (opened on its first message)
    whose output feeds the core; the core's actions are carried out in order. When any target's
    connection ends, the whole session is lost (``on_lost``): its state is spread over all of them.
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
        config = upstream.config
        self.upstream = upstream
        self.core = RouterCore(config.name, config.routes, config.default)
        self.protocol_version: str | None = None
        self.client_info: mt.Implementation | None = None
        self.client_capabilities = mt.ClientCapabilities()
        self._sink = sink
        self._on_request_done = on_request_done
        self._on_lost = on_lost
        self.targets: dict[str, ForwardingSession] = {
            name: ForwardingSession(
                upstream.targets[name], self._target_sink(name), headers=headers, on_lost=self._target_lost
            )
            for name in self.core.targets
        }
        self.closed = False

    @property
    def active_requests(self) -> int:
        """Browser requests not answered yet."""
        return self.core.active_requests

    def set_protocol_version(self, version: str | None) -> None:
        """The protocol version of the session (a 2026-07-28 request's, given before any message)."""
        self.protocol_version = version
        for target in self.targets.values():
            target.protocol_version = version

    async def handle(self, message: TransportMessage) -> None:
        """Route one browser message."""
        if self.closed:
            raise ConnectionClosedError("session is closed")
        self.core.from_browser(message)
        await self._flush()

    def _target_sink(self, name: str) -> MessageSink:
        async def sink(message: TransportMessage, related: RequestId | None) -> None:
            self.core.from_target(name, message)
            await self._flush()

        return sink

    def _target_lost(self) -> None:
        if self._on_lost is not None and not self.closed:
            self._on_lost()

    async def _flush(self) -> None:
        for action in self.core.drain():
            if isinstance(action, ToTarget):
                target = self.targets[action.target]
                with contextlib.suppress(ConnectionClosedError):  # closed under us: nothing left to tell it
                    await target.handle(action.message)
            elif isinstance(action, ToBrowser):
                await self._deliver(action)
            elif self._on_request_done is not None:
                self._on_request_done(action.request_id)

    async def _deliver(self, action: ToBrowser) -> None:
        message = action.message
        if isinstance(message, JSONRPCResponse) and self.protocol_version is None:
            version = message.result.get("protocolVersion")
            if isinstance(version, str):
                self.protocol_version = version
        try:
            await self._sink(message, action.related)
        except ConnectionClosedError as exc:
            if isinstance(message, JSONRPCRequest):  # the browser cannot be asked: the target hears so
                self.core.browser_unreachable(message.id, str(exc))
                await self._flush()

    async def close(self) -> None:
        """Close every target's connection (stdio targets' processes stop)."""
        if self.closed:
            return
        self.closed = True
        for target in self.targets.values():
            await target.close()

"""The explorer's panes beyond the core ones, as features the page wires in one list.

A :class:`Feature` owns its own markup (it fills an empty container of ``index.html``), its own
state and its own events. The explorer calls it at fixed points: :meth:`Feature.setup` once the
page is ready, :meth:`Feature.transport_options` and :meth:`Feature.client_options` while it
builds a connection, :meth:`Feature.connected` / :meth:`Feature.disconnected` around a session,
:meth:`Feature.on_tools` when the tool list changes, :meth:`Feature.on_trace` for every message
and :meth:`Feature.on_call` for every call the explorer made (tools, prompts, resource reads).

This module is pure (no ``js``): :class:`CallRecord` is what history, saved requests and the
protocol view share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    import mcp_types as mt

    from pyodide_transport.client import Client

    from .tracing import TraceEntry

__all__ = ["CallKind", "CallOutcome", "CallRecord", "Feature"]

CallKind: TypeAlias = Literal["tool", "prompt", "resource"]
"""What was called: ``tools/call``, ``prompts/get`` or ``resources/read``."""

CallOutcome: TypeAlias = Literal["ok", "tool-error", "error", "cancelled"]
"""``ok``; ``tool-error`` (a result with ``isError``); ``error`` (refused or failed); ``cancelled``."""


@dataclass(frozen=True)
class CallRecord:
    """One call the explorer made, as history keeps it.

    Attributes:
        kind: What was called.
        name: The tool or prompt name, or the resource URI.
        arguments: The arguments sent (``{}`` for a resource read).
        server: The endpoint URL of the connection.
        protocol_version: The protocol revision of the connection.
        era: ``modern`` (2026-07-28) or ``handshake``.
        started: Seconds since the epoch when the call was sent.
        duration: Seconds until its outcome.
        outcome: How it ended.
        result: The result as JSON-ready dict (``None`` unless it was answered).
        error: The error text (``None`` unless it failed).
        origin: Who asked: ``explorer`` (a form), ``history`` (a re-run) or ``app`` (an MCP App).
    """

    kind: CallKind
    name: str
    arguments: dict[str, Any]
    server: str
    protocol_version: str
    era: str
    started: float
    duration: float
    outcome: CallOutcome
    result: dict[str, Any] | None = None
    error: str | None = None
    origin: str = "explorer"


class Feature:
    """A part of the explorer with its own pane or controls; every hook does nothing by default."""

    def setup(self) -> None:
        """The page is ready: fill the feature's containers and bind their events."""

    def transport_options(self, url: str) -> dict[str, Any]:
        """Options for the transport about to connect to ``url`` (e.g. ``fetch=``)."""
        return {}

    def client_options(self) -> dict[str, Any]:
        """Options for the :class:`~pyodide_transport.client.Client` (e.g. ``capabilities``, ``roots_handler``)."""
        return {}

    async def connected(self, client: Client) -> None:
        """A session is ready (after tools, resources and prompts were listed)."""

    def disconnected(self) -> None:
        """The session closed (or the connection was lost and the user disconnected)."""

    def on_tools(self, tools: list[mt.Tool]) -> None:
        """The server's tool list, each time it is (re)loaded."""

    def on_trace(self, entry: TraceEntry) -> None:
        """A message went out or came in (also OAuth requests)."""

    def on_call(self, record: CallRecord) -> None:
        """A call the explorer made has ended."""

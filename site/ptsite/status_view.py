"""Ping latency in the header (Pyodide only).

While connected, the server is pinged every :data:`PING_INTERVAL` seconds (and when the indicator,
a real button, is clicked); the indicator shows the last round-trip (``ping 4 ms``), or an error
state with the failure's text in its tooltip. It stops on disconnect. The pings go through the
traced transport like every message: the Protocol tab hides them by default.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import js

from .dom import Scope, by_testid, el, set_text, spawn
from .features import Feature
from .protocol_view import ProtocolFeature
from .settings import describe_error
from .tracing import describe

if TYPE_CHECKING:
    from pyodide_transport.client import Client

    from .explorer_app import Explorer

__all__ = ["PING_INTERVAL", "PING_TIMEOUT", "StatusFeature"]

PING_INTERVAL = 10.0
"""Seconds between pings while connected."""

PING_TIMEOUT = 10.0
"""Seconds a ping may take before it counts as failed."""


class StatusFeature(Feature):
    """The ping indicator of the top bar."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.scope = Scope()
        self.client: Client | None = None
        self._loop: asyncio.Future[Any] | None = None
        self._busy = False
        self.pings = 0

    def setup(self) -> None:
        """Put the (hidden until connected) indicator in the top bar."""
        self.button = el(
            "button",
            "ping —",
            type="button",
            cls="ping-indicator",
            testid="ping-indicator",
            data_state="idle",
            aria_label="ping —: ping the server now",
            title="Ping the server now",
            hidden=True,
        )
        by_testid("status-root").appendChild(self.button)
        self.scope.on(self.button, "click", lambda _e: self.ping())

    async def connected(self, client: Client) -> None:
        """Start pinging."""
        self.client = client
        self.button.hidden = False
        self._show("idle", "ping …", "Pinging the server…")
        self._stop()
        self._loop = spawn(self._every(client))

    def disconnected(self) -> None:
        """Stop pinging and hide the indicator."""
        self.client = None
        self._stop()
        self.button.hidden = True
        self.button.dataset.state = "idle"

    def _stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            self._loop = None

    async def _every(self, client: Client) -> None:
        while self.client is client:
            await self.ping()
            await asyncio.sleep(PING_INTERVAL)

    def _show(self, state: str, text: str, tip: str) -> None:
        """The indicator's state, text and tooltip; its name starts with the text it shows (label in name)."""
        self.button.dataset.state = state
        set_text(self.button, text)
        self.button.title = tip
        self.button.setAttribute("aria-label", f"{text}: ping the server now")

    async def ping(self) -> None:
        """Ping once (unless one is under way) and show how it went."""
        client = self.client
        if client is None or self._busy:
            return
        self._busy = True
        self.button.setAttribute("aria-busy", "true")
        for feature in self.explorer.features:  # the Protocol tab hides pings: tell it which request is one
            if isinstance(feature, ProtocolFeature):
                feature.model.expect_ping("server/discover" if client.era == "modern" else "ping")
        started = time.perf_counter()
        try:
            await asyncio.wait_for(client.ping(), PING_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.client is client:
                text = "timed out" if isinstance(exc, TimeoutError) else describe_error(exc, self.explorer.url)
                self._show("error", "ping failed", f"The last ping failed: {text}")
        else:
            if self.client is client:
                took = time.perf_counter() - started
                self.pings += 1
                when = str(js.Date.new().toTimeString())[:8]
                tip = f"Last round-trip {describe(took)} at {when}; click to ping now"
                self._show("ok", f"ping {describe(took)}", tip)
        finally:
            self._busy = False
            self.button.removeAttribute("aria-busy")

"""Headless Chromium for the e2e tests and the benchmarks: launch options, which executable, a loopback guard."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pyodide_transport.browser_testing.session import CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Route

__all__ = ["CHROMIUM_ARGS", "DEBIAN_CHROMIUM", "LOOPBACK", "LoopbackGuard", "chromium_executable"]

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def chromium_executable() -> str | None:
    """The Chromium to drive: ``PT_CHROMIUM`` if set ("" = Playwright's own), else Debian's if present.

    ``None`` lets Playwright use its own browser.
    """
    configured = os.environ.get("PT_CHROMIUM")
    if configured is not None:
        return configured or None
    return str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None


class LoopbackGuard:
    """Aborts and records every request of a browser context that would leave this machine.

    ``data:`` and ``blob:`` URLs and the loopback hosts pass; anything else is
    aborted before it leaves the browser and listed in ``violations``.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.violations: list[str] = []

    def attach(self, context: BrowserContext) -> None:
        """Route every request of ``context`` through this guard."""
        context.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or (parts.hostname or "") in LOOPBACK:
            route.continue_()
        else:
            self.violations.append(url)
            route.abort("blockedbyclient")

    def check(self) -> None:
        """Fail if any request tried to leave 127.0.0.1."""
        assert not self.violations, f"requests left 127.0.0.1: {self.violations}"

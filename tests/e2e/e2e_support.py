"""Shared pieces of the Chromium tier: the loopback guard, launch options, screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Route

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_executable() -> str | None:
    """The Chromium to drive: PT_CHROMIUM if set ("" = Playwright's own), else Debian's if present."""
    configured = os.environ.get("PT_CHROMIUM")
    if configured is not None:
        return configured or None
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


class LoopbackGuard:
    """Aborts and records every request of a browser context that would leave this machine."""

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


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

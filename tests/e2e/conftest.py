"""Fixtures for the Chromium tier: Playwright driving a real headless Chromium, and a static site.

Every page runs behind a :class:`LoopbackGuard`: requests to anything but
127.0.0.1 / localhost / [::1] (or data: and blob: URLs) are aborted before they
leave the browser and fail the test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from devtools import DIST
from devtools.chromium import CHROMIUM_ARGS, LoopbackGuard, chromium_executable
from devtools.servers import ServerProcess


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def guard() -> LoopbackGuard:
    return LoopbackGuard()


@pytest.fixture
def page(browser: Browser, guard: LoopbackGuard) -> Iterator[Page]:
    """A fresh page whose requests must all stay on loopback; console errors are kept for asserts."""
    context = browser.new_context()
    guard.attach(context)
    page = context.new_page()
    page.console_messages = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.console_messages.append(f"{m.type}: {m.text}"))  # type: ignore[attr-defined]
    yield page
    guard.check()
    context.close()


@pytest.fixture(scope="module")
def static_site() -> Iterator[str]:
    """``site/dist`` behind Python's own static file server (no CSP, no CORS, no MCP) on a free loopback port."""
    command = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", str(DIST)]
    with ServerProcess(command, quiet=True) as server:
        yield server.url

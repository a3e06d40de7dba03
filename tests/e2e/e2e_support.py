"""Shared pieces of the Chromium tier: timeouts, opening the explorer, axe-core audits, screenshots.

Launch options and the loopback guard come from devtools; the fixtures (the page, a static site) are in
``conftest.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from devtools import ROOT
from devtools.chromium import CHROMIUM_ARGS, LOOPBACK, LoopbackGuard, chromium_executable

__all__ = [
    "ARTIFACTS",
    "AXE",
    "BOOT",
    "CALL",
    "CHROMIUM_ARGS",
    "LOOPBACK",
    "LoopbackGuard",
    "assert_axe_clean",
    "call_tool",
    "chromium_executable",
    "expect_connected",
    "open_explorer",
    "open_tool",
    "screenshot",
    "tool_result",
    "with_axe",
]

ARTIFACTS = ROOT / "test-artifacts"
BOOT = 90_000
"""ms: Pyodide, the wheels and our modules."""
CALL = 30_000
"""ms: one request and its answer."""

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core, vendored from npm (``package.json``; ``build.py`` runs ``npm ci``)."""

RUN_AXE = """async ({include, exclude}) => {
  const context = {include: include.map(s => [s])};
  if (exclude.length) context.exclude = exclude.map(s => [s]);
  return (await axe.run(context)).violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html)}));
}"""
"""The serious and critical violations under ``include`` (CSS selectors), leaving out ``exclude``."""


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_explorer(page: Page, url: str, *, height: int = 950) -> None:
    """Open ``url`` in a 1400 px wide viewport and wait until Python is up (``body[data-ready]``)."""
    page.set_viewport_size({"width": 1400, "height": height})
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)


def expect_connected(page: Page, *, tool: str = "calculate") -> None:
    """The explorer says it is connected and lists ``tool``."""
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("tool-list")).to_contain_text(tool, timeout=CALL)


def open_tool(page: Page, name: str) -> None:
    """Show the form of tool ``name`` in the Tools tab."""
    page.get_by_test_id("tab-tools").click()
    page.get_by_test_id(f"tool-item-{name}").click()
    expect(page.get_by_test_id("tool-title")).to_have_text(name)


def call_tool(page: Page, name: str) -> None:
    """Call tool ``name`` with what its form holds."""
    open_tool(page, name)
    page.get_by_test_id("call-button").click()


def tool_result(page: Page) -> Locator:
    """Where the Tools tab shows the result of the last call."""
    return page.get_by_test_id("tool-result")


def _axe() -> Path:
    assert AXE.exists(), "axe-core is not installed: `npm ci` (build.py installs package-lock.json)"
    return AXE


def with_axe(page: Page) -> None:
    """Put axe-core in every document of ``page`` from now on (an init script: the page's CSP refuses inline
    scripts, an init script is not subject to it)."""
    page.add_init_script(path=str(_axe()))


def assert_axe_clean(page: Page, include: Sequence[str], exclude: Sequence[str] = ()) -> None:
    """No serious or critical axe-core violation under the ``include`` selectors as the page is now.

    axe-core is evaluated into the page first unless :func:`with_axe` put it there (evaluate, like an init
    script, is not subject to the page's CSP).
    """
    if not page.evaluate("() => typeof axe === 'object'"):
        page.evaluate(_axe().read_text())
    blocking = page.evaluate(RUN_AXE, {"include": list(include), "exclude": list(exclude)})
    assert not blocking, json.dumps(blocking, indent=1)[:4000]

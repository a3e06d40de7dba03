"""The command palette and the tab bar's keyboard access, in Chromium: everything without a mouse."""

from __future__ import annotations

import pytest
from e2e_support import CALL, assert_axe_clean, expect_connected, open_explorer, screenshot, with_axe
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

MINE = ("[data-testid=palette-root]", ".workspace")
"""The parts of the page this file tests (other parts have their own audits)."""


def palette_run(page: Page, query: str, first: str) -> None:
    """Ctrl+K, type ``query``, check the highlighted command is ``first`` and press Enter."""
    page.keyboard.press("Control+k")
    expect(page.get_by_test_id("palette-input")).to_be_focused()
    page.keyboard.type(query)
    active = page.locator('[data-testid="palette-option"][aria-selected="true"]')
    expect(active).to_have_count(1)
    expect(active).to_contain_text(first)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("palette")).to_be_hidden()


def test_palette_opens_filters_runs_and_closes(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    with_axe(page)
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)
    button = page.get_by_test_id("palette-button")
    expect(button).to_be_visible()
    expect(button).to_contain_text("Ctrl+K")
    expect(button).to_have_attribute("aria-keyshortcuts", "Control+K Meta+K")

    page.get_by_test_id("tab-log").focus()
    page.keyboard.press("Control+k")
    dialog = page.get_by_test_id("palette-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("role", "dialog")
    expect(dialog).to_have_attribute("aria-modal", "true")
    box = page.get_by_test_id("palette-input")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("role", "combobox")
    expect(box).to_have_accessible_name("Search commands")
    expect(page.get_by_test_id("palette-list")).to_have_attribute("role", "listbox")
    expect(page.get_by_test_id("palette-list")).to_contain_text("Go to Resources")
    expect(page.get_by_test_id("palette-list")).to_contain_text("Open tool calculate")
    screenshot(page, "palette-open")
    assert_axe_clean(page, MINE)

    # arrow keys move the highlight (aria-activedescendant follows)
    first = box.get_attribute("aria-activedescendant")
    page.keyboard.press("ArrowDown")
    expect(box).not_to_have_attribute("aria-activedescendant", first or "")
    page.keyboard.press("ArrowUp")
    expect(box).to_have_attribute("aria-activedescendant", first or "")

    # Escape closes and focus goes back
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("palette")).to_be_hidden()
    expect(page.get_by_test_id("tab-log")).to_be_focused()

    # "resources" + Enter switches the tab (and focuses it)
    palette_run(page, "resources", "Go to Resources")
    expect(page.get_by_test_id("pane-resources")).to_be_visible()
    expect(page.get_by_test_id("tab-resources")).to_be_focused()
    expect(page.get_by_test_id("tab-resources")).to_have_attribute("aria-selected", "true")

    # open a tool by name: its form, focus in its first field
    palette_run(page, "calculate", "Open tool calculate")
    expect(page.get_by_test_id("pane-tools")).to_be_visible()
    expect(page.get_by_test_id("tool-title")).to_have_text("calculate")
    expect(page.get_by_test_id("field-a")).to_be_focused()

    # the Commands button works too (Enter on it), and the Close button returns focus
    button.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.type("zzzzqqq")
    expect(page.get_by_test_id("palette-empty")).to_be_visible()
    page.keyboard.press("Tab")  # focus stays in the modal dialog
    focused_in_dialog = page.evaluate(
        "() => document.querySelector('[data-testid=palette-dialog]').contains(document.activeElement)"
    )
    assert focused_in_dialog
    page.keyboard.press("Escape")
    expect(button).to_be_focused()


def test_tab_bar_arrow_keys_and_aria(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    with_axe(page)
    open_explorer(page, f"{demo_server.url}/?autoconnect=0")
    tools, resources = page.get_by_test_id("tab-tools"), page.get_by_test_id("tab-resources")
    network = page.get_by_test_id("tab-network")
    expect(tools).to_have_attribute("aria-selected", "true")
    expect(tools).to_have_attribute("tabindex", "0")
    expect(resources).to_have_attribute("tabindex", "-1")  # roving tabindex: one tab stop
    controls = tools.get_attribute("aria-controls")
    assert controls
    pane = page.locator(f"#{controls}")
    expect(pane).to_have_attribute("data-pane", "tools")
    expect(pane).to_have_attribute("role", "tabpanel")
    expect(pane).to_have_attribute("aria-labelledby", tools.get_attribute("id") or "")

    tools.focus()
    page.keyboard.press("ArrowRight")
    expect(resources).to_be_focused()
    expect(resources).to_have_attribute("aria-selected", "true")
    expect(tools).to_have_attribute("aria-selected", "false")
    expect(page.get_by_test_id("pane-resources")).to_be_visible()
    page.keyboard.press("End")
    expect(network).to_be_focused()
    expect(page.get_by_test_id("pane-network")).to_be_visible()
    page.keyboard.press("ArrowRight")  # wraps
    expect(tools).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(network).to_be_focused()
    page.keyboard.press("Home")
    expect(tools).to_be_focused()
    expect(page.get_by_test_id("pane-tools")).to_be_visible()

    page.get_by_test_id("tab-trace").click()  # a click keeps the ARIA state in step too
    expect(page.get_by_test_id("tab-trace")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("tab-trace")).to_have_attribute("tabindex", "0")
    expect(tools).to_have_attribute("tabindex", "-1")
    assert_axe_clean(page, MINE)  # tablist, tabs and panels as axe reads them


def test_every_action_without_a_mouse(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)

    # "?" (outside a text field) shows the shortcuts
    page.locator("body").focus()
    page.keyboard.press("?")
    expect(page.get_by_test_id("palette-help")).to_be_visible()
    expect(page.get_by_test_id("palette-help")).to_contain_text("Ctrl+K")
    expect(page.get_by_test_id("palette-help")).to_contain_text("Home / End")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("palette")).to_be_hidden()

    palette_run(page, "disconnect", "Disconnect")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "disconnected", timeout=CALL)
    palette_run(page, "connect", "Connect")
    expect_connected(page)

    palette_run(page, "echo", "Open tool echo")
    expect(page.get_by_test_id("tool-title")).to_have_text("echo")
    page.keyboard.type("hello keyboard")  # focus is in the first field
    page.get_by_test_id("call-button").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("tool-result")).to_contain_text("hello keyboard", timeout=CALL)

    # re-run the last call: same tool, same arguments, through its form
    palette_run(page, "trace", "Go to Trace")
    palette_run(page, "re-run", "Re-run last call: echo")
    expect(page.get_by_test_id("pane-tools")).to_be_visible()
    expect(page.get_by_test_id("json-editor")).to_have_value('{\n  "message": "hello keyboard"\n}')
    expect(page.get_by_test_id("tool-result")).to_contain_text("hello keyboard", timeout=CALL)

    palette_run(page, "read resource readme", "Read resource readme")
    expect(page.get_by_test_id("resource-content")).to_contain_text("# pyodide-transport demo server", timeout=CALL)

    palette_run(page, "prompt code_review", "Open prompt code_review")
    expect(page.get_by_test_id("prompt-title")).to_have_text("code_review")
    expect(page.get_by_test_id("prompt-arg-code")).to_be_focused()

    palette_run(page, "refresh tools", "Refresh tools")
    expect(page.get_by_test_id("tools-count")).not_to_have_text("")

    palette_run(page, "go to log", "Go to Log")
    palette_run(page, "clear the log", "Clear the log")
    expect(page.get_by_test_id("log-entry")).to_have_count(0)
    expect(page.get_by_test_id("log-count")).to_have_text("")
    expect(page.get_by_test_id("trace-count")).not_to_have_text("")
    palette_run(page, "clear the trace", "Clear the trace")
    expect(page.get_by_test_id("trace-count")).to_have_text("")
    expect(page.get_by_test_id("trace-entry")).to_have_count(0)

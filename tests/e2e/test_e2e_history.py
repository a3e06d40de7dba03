"""The History tab in Chromium against the demo server: calls recorded with their era, re-run, edit and re-run,
saved requests, persistence across a reload, export and import into an empty browser, a bad file refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from e2e_support import BOOT, CALL, assert_axe_clean, expect_connected, open_explorer, screenshot
from playwright.sync_api import Browser, Page, expect

from devtools.chromium import LoopbackGuard

pytestmark = pytest.mark.e2e


def _open(page: Page, base: str, *, connect: bool = True) -> None:
    open_explorer(page, f"{base}/index.html?server={base}&transport=http-sse&autoconnect={1 if connect else 0}")
    if connect:
        expect_connected(page, tool="echo")


def _echo(page: Page, message: str) -> None:
    page.get_by_test_id("tab-tools").click()
    page.get_by_test_id("tool-item-echo").click()
    page.get_by_test_id("field-message").fill(message)
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("pane-tools").get_by_test_id("tool-result")).to_have_attribute(
        "data-state", "ok", timeout=CALL
    )


def test_history_rerun_edit_save_reload_export_import(
    page: Page, demo_server, browser: Browser, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    base = demo_server.url
    _open(page, base)
    _echo(page, "hello history")
    page.get_by_test_id("tab-history").click()
    root = page.get_by_test_id("history-root")
    expect(page.get_by_test_id("history-count")).to_have_text("1")
    entries = root.get_by_test_id("history-entry")
    expect(entries).to_have_count(1)
    first = entries.first
    expect(first).to_contain_text("echo")
    expect(first).to_have_attribute("data-outcome", "ok")
    expect(first.get_by_test_id("history-meta")).to_contain_text(
        re.compile(r"\d{4}-\d{2}-\d{2} \((modern|handshake)\)")
    )
    expect(first.get_by_test_id("history-meta")).to_contain_text(" ms")

    first.click()
    expect(root.get_by_test_id("history-arguments")).to_contain_text('"message": "hello history"')
    expect(root.get_by_test_id("history-result")).to_contain_text("hello history")
    expect(root.get_by_test_id("history-detail-meta")).to_contain_text("from explorer")

    # Re-run: the same call again, its result in the pane, a new entry from "history"
    root.get_by_test_id("history-rerun").click()
    expect(root.get_by_test_id("history-rerun-result")).to_contain_text("hello history", timeout=CALL)
    expect(page.get_by_test_id("history-count")).to_have_text("2")
    entries.first.click()
    expect(root.get_by_test_id("history-detail-meta")).to_contain_text("from history")

    # Edit and re-run: the Tools tab's JSON editor holds the arguments
    root.get_by_test_id("history-edit").click()
    expect(page.get_by_test_id("pane-tools")).to_have_class(re.compile(r"\bactive\b"))
    editor = page.get_by_test_id("json-editor")
    expect(editor).to_be_visible()
    assert json.loads(editor.input_value()) == {"message": "hello history"}
    editor.fill('{"message": "edited"}')
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("pane-tools").get_by_test_id("result-block").first).to_contain_text(
        "edited", timeout=CALL
    )
    expect(page.get_by_test_id("history-count")).to_have_text("3")

    # Save with a name; a taken name is refused
    page.get_by_test_id("tab-history").click()
    entries.first.click()
    root.get_by_test_id("history-save-name").fill("greeting")
    root.get_by_test_id("history-save").click()
    expect(root.get_by_test_id("saved-item")).to_have_count(1)
    expect(root.get_by_test_id("saved-item")).to_contain_text("greeting")
    root.get_by_test_id("history-save").click()
    expect(root.get_by_test_id("history-notice")).to_contain_text("exists already")
    expect(root.get_by_test_id("saved-item")).to_have_count(1)

    # The filter
    root.get_by_test_id("history-filter").fill("edited")
    expect(entries).to_have_count(1)
    root.get_by_test_id("history-filter").fill("")
    expect(entries).to_have_count(3)

    # A resource read is recorded too; its URI can be edited and read again from the pane
    page.get_by_test_id("tab-resources").click()
    page.get_by_test_id("resource-item-demo://readme").click()
    expect(page.get_by_test_id("resource-content")).not_to_be_empty(timeout=CALL)
    page.get_by_test_id("tab-history").click()
    expect(page.get_by_test_id("history-count")).to_have_text("4")
    expect(entries.first).to_have_attribute("data-kind", "resource")
    entries.first.click()
    root.get_by_test_id("history-edit").click()
    expect(root.get_by_test_id("history-edit-uri")).to_have_value("demo://readme")
    root.get_by_test_id("history-edit-uri").fill("demo://nothing-here")
    root.get_by_test_id("history-edit-run").click()
    expect(root.get_by_test_id("history-rerun-error")).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("history-count")).to_have_text("5")
    expect(entries.first).to_have_attribute("data-outcome", "error")
    entries.nth(1).click()
    root.get_by_test_id("history-rerun").click()
    expect(root.get_by_test_id("history-rerun-result").get_by_test_id("history-block").first).not_to_be_empty(
        timeout=CALL
    )
    expect(page.get_by_test_id("history-count")).to_have_text("6")
    entries.nth(3).click()  # the edited tool call
    screenshot(page, "history-pane")
    assert_axe_clean(page, ["[data-testid=history-root]"])

    # Reload without connecting: history and saved requests are still there; re-run needs a connection
    _open(page, base, connect=False)
    page.get_by_test_id("tab-history").click()
    expect(page.get_by_test_id("history-count")).to_have_text("6")
    expect(root.get_by_test_id("saved-item")).to_contain_text("greeting")
    root.get_by_test_id("saved-item").click()
    expect(root.get_by_test_id("history-arguments")).to_contain_text("edited")
    root.get_by_test_id("history-rerun").click()
    expect(root.get_by_test_id("history-rerun-error")).to_contain_text("Not connected")

    # Export
    with page.expect_download() as download:
        root.get_by_test_id("history-export").click()
    exported = tmp_path / "history.json"
    download.value.save_as(exported)
    data = json.loads(exported.read_text())
    assert data["format"] == "pyodide-transport-history" and data["version"] == 1
    assert len(data["history"]) == 6 and [s["name"] for s in data["saved"]] == ["greeting"]
    assert {e["origin"] for e in data["history"]} == {"explorer", "history"}
    assert [e["kind"] for e in data["history"]] == ["resource", "resource", "resource", "tool", "tool", "tool"]

    # Import into a fresh browser context (empty storage)
    guard = LoopbackGuard()
    context = browser.new_context()
    guard.attach(context)
    try:
        fresh = context.new_page()
        _open(fresh, base, connect=False)
        fresh.get_by_test_id("tab-history").click()
        fresh_root = fresh.get_by_test_id("history-root")
        expect(fresh.get_by_test_id("history-count")).to_have_text("")
        expect(fresh_root.get_by_test_id("saved-item")).to_have_count(0)

        bad = tmp_path / "bad.json"
        broken = json.loads(exported.read_text())
        broken["history"][1]["outcome"] = "maybe"
        bad.write_text(json.dumps(broken))
        fresh_root.get_by_test_id("history-import-file").set_input_files(str(bad))
        notice = fresh_root.get_by_test_id("history-notice")
        expect(notice).to_contain_text("history[1].outcome")
        expect(notice).to_have_attribute("data-state", "error")
        expect(fresh.get_by_test_id("history-count")).to_have_text("")

        fresh_root.get_by_test_id("history-import-file").set_input_files(str(exported))
        expect(notice).to_contain_text("Imported 6 history entries and 1 saved requests")
        expect(fresh.get_by_test_id("history-count")).to_have_text("6")
        expect(fresh_root.get_by_test_id("saved-item")).to_contain_text("greeting")

        # a bad file now loses nothing, the same file again adds nothing (duplicates merged)
        not_json = tmp_path / "not.json"
        not_json.write_text("{nope")
        fresh_root.get_by_test_id("history-import-file").set_input_files(str(not_json))
        expect(notice).to_contain_text("not JSON")
        expect(fresh.get_by_test_id("history-count")).to_have_text("6")
        fresh_root.get_by_test_id("history-import-file").set_input_files(str(exported))
        expect(notice).to_contain_text("Imported 0 history entries and 0 saved requests")
        expect(fresh_root.get_by_test_id("history-entry")).to_have_count(6)
        fresh_root.get_by_test_id("history-entry").nth(3).click()
        expect(fresh_root.get_by_test_id("history-result")).to_contain_text("edited")

        # Clear, with a confirmation; saved requests stay
        fresh_root.get_by_test_id("history-clear").click()
        fresh_root.get_by_test_id("history-clear-cancel").click()
        expect(fresh.get_by_test_id("history-count")).to_have_text("6")
        fresh_root.get_by_test_id("history-clear").click()
        fresh_root.get_by_test_id("history-clear-confirm").click()
        expect(fresh.get_by_test_id("history-count")).to_have_text("")
        expect(fresh_root.get_by_test_id("saved-item")).to_have_count(1)

        # Rename and delete a saved request
        fresh_root.get_by_test_id("saved-item").click()
        fresh_root.get_by_test_id("saved-rename-name").fill("hello")
        fresh_root.get_by_test_id("saved-rename").click()
        expect(notice).to_contain_text("Renamed to 'hello'")
        fresh.reload()
        expect(fresh.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
        expect(fresh.get_by_test_id("history-count")).to_have_text("")
        fresh.get_by_test_id("tab-history").click()
        expect(fresh_root.get_by_test_id("saved-item")).to_have_text(re.compile("^hello"))
        fresh_root.get_by_test_id("saved-item").click()
        fresh_root.get_by_test_id("saved-delete").click()
        expect(fresh_root.get_by_test_id("saved-item")).to_have_count(0)
    finally:
        context.close()
    guard.check()

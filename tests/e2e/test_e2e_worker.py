"""The client runs in a Web Worker too: Pyodide in a module worker, no window, both transports."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect


def test_client_in_a_web_worker(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{demo_server.url}/worker-test.html")
    result = page.get_by_test_id("worker-result")
    expect(result).to_have_attribute("data-done", "1", timeout=90_000)
    outcome = json.loads(result.text_content() or "{}")
    assert outcome.get("ok"), outcome
    report = outcome["report"]
    assert report["platform"] == "emscripten"
    assert report["has_window"] is False
    assert "from a worker" in report["streamable-http"]
    assert "from a worker" in report["websocket"]

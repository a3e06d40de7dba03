"""What a server sends is shown as text, never run: XSS attempts, media URLs, the CSP.

The demo server's ``html_injection`` tool returns ``<img src=x onerror=alert(1)>``
and ``<script>alert('xss')</script>``; the page must show those characters
and nothing may execute: no dialog, no flag set, no such element anywhere.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Dialog, Page, expect

pytestmark = pytest.mark.e2e

BOOT = 90_000
CALL = 30_000

WATCH = """
window.__xss = false;
window.__csp = [];
window.alert = window.confirm = window.prompt = () => { window.__xss = true; };
document.addEventListener("securitypolicyviolation", (e) => {
    window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def test_html_from_a_tool_is_rendered_as_text_and_never_executes(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(WATCH)
    response = page.goto(f"{demo_server.url}/")
    assert response is not None
    csp = response.headers.get("content-security-policy", "")
    assert "script-src" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)

    page.get_by_test_id("tool-item-html_injection").click()
    page.get_by_test_id("call-button").click()
    result = page.get_by_test_id("tool-result")
    expect(result).to_have_attribute("data-state", "ok", timeout=CALL)
    block = result.get_by_test_id("result-block")
    expect(block).to_contain_text("<img src=x onerror=alert(1)>")
    expect(block).to_contain_text("<script>alert('xss')</script>")

    # the message trace shows the same characters: still text
    page.get_by_test_id("tab-trace").click()
    expect(page.get_by_test_id("trace-list")).to_contain_text("onerror=alert(1)")
    page.wait_for_timeout(500)  # give a broken image's onerror a chance to fire, if there were one

    assert page.evaluate("window.__xss") is False
    assert dialogs == []
    assert page.locator('img[src="x"], img[onerror]').count() == 0
    assert page.evaluate("[...document.scripts].filter(s => s.textContent.includes('alert')).length") == 0
    assert page.evaluate("window.__csp") == []

    # images only ever as data: URLs with an image MIME type
    page.get_by_test_id("tab-tools").click()
    page.get_by_test_id("tool-item-show_image").click()
    page.get_by_test_id("call-button").click()
    expect(result.locator("img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"), timeout=CALL)
    sources = page.evaluate(
        "[...document.querySelectorAll('img, audio, video, iframe, object, embed')].map(e => e.src || e.data || '')"
    )
    assert sources and all(s.startswith(("data:image/", "data:audio/")) for s in sources), sources
    assert page.evaluate("window.__csp") == []

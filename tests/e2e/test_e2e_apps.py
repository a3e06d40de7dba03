"""MCP Apps in Chromium: the explorer hosts the demo's calculator app in a sandbox proxy on a second origin.

The demo server serves the sandbox proxy on a second loopback port (``/apps/sandbox.json`` says
where). The app must render from that origin, get its tool input and result, call tools through the
host (visibility honoured), resize itself and answer the teardown; it must not reach the explorer
(its origin is opaque, ``window.top.document`` and the explorer's storage are out of reach) and its
CSP must block an undeclared origin.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from e2e_support import CALL, assert_axe_clean, open_explorer, screenshot
from playwright.sync_api import Frame, FrameLocator, Page, expect

from devtools import ROOT
from devtools.servers import ServerProcess

pytestmark = pytest.mark.e2e


def open_app(page: Page, url: str) -> FrameLocator:
    """Connect the explorer to ``url``, open the calculator history app, wait for its tool result."""
    open_explorer(page, f"{url}/?server={url}&transport=http-sse&autoconnect=1", height=1000)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    page.get_by_test_id("tab-apps").click()
    expect(page.get_by_test_id("apps-count")).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=CALL)
    expect(page.get_by_test_id("apps-sandbox")).to_have_attribute("data-state", "ready", timeout=CALL)
    expect(page.get_by_test_id("app-tool-calculator_history_clear")).to_have_count(0)  # app-only: not listed
    page.get_by_test_id("app-tool-calculator_history").click()
    page.get_by_test_id("app-field-title").fill("My calculations")
    screenshot(page, "apps-pane")
    page.get_by_test_id("app-open").click()
    app = page.frame_locator('[data-testid="app-frame"]').frame_locator("iframe")
    expect(app.locator("#status")).to_have_text("tool result received", timeout=CALL)
    return app


def frames(page: Page) -> tuple[Frame, Frame]:
    """The sandbox proxy's frame and the app's frame inside it."""
    outer = next(f for f in page.frames if "/sandbox.html" in f.url)
    inner = next(f for f in page.frames if f.parent_frame == outer)
    return outer, inner


def test_the_app_runs_calls_tools_resizes_and_tears_down(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    app = open_app(page, demo_server.url)
    outer, _inner = frames(page)
    sandbox = urlsplit(outer.url)
    explorer = urlsplit(demo_server.url)
    assert sandbox.hostname == explorer.hostname and sandbox.port != explorer.port, "a second origin"
    expect(page.get_by_test_id("app-origin")).to_contain_text(f"{sandbox.scheme}://{sandbox.netloc}")
    expect(page.get_by_test_id("app-csp")).to_contain_text("connect-src 'self'")
    expect(page.get_by_test_id("app-csp")).to_contain_text("frame-src 'none'")
    expect(page.get_by_test_id("app-state")).to_have_text("ready")

    # tool input and result reached the app
    expect(app.locator("#title")).to_have_text("My calculations")
    expect(app.locator("#input")).to_contain_text('"title":"My calculations"')
    expect(page.get_by_test_id("app-tool-result")).to_contain_text("calculation(s)")

    # the app calls calculate, then re-reads the history, through the host
    before = int(app.locator("#count").inner_text())
    app.locator("#add").click()
    expect(app.locator("#count")).to_have_text(str(before + 1), timeout=CALL)
    expect(app.locator("#last")).to_have_text("2 + 3 = 5")
    expect(app.locator("#chart rect.bar").last).to_have_attribute("data-value", "5")
    messages = page.get_by_test_id("app-messages")
    expect(messages).to_contain_text("app → host tools/call")
    expect(messages).to_contain_text('"expression": "2 + 3 = 5"')
    expect(page.get_by_test_id("log-list")).to_contain_text("app → tools/call calculate")
    expect(page.get_by_test_id("log-list")).to_contain_text("calculator app ready")  # the app's own log
    page.get_by_test_id("tab-apps").click()

    # the app grows: size-changed makes the frame taller
    frame = page.get_by_test_id("app-frame")
    expect(frame).to_have_attribute("data-height", re.compile(r"^\d+$"), timeout=CALL)
    height = int(frame.get_attribute("data-height") or "0")
    for _ in range(3):
        app.locator("#add").click()
        expect(app.locator("#last")).to_have_text("2 + 3 = 5")
    app.locator("#toggle").click()
    expect(app.locator("#details")).to_be_visible()
    page.wait_for_function(
        "h => Number(document.querySelector('[data-testid=\"app-frame\"]').dataset.height) > h", arg=height
    )
    grown = frame.bounding_box()
    assert grown is not None and grown["height"] > height
    screenshot(page, "apps-app-running")
    # the app's own frame is not the host's to audit
    assert_axe_clean(page, ["[data-testid=apps-root]"], exclude=["[data-testid=app-frame]"])
    # the explorer declared the extension to the server
    expect(page.get_by_test_id("trace-list")).to_contain_text("io.modelcontextprotocol/ui")

    # the app-only tool is callable by the app
    app.locator("#clear").click()
    expect(app.locator("#count")).to_have_text("0", timeout=CALL)

    # Close: ui/resource-teardown answered, then the frame is gone
    page.get_by_test_id("app-close").click()
    expect(page.get_by_test_id("app-closed")).to_have_text("App closed (closed).", timeout=CALL)
    expect(page.get_by_test_id("app-frame")).to_have_count(0)


def test_the_app_is_isolated_and_its_csp_enforced(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    app = open_app(page, demo_server.url)
    outer, inner = frames(page)
    page.evaluate("localStorage.setItem('explorer-secret', 's3cret')")

    assert inner.evaluate("() => self.origin") == "null", "the app's origin is opaque"
    assert outer.evaluate("() => location.origin") != page.evaluate("() => location.origin")
    reach = inner.evaluate("() => { try { return typeof window.top.document.title; } catch (e) { return 'blocked'; } }")
    assert reach == "blocked"
    storage = inner.evaluate(
        "() => { try { return String(localStorage.getItem('explorer-secret')); } catch (e) { return 'blocked'; } }"
    )
    assert storage != "s3cret"
    parent_reach = inner.evaluate("() => { try { return typeof parent.document; } catch (e) { return 'blocked'; } }")
    assert parent_reach == "blocked", "nor the sandbox proxy's document"

    # CSP: the explorer's origin (loopback, undeclared) is out of the app's reach
    probe = inner.evaluate(
        """async (target) => {
            const seen = [];
            document.addEventListener('securitypolicyviolation', (e) => seen.push(e.effectiveDirective));
            let fetched = 'fetched';
            try { await fetch(target); } catch (e) { fetched = 'blocked'; }
            const img = await new Promise((resolve) => {
                const image = new Image();
                image.onload = () => resolve('loaded');
                image.onerror = () => resolve('blocked');
                image.src = target + '?img';
            });
            await new Promise((r) => setTimeout(r, 300));
            return { fetched, img, seen };
        }""",
        f"{demo_server.url}/apps/sandbox.json",
    )
    assert probe["fetched"] == "blocked" and probe["img"] == "blocked"
    assert "connect-src" in probe["seen"] and "img-src" in probe["seen"]

    # a tool whose visibility lacks "app" is refused by the host
    app.locator("#forbidden").click()
    expect(app.locator("#error")).to_contain_text("calculator_history_text refused", timeout=CALL)
    expect(app.locator("#error")).to_contain_text("may not be called by apps")
    expect(page.get_by_test_id("log-list")).to_contain_text("refused (visibility", timeout=CALL)

    # a tool on no server is refused too, when the app asks by hand
    answer = inner.evaluate(
        """() => new Promise((resolve) => {
            window.addEventListener('message', (e) => { if (e.data && e.data.id === 'probe') resolve(e.data); });
            parent.postMessage({jsonrpc: '2.0', id: 'probe', method: 'tools/call', params: {name: 'nowhere'}}, '*');
        })"""
    )
    assert "not on this server" in answer["error"]["message"]


HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>host</title></head><body>
<script>
window.seen = [];
const frame = document.createElement("iframe");
frame.src = SANDBOX + "?parent=" + encodeURIComponent(location.origin);
document.body.appendChild(frame);
window.addEventListener("message", (event) => {
  if (event.source !== frame.contentWindow) return;
  window.seen.push(event.data);
  if (event.data.method === "ui/notifications/sandbox-proxy-ready") {
    frame.contentWindow.postMessage({jsonrpc: "2.0", method: "ui/notifications/sandbox-resource-ready",
      params: {html: APP, csp: {connectDomains: []}}}, new URL(SANDBOX).origin);
  }
});
</script></body></html>"""

PROBE_APP = """<!doctype html><html><body><script>
const seen = [];
document.addEventListener("securitypolicyviolation", (e) => seen.push(e.effectiveDirective));
fetch(TARGET).then(() => "fetched", () => "blocked").then((fetched) => setTimeout(() => {
  const meta = document.querySelector('meta[http-equiv="Content-Security-Policy"]');
  parent.postMessage({jsonrpc: "2.0", method: "test/probe",
    params: {fetched, seen, origin: self.origin, meta: meta ? meta.content : null}}, "*");
}, 200));
</script></body></html>"""


def test_a_static_sandbox_enforces_the_csp_with_a_meta_tag(page: Page, tmp_path: Path) -> None:
    """``dist/sandbox/`` on a plain static server (no CSP header): the meta tag blocks undeclared origins."""
    static = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory"]
    with (
        ServerProcess([*static, str(ROOT / "site" / "sandbox")], quiet=True) as sandbox,
        ServerProcess([*static, str(tmp_path)], quiet=True) as host,
    ):
        app = PROBE_APP.replace("TARGET", json.dumps(f"{host.url}/host.html"))
        html = HOST_PAGE.replace("SANDBOX", json.dumps(f"{sandbox.url}/sandbox.html"))
        inline = json.dumps(app).replace("</", "<\\/")  # inside the host page's own <script>
        (tmp_path / "host.html").write_text(html.replace("APP", inline))
        page.goto(f"{host.url}/host.html")
        page.wait_for_function("window.seen.some((m) => m.method === 'test/probe')", timeout=CALL)
        probe = page.evaluate("window.seen.find((m) => m.method === 'test/probe').params")
        assert probe["fetched"] == "blocked" and "connect-src" in probe["seen"]
        assert probe["origin"] == "null" and "connect-src 'self'" in probe["meta"]
        methods = page.evaluate("window.seen.map((m) => m.method)")
        assert methods[0] == "ui/notifications/sandbox-proxy-ready"

        # a sandbox told the wrong parent origin refuses to start
        wrong = html.replace('"?parent=" + encodeURIComponent(location.origin)', '"?parent=http://127.0.0.1:9"')
        (tmp_path / "wrong.html").write_text(wrong.replace("APP", inline))
        page.goto(f"{host.url}/wrong.html")
        refusal = page.frame_locator("iframe").locator("#sandbox-error")
        expect(refusal).to_contain_text("only works inside a host page", timeout=CALL)
        assert page.evaluate("window.seen.length") == 0

"""The built site runs our package through PyScript in Chromium, fully offline."""

from __future__ import annotations

import pytest
from e2e_support import LoopbackGuard, screenshot
from playwright.sync_api import Browser, Page, expect


def test_smoke_page_runs_python_with_our_package(page: Page, guard: LoopbackGuard, demo_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{demo_server.url}/smoke.html")
    result = page.get_by_test_id("smoke-result")
    expect(result).to_contain_text("ok: ping via pyodide_transport", timeout=90_000)
    expect(result).to_contain_text("pydantic 2.14.3")
    expect(result).to_contain_text("on emscripten")
    screenshot(page, "smoke")
    assert any(u.endswith(".whl") for u in guard.requests), "wheels must come from the local server"
    assert any(u.endswith("pyodide.asm.wasm") for u in guard.requests)


def test_guard_fails_a_page_that_reaches_off_host(browser: Browser, demo_server) -> None:  # type: ignore[no-untyped-def]
    # The demo server's CSP (connect-src 'self') already stops such a fetch inside the page; bypass it
    # so the request reaches the guard, which must abort it and fail the test.
    context = browser.new_context(bypass_csp=True)
    guard = LoopbackGuard()
    guard.attach(context)
    try:
        page = context.new_page()
        page.goto(f"{demo_server.url}/index.html")
        page.evaluate("fetch('https://cdn.example.invalid/pyodide.js').catch(() => null)")
        page.wait_for_timeout(300)
    finally:
        context.close()
    assert guard.violations == ["https://cdn.example.invalid/pyodide.js"]
    with pytest.raises(AssertionError, match=r"requests left 127\.0\.0\.1"):
        guard.check()


def test_csp_blocks_off_host_fetches_in_the_page(page: Page, guard: LoopbackGuard, demo_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{demo_server.url}/index.html")
    outcome = page.evaluate("fetch('https://cdn.example.invalid/x.js').then(() => 'fetched', e => 'blocked: ' + e)")
    assert outcome.startswith("blocked")
    assert guard.violations == []

"""Signing in from the explorer to the demo's OAuth-protected endpoint, in Chromium.

The whole flow is real: the explorer gets a 401, discovers the protected-resource and
authorization-server metadata, registers itself (Dynamic Client Registration), opens the
consent page in a popup from the "Sign in" click (or leaves the tab: the redirect fallback),
the site's ``oauth/callback.html`` hands the answer back, and the code is exchanged with PKCE.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from e2e_support import screenshot
from playwright.sync_api import Page, expect

from devtools.oauth_servers import misconfigured_oauth_server
from devtools.servers import DemoServer

pytestmark = pytest.mark.e2e

BOOT = 90_000
CALL = 30_000
LIFETIME = 4  # seconds: the short-lived server's access tokens


@pytest.fixture(scope="module")
def short_lived_server() -> Iterator[DemoServer]:
    """A demo server whose access tokens expire after a few seconds."""
    server = DemoServer("--token-lifetime", str(LIFETIME))
    try:
        yield server
    finally:
        server.stop()


def open_protected(page: Page, base: str, *extra: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 950})
    query = "&".join([f"server={base}/mcp/protected", "transport=http-oauth", "autoconnect=1", *extra])
    page.goto(f"{base}/index.html?{query}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    expect(page.get_by_test_id("auth-panel")).to_be_visible(timeout=CALL)


def sign_in_through_popup(page: Page, decision: str = "consent-allow") -> None:
    with page.expect_popup() as opened:
        page.get_by_test_id("sign-in-button").click()
    popup = opened.value
    expect(popup.get_by_test_id(decision)).to_be_visible(timeout=CALL)
    if decision == "consent-allow":
        screenshot(popup, "oauth-consent-page")
    popup.get_by_test_id(decision).click()
    try:
        popup.wait_for_event("close", timeout=CALL)
    except Exception:
        print("POPUP", popup.url, popup.inner_text("body"))
        raise


def call_echo(page: Page, message: str) -> None:
    page.get_by_test_id("tab-tools").click()
    page.get_by_test_id("tool-item-echo").click()
    page.get_by_test_id("field-message").fill(message)
    page.get_by_test_id("call-button").click()


def trace_kinds(page: Page) -> list[str]:
    page.get_by_test_id("tab-trace").click()
    return page.locator('[data-testid="trace-entry"][data-kind="oauth"]').evaluate_all(
        "nodes => nodes.map(n => n.dataset.method)"
    )


def test_sign_in_with_the_popup_then_call_a_tool_and_sign_out(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_protected(page, demo_server.url)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "auth")
    expect(page.get_by_test_id("auth-panel")).to_have_attribute("data-reason", "sign-in")
    expect(page.get_by_test_id("auth-reason")).to_contain_text(f"{demo_server.url}/mcp/protected asks you to sign in")
    screenshot(page, "oauth-sign-in-required")
    sign_in_through_popup(page)

    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("auth-panel")).to_be_hidden()
    expect(page.get_by_test_id("auth-info")).to_be_visible()
    expect(page.get_by_test_id("auth-scopes")).to_contain_text("mcp:tools")
    expect(page.get_by_test_id("auth-expiry")).to_contain_text("expires at")
    call_echo(page, "signed in")
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "ok", timeout=CALL)
    expect(page.get_by_test_id("result-block").first).to_contain_text("signed in")
    screenshot(page, "oauth-signed-in")

    kinds = trace_kinds(page)  # the discovery, in order, before the token
    for wanted in ("resource metadata", "authorization server metadata", "client registration", "token"):
        assert wanted in kinds, kinds
    assert kinds.index("resource metadata") < kinds.index("authorization server metadata") < kinds.index("token")

    stored = page.evaluate("Object.keys(sessionStorage)")
    assert any(k.startswith("pyodide-transport.oauth.tokens:") for k in stored), stored
    kept = page.evaluate("Object.entries(localStorage)")  # the explorer's history lives there, tokens never
    assert not [k for k, v in kept if "oauth" in k or "access_token" in v or "refresh_token" in v], kept

    page.get_by_test_id("sign-out-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_text("Signed out", timeout=CALL)
    stored = page.evaluate("Object.keys(sessionStorage)")
    assert not any(k.startswith("pyodide-transport.oauth.tokens:") for k in stored), stored
    page.get_by_test_id("connect-button").click()  # the revoked token is gone: signing in again is asked for
    expect(page.get_by_test_id("auth-panel")).to_be_visible(timeout=CALL)
    page.get_by_test_id("sign-in-cancel").click()
    expect(page.get_by_test_id("connection-error")).to_contain_text("Sign-in cancelled", timeout=CALL)


def test_refused_consent_says_so(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_protected(page, demo_server.url)
    sign_in_through_popup(page, "consent-deny")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "error", timeout=CALL)
    expect(page.get_by_test_id("connection-error")).to_contain_text("Sign-in refused")
    expect(page.get_by_test_id("connection-error")).to_contain_text("consent was not given")
    screenshot(page, "oauth-consent-refused")


def test_the_redirect_fallback_signs_in_without_a_popup(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_protected(page, demo_server.url)
    page.get_by_test_id("sign-in-redirect").check()
    page.get_by_test_id("sign-in-button").click()
    page.wait_for_url("**/oauth/authorize**", timeout=CALL)  # this tab left for the authorization server
    page.get_by_test_id("consent-allow").click()
    page.wait_for_url("**/index.html**", timeout=CALL)  # the callback page brought it back
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("server-url")).to_have_value(f"{demo_server.url}/mcp/protected")
    expect(page.get_by_test_id("auth-scopes")).to_contain_text("mcp:tools")
    call_echo(page, "came back")
    expect(page.get_by_test_id("result-block").first).to_contain_text("came back", timeout=CALL)
    assert len(page.context.pages) == 1  # no popup was used
    stored = page.evaluate("Object.keys(sessionStorage)")
    assert not any(
        k.startswith(("pyodide-transport.oauth.pending:", "pyodide-transport.oauth.callback")) for k in stored
    )


def test_a_forged_callback_is_refused(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1400, "height": 950})
    page.goto(f"{demo_server.url}/index.html")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    forged = f"{demo_server.url}/oauth/callback.html?code=stolen&state=nobody-asked"
    page.evaluate("([key, url]) => sessionStorage.setItem(key, url)", ["pyodide-transport.oauth.callback", forged])
    page.reload()
    expect(page.get_by_test_id("connection-error")).to_contain_text("Sign-in failed", timeout=BOOT)
    expect(page.get_by_test_id("connection-error")).to_contain_text("stale or forged")


def test_an_expired_token_asks_to_sign_in_again(page: Page, short_lived_server: DemoServer) -> None:
    base = short_lived_server.url
    open_protected(page, base)
    sign_in_through_popup(page)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    # The refresh token is revoked at the authorization server (as an administrator would): once the
    # access token expires, the refresh is refused and only a new sign-in helps.
    tokens = page.evaluate(
        "() => Object.entries(sessionStorage).filter(([k]) => k.startsWith('pyodide-transport.oauth.tokens:'))"
        ".map(([, v]) => v)"
    )
    record = json.loads(tokens[0])
    assert record["refresh_token"], record
    status = page.evaluate(
        """async ([url, token, client]) => (await fetch(url, {method: 'POST',
             headers: {'content-type': 'application/x-www-form-urlencoded'},
             body: new URLSearchParams({token, token_type_hint: 'refresh_token', client_id: client})})).status""",
        [f"{base}/oauth/revoke", record["refresh_token"], record["client_id"]],
    )
    assert status == 200
    time.sleep(LIFETIME + 0.5)
    call_echo(page, "after expiry")
    expect(page.get_by_test_id("auth-panel")).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("auth-panel")).to_have_attribute("data-reason", "expired")
    expect(page.get_by_test_id("auth-reason")).to_contain_text("expired")
    screenshot(page, "oauth-expired")
    sign_in_through_popup(page)
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "ok", timeout=CALL)
    expect(page.get_by_test_id("result-block").first).to_contain_text("after expiry")


@pytest.fixture(scope="module")
def misconfigured() -> Iterator[str]:
    with misconfigured_oauth_server() as url:
        yield url


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/no-cors/mcp", "DiscoveryCORSError"),
        ("/hidden/mcp", "ChallengeNotExposedError"),
    ],
)
def test_browser_hostile_authorization_servers_are_named(  # type: ignore[no-untyped-def]
    page: Page, demo_server, misconfigured: str, path: str, named: str
) -> None:
    page.set_viewport_size({"width": 1400, "height": 950})
    page.goto(f"{demo_server.url}/index.html?server={misconfigured}{path}&transport=http-oauth&autoconnect=1")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    error = page.get_by_test_id("connection-error")
    expect(error).to_contain_text(f"Sign-in failed at {misconfigured}{path} ({named})", timeout=CALL)
    if named == "DiscoveryCORSError":
        expect(error).to_contain_text("Access-Control-Allow-Origin")
    else:
        expect(error).to_contain_text("Access-Control-Expose-Headers")

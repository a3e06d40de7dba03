"""The Protocol and Network tabs and the ping indicator, in Chromium against the demo server.

The Protocol tab groups the trace per request (progress, input rounds, server requests, the
answer); the Network tab lists the HTTP exchanges with the headers browsers care about and says
what breaks them (here: a server without CORS); the top bar shows the last ping's round-trip.
"""

from __future__ import annotations

import re

import pytest
from e2e_support import CALL, assert_axe_clean, expect_connected, open_explorer, open_tool, screenshot
from playwright.sync_api import Locator, Page, expect

from devtools.ports import free_port

pytestmark = pytest.mark.e2e


def group(page: Page, method: str) -> Locator:
    """The newest group of ``method`` in the Protocol tab (pinned: it stays that group when others come)."""
    newest = page.locator(f'[data-testid="protocol-group"][data-method="{method}"]').last
    expect(newest).to_be_attached(timeout=CALL)
    return page.locator(f'[data-testid="protocol-group"][data-key="{newest.get_attribute("data-key")}"]')


def events(row: Locator, role: str) -> Locator:
    return row.locator(f'[data-testid="protocol-event"][data-role="{role}"]')


def test_modern_era_groups_progress_and_input_rounds_and_pings(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)
    expect(page.get_by_test_id("protocol-version")).to_contain_text("modern era")

    # the ping indicator in the top bar: a button with a name, showing the last round-trip
    ping = page.get_by_test_id("ping-indicator")
    expect(ping).to_have_text(re.compile(r"^ping \d+(\.\d+)? (µs|ms|s)$"), timeout=CALL)
    expect(ping).to_have_attribute("data-state", "ok")
    expect(ping).to_have_attribute("aria-label", re.compile(r"^ping \d.*: ping the server now$"))
    ping.click()
    expect(ping).to_have_attribute("title", re.compile(r"^Last round-trip .* click to ping now$"))

    # a call with progress: one group, its progress events and its result, with offsets and a total
    open_tool(page, "long_running")
    page.get_by_test_id("field-steps").fill("3")
    page.get_by_test_id("field-delay_ms").fill("50")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "ok", timeout=CALL)
    page.get_by_test_id("tab-protocol").click()
    call = group(page, "tools/call")
    expect(call).to_have_attribute("data-status", "ok")
    expect(call.get_by_test_id("protocol-duration")).to_have_text(re.compile(r"^\d+(\.\d+)? (µs|ms|s)$"))
    call.get_by_test_id("protocol-summary").click()
    expect(events(call, "request")).to_have_count(1)
    expect(events(call, "progress")).to_have_count(3)
    expect(events(call, "response")).to_have_count(1)
    expect(call.get_by_test_id("protocol-event-offset").last).to_have_text(re.compile(r"^\+\d+(\.\d+)? (µs|ms|s)$"))
    expect(events(call, "progress").first).to_contain_text("progress 1 / 3")
    events(call, "request").click()
    expect(call.get_by_test_id("protocol-event-json")).to_contain_text('"progressToken"')
    expect(events(call, "request")).to_have_attribute("aria-expanded", "true")
    events(call, "request").click()  # and closes again
    expect(call.get_by_test_id("protocol-event-json")).to_have_count(0)

    # pings are recorded but hidden by default; the filter shows them
    pings = page.locator('[data-testid="protocol-group"][data-ping="true"]')  # server/discover in this era
    expect(pings.first).to_be_hidden()
    expect(pings.first).to_be_attached()
    page.get_by_test_id("protocol-hide-pings").uncheck()
    expect(pings.first).to_be_visible()
    expect(pings.first).to_have_attribute("data-method", "server/discover")
    page.get_by_test_id("protocol-hide-pings").check()
    page.get_by_test_id("protocol-filter").fill("long")  # no method matches: everything hides
    expect(page.locator('[data-testid="protocol-group"]:visible')).to_have_count(0)
    page.get_by_test_id("protocol-filter").fill("tools/call")
    page.get_by_test_id("protocol-status-filter").select_option("ok")
    expect(call).to_be_visible()

    # elicitation in the 2026-07-28 era: an input-required result, then a retried round (new id, same group)
    open_tool(page, "ask_user")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("input-request")).to_be_visible(timeout=CALL)
    page.get_by_test_id("elicit-name").fill("Grace")
    page.get_by_test_id("elicit-accept").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text("Hello Grace", timeout=CALL)
    page.get_by_test_id("tab-protocol").click()
    asked = group(page, "tools/call")
    expect(asked).to_have_attribute("data-rounds", "2")
    expect(asked).to_have_attribute("data-status", "ok")
    asked.get_by_test_id("protocol-summary").click()
    expect(events(asked, "input-required")).to_contain_text("elicitation/create")
    expect(events(asked, "retry")).to_contain_text(re.compile(r"by (requestState|inputResponses)"))
    expect(asked.get_by_test_id("protocol-event-count")).to_contain_text("2 rounds")
    call.get_by_test_id("protocol-summary").click()  # fold the first call: the screenshot shows the rounds
    page.get_by_test_id("protocol-filter").fill("")
    page.get_by_test_id("protocol-status-filter").select_option("")
    asked.scroll_into_view_if_needed()
    screenshot(page, "protocol-pane")
    events(asked, "retry").click()  # an event open on its JSON, for the check
    assert_axe_clean(page, ['[data-testid="pane-protocol"]', '[data-testid="status-root"]'])

    # the Network tab: the POSTs with their status and the 2026-07-28 headers
    page.get_by_test_id("tab-network").click()
    posts = page.locator('[data-testid="network-exchange"][data-method="POST"][data-rpc="tools/call"]')
    expect(posts.first).to_have_attribute("data-status", "200")
    posts.last.locator("summary").click()
    headers = posts.last.get_by_test_id("network-headers")
    expect(headers.locator('[data-header="mcp-method"]')).to_contain_text("tools/call")
    expect(headers.locator('[data-header="mcp-protocol-version"]').first).to_contain_text("2026-07-28")
    expect(posts.last.get_by_test_id("network-type")).to_have_text(re.compile("application/json|text/event-stream"))
    expect(page.get_by_test_id("network-count")).to_have_text(re.compile(r"^\d+$"))
    assert_axe_clean(page, ['[data-testid="pane-network"]'])

    expect(page.get_by_test_id("network-alert")).to_be_hidden()

    # a failing ping: an error state, the failure in the tooltip
    page.route("**/mcp", lambda route: route.abort())
    ping.click()
    expect(ping).to_have_attribute("data-state", "error", timeout=CALL)
    expect(ping).to_have_text("ping failed")
    expect(ping).to_have_attribute("title", re.compile(r"^The last ping failed: Network error"))
    page.unroute("**/mcp")

    # disconnected: the pinging stops, the indicator goes, the open listen stream ends with the connection
    page.get_by_test_id("disconnect-button").click()
    expect(ping).to_be_hidden()
    page.get_by_test_id("tab-protocol").click()
    expect(group(page, "subscriptions/listen")).to_have_attribute("data-status", "cancelled")


def test_handshake_era_server_requests_sessions_and_a_server_without_cors(
    page: Page,
    demo_server,  # type: ignore[no-untyped-def]
    static_site: str,
) -> None:
    open_explorer(page, f"{demo_server.url}/?autoconnect=0")
    if not page.get_by_test_id("protocol-select").is_visible():  # in the folded "Header and protocol" section
        page.get_by_test_id("advanced-toggle").click()
    expect(page.get_by_test_id("protocol-select")).to_be_enabled()
    page.get_by_test_id("protocol-select").select_option("2025-11-25")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("protocol-version")).to_have_text("2025-11-25 (handshake era)")
    expect(page.get_by_test_id("tool-list")).to_contain_text("ask_llm", timeout=CALL)

    # sampling in the handshake era: a server request on the call's stream, inside the call's group
    open_tool(page, "ask_llm")
    page.get_by_test_id("field-question").fill("What is 6 times 7?")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("sampling-message")).to_contain_text("What is 6 times 7?", timeout=CALL)
    page.get_by_test_id("sampling-reply").fill("42")
    page.get_by_test_id("sampling-send").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text("says: 42", timeout=CALL)
    page.get_by_test_id("tab-protocol").click()
    call = group(page, "tools/call")
    expect(call).to_have_attribute("data-status", "ok")
    call.get_by_test_id("protocol-summary").click()
    asked = events(call, "server-request")
    expect(asked).to_have_attribute("data-method", "sampling/createMessage")
    expect(asked).to_contain_text("by stream")
    expect(events(call, "answer")).to_have_count(1)
    expect(events(call, "response")).to_have_count(1)

    # the Network tab: initialize with its session id, later POSTs sending it and the protocol version
    page.get_by_test_id("tab-network").click()
    init = page.locator('[data-testid="network-exchange"][data-rpc="initialize"]').first
    expect(init).to_have_attribute("data-status", "200")
    init.locator("summary").click()
    expect(init.get_by_test_id("network-headers").locator('[data-header="mcp-session-id"]')).to_contain_text("received")
    post = page.locator('[data-testid="network-exchange"][data-rpc="tools/call"]').last
    post.locator("summary").click()
    sent = post.get_by_test_id("network-headers")
    expect(sent.locator('[data-header="mcp-session-id"]').first).to_contain_text("sent")
    expect(sent.locator('[data-header="mcp-protocol-version"]').first).to_contain_text("2025-11-25")
    screenshot(page, "network-pane")

    # a server without CORS: the connection fails, and the Network tab says why
    page.get_by_test_id("disconnect-button").click()
    page.get_by_test_id("server-url").fill(f"{static_site}/mcp")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-error")).to_contain_text("Blocked by CORS", timeout=CALL)
    page.get_by_test_id("tab-network").click()
    finding = page.locator('[data-testid="network-finding"][data-code="cors"]')
    expect(finding).to_contain_text("Access-Control-Allow-Origin")
    expect(finding).to_contain_text(f"POST {static_site}/mcp")
    expect(page.get_by_test_id("network-connection").last).to_have_text(f"Connecting to {static_site}/mcp")
    blocked = page.locator('[data-testid="network-exchange"][data-state="failed"]').last
    expect(blocked).to_have_attribute("data-problems", re.compile("cors"))
    blocked.locator("summary").click()
    expect(blocked.get_by_test_id("network-failure")).to_contain_text("Blocked by CORS")
    expect(finding).to_contain_text("a no-cors probe reached it")  # something answers there: CORS it is
    expect(page.get_by_test_id("network-alert")).to_have_text("1 problem")
    screenshot(page, "network-cors")
    assert_axe_clean(page, ['[data-testid="pane-network"]'])

    # nothing listening: the browser says the same TypeError, the probe tells the two apart
    closed = free_port()
    page.get_by_test_id("server-url").fill(f"http://127.0.0.1:{closed}/mcp")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "error", timeout=CALL)
    page.get_by_test_id("tab-network").click()
    expect(page.locator('[data-testid="network-finding"][data-code="unreachable"]')).to_contain_text(
        "the server is down or unreachable", timeout=CALL
    )

    # a WebSocket has no HTTP exchanges: the tab says so
    page.get_by_test_id("server-url").fill(demo_server.url)
    page.get_by_test_id("transport-select").select_option("websocket")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("network-note")).to_have_text(
        "The WebSocket transport has no HTTP exchanges to show: its messages are in the Protocol and Trace tabs."
    )
    page.get_by_test_id("tab-protocol").click()
    expect(group(page, "initialize")).to_have_attribute("data-status", "ok")
    expect(page.get_by_test_id("ping-indicator")).to_have_attribute("data-state", "ok", timeout=CALL)

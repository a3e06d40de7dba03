"""The explorer reaches a stdio server through the demo server's gateway, in Chromium.

``python -m server_demo`` offers a built-in upstream, ``demo-stdio`` (the demo server itself over
stdio, a process per browser session); the explorer lists it from ``GET /gateway`` and connects
through ``/gateway/demo-stdio/mcp`` or ``/ws``.
"""

from __future__ import annotations

import pytest
from e2e_support import screenshot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

BOOT = 90_000
CALL = 30_000


@pytest.mark.parametrize("transport", ["http-sse", "websocket"])
def test_the_explorer_explores_a_stdio_server_through_the_gateway(page: Page, demo_server, transport: str) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1400, "height": 950})
    page.goto(f"{demo_server.url}/index.html?server={demo_server.url}&autoconnect=0")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    expect(page.get_by_test_id("gateway-row")).to_be_visible(timeout=CALL)
    page.get_by_test_id("transport-select").select_option(transport)
    page.get_by_test_id("gateway-select").select_option("demo-stdio")
    path = "/gateway/demo-stdio/ws" if transport == "websocket" else "/gateway/demo-stdio/mcp"
    scheme_url = demo_server.url.replace("http", "ws", 1) if transport == "websocket" else demo_server.url
    expect(page.get_by_test_id("server-url")).to_have_value(scheme_url + path)
    expect(page.get_by_test_id("transport-hint")).to_contain_text("Through the gateway: demo-stdio (stdio)")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("endpoint-url")).to_have_text(scheme_url + path)
    expect(page.get_by_test_id("tool-list")).to_contain_text("calculate", timeout=CALL)

    page.get_by_test_id("tool-item-calculate").click()
    page.get_by_test_id("field-a").fill("6")
    page.get_by_test_id("field-b").fill("7")
    page.get_by_test_id("field-operation").select_option(label="multiply")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "ok", timeout=CALL)
    expect(page.get_by_test_id("result-structured")).to_contain_text('"result": 42')
    if transport == "http-sse":
        screenshot(page, "explorer-gateway-stdio")

"""The explorer reaches stdio servers and servers without CORS through the demo server's gateway, in Chromium.

``python -m server_demo`` offers a built-in upstream, ``demo-stdio`` (the demo server itself over
stdio, a process per browser session); the explorer lists it from ``GET /gateway`` and connects
through ``/gateway/demo-stdio/mcp`` or ``/ws``. A second demo server runs with a ``--gateway`` file
naming the official Python SDK's server twice (Streamable HTTP, which sends no CORS headers, and
stdio) and ours with ``--stdio``: the explorer's direct attempt at the SDK's HTTP server fails with a
CORS error, then it goes through the gateway; tools run with progress and cancellation, and
sampling and elicitation are answered from the page.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import screenshot
from playwright.sync_api import Page, expect

from devtools import ROOT
from devtools.sdk_server import sdk_http_server, sdk_stdio_command
from devtools.servers import DemoServer

pytestmark = pytest.mark.e2e

BOOT = 90_000
CALL = 30_000


@dataclass
class GatewayDemo:
    """A demo server whose gateway names the SDK's servers; ``sdk_url`` is the SDK's HTTP endpoint."""

    url: str
    sdk_url: str


@pytest.fixture(scope="module")
def gateway_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayDemo]:
    """The SDK's HTTP server and a demo server with a gateway file naming it, the SDK's stdio server and ours."""
    with sdk_http_server(quiet=True) as sdk_url:
        command, *args = sdk_stdio_command()
        servers = {
            "sdk-http": {"url": sdk_url},
            "sdk-stdio": {"command": command, "args": args, "cwd": str(ROOT)},
            "ours-stdio": {"command": sys.executable, "args": ["-m", "server_demo", "--stdio"], "cwd": str(ROOT)},
        }
        config: Path = tmp_path_factory.mktemp("gateway") / "servers.json"
        config.write_text(json.dumps({"mcpServers": servers}))
        server = DemoServer("--gateway", str(config), "--no-oauth")
        try:
            yield GatewayDemo(server.url, sdk_url)
        finally:
            server.stop()


def _open(page: Page, base: str, query: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 950})
    page.goto(f"{base}/index.html?{query}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)


def _call(page: Page, tool: str, **fields: str) -> None:
    page.get_by_test_id(f"tool-item-{tool}").click()
    for name, value in fields.items():
        page.get_by_test_id(f"field-{name}").fill(value)
    page.get_by_test_id("call-button").click()


def _progress_then_cancel(page: Page, tool: str, steps: int, **fields: str) -> None:
    _call(page, tool, steps=str(steps), **fields)
    expect(page.get_by_test_id("progress-text")).to_contain_text(re.compile(rf"^\d+ / {steps}"), timeout=CALL)
    page.get_by_test_id("cancel-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "cancelled", timeout=CALL)
    expect(page.get_by_test_id("call-button")).to_be_enabled()


def _sample(page: Page, tool: str, field: str, expected: str) -> None:
    _call(page, tool, **{field: "What is 6 times 7?"})
    expect(page.get_by_test_id("sampling-message")).to_contain_text("user: What is 6 times 7?", timeout=CALL)
    page.get_by_test_id("sampling-reply").fill("42")
    page.get_by_test_id("sampling-send").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text(expected, timeout=CALL)


def _elicit(page: Page, tool: str, expected: str) -> None:
    _call(page, tool)
    expect(page.get_by_test_id("input-request")).to_be_visible(timeout=CALL)
    page.get_by_test_id("elicit-name").fill("Grace")
    page.get_by_test_id("elicit-accept").click()
    expect(page.get_by_test_id("input-request")).to_be_hidden()
    expect(page.get_by_test_id("tool-result")).to_contain_text(expected, timeout=CALL)


def _exercise_sdk(page: Page) -> None:
    """The SDK server's tools: a result, progress then cancel (the session goes on), sampling, elicitation."""
    expect(page.get_by_test_id("tool-list")).to_contain_text("ask_name", timeout=CALL)
    _call(page, "add", a="2", b="40")
    expect(page.get_by_test_id("tool-result")).to_contain_text("42", timeout=CALL)
    _progress_then_cancel(page, "count", 100, delay_ms="200")
    _sample(page, "sample", "prompt", "sampled: 42")
    _elicit(page, "ask_name", "hello Grace")
    _call(page, "add", a="1", b="2")
    expect(page.get_by_test_id("tool-result")).to_contain_text("3", timeout=CALL)


@pytest.mark.parametrize("transport", ["http-sse", "websocket"])
def test_the_explorer_explores_a_stdio_server_through_the_gateway(page: Page, demo_server, transport: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, demo_server.url, f"server={demo_server.url}&autoconnect=0")
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


def test_a_server_without_cors_fails_directly_then_the_gateway_is_offered(
    page: Page, gateway_demo: GatewayDemo
) -> None:
    _open(page, gateway_demo.url, f"server={gateway_demo.sdk_url}&autoconnect=0")
    expect(page.get_by_test_id("gateway-row")).to_be_visible(timeout=CALL)
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "error", timeout=CALL)
    expect(page.get_by_test_id("connection-error")).to_contain_text(f"Blocked by CORS at {gateway_demo.sdk_url}")
    offer = page.get_by_test_id("gateway-offer")
    expect(offer).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("gateway-offer-text")).to_contain_text("'sdk-http'")
    screenshot(page, "explorer-gateway-offer")
    page.get_by_test_id("gateway-offer-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(offer).to_be_hidden()
    expect(page.get_by_test_id("endpoint-url")).to_have_text(f"{gateway_demo.url}/gateway/sdk-http/mcp")
    expect(page.get_by_test_id("gateway-route")).to_contain_text("using the gateway route sdk-http")
    expect(page.get_by_test_id("server-name")).to_contain_text("sdk-test")
    _exercise_sdk(page)


def test_with_gateway_auto_the_explorer_takes_the_route_itself(page: Page, gateway_demo: GatewayDemo) -> None:
    _open(page, gateway_demo.url, f"server={gateway_demo.sdk_url}&autoconnect=1&gateway=auto")
    expect(page.get_by_test_id("gateway-auto")).to_be_checked()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("gateway-route")).to_contain_text(
        f"Direct connection to {gateway_demo.sdk_url} was blocked by CORS: using the gateway route sdk-http"
    )
    expect(page.get_by_test_id("gateway-offer")).to_be_hidden()
    expect(page.get_by_test_id("tool-list")).to_contain_text("count", timeout=CALL)


@pytest.mark.parametrize("transport", ["http-sse", "websocket"])
def test_the_sdk_stdio_server_through_the_gateway(page: Page, gateway_demo: GatewayDemo, transport: str) -> None:
    _open(page, gateway_demo.url, f"server={gateway_demo.url}&autoconnect=0&transport={transport}")
    expect(page.get_by_test_id("gateway-row")).to_be_visible(timeout=CALL)
    page.get_by_test_id("gateway-select").select_option("sdk-stdio")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("server-name")).to_contain_text("sdk-test")
    _exercise_sdk(page)


def test_our_stdio_server_through_the_gateway(page: Page, gateway_demo: GatewayDemo) -> None:
    _open(page, gateway_demo.url, f"server={gateway_demo.url}&autoconnect=0")
    page.get_by_test_id("gateway-select").select_option("ours-stdio")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("tool-list")).to_contain_text("long_running", timeout=CALL)
    _progress_then_cancel(page, "long_running", 200, delay_ms="100")
    _sample(page, "ask_llm", "question", "LLM (human (explorer)) says: 42")
    _elicit(page, "ask_user", "Hello Grace, you like blue.")

"""The MCP explorer in Chromium against a real demo server: every flow, by data-testid.

Each test boots Python once (a few seconds) and walks one group of flows on
that page. Screenshots of the main states go to test-artifacts/.
"""

from __future__ import annotations

import json
import re

import pytest
from e2e_support import BOOT, CALL, call_tool, expect_connected, open_explorer, screenshot, tool_result
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("transport", ["http-sse", "http-json", "http-stateless", "websocket"])
def test_connect_list_call_over_every_transport(page: Page, demo_server, transport: str) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/?server={demo_server.url}&transport={transport}&autoconnect=1")
    expect_connected(page)
    expect(page.get_by_test_id("transport-select")).to_have_value(transport)
    expect(page.get_by_test_id("protocol-version")).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))
    path = {"http-sse": "/mcp", "http-json": "/mcp/json", "http-stateless": "/mcp/stateless", "websocket": "/ws"}
    scheme = "ws" if transport == "websocket" else "http"
    expect(page.get_by_test_id("endpoint-url")).to_have_text(
        f"{demo_server.url.replace('http', scheme, 1)}{path[transport]}"
    )

    page.get_by_test_id("tool-item-calculate").click()
    form = page.get_by_test_id("field-form")
    expect(form).to_contain_text("First operand")  # descriptions from the schema
    expect(page.get_by_test_id("field-a")).to_have_attribute("type", "number")
    page.get_by_test_id("field-a").fill("6")
    page.get_by_test_id("field-b").fill("7")
    page.get_by_test_id("field-operation").select_option(label="multiply")
    page.get_by_test_id("call-button").click()
    expect(tool_result(page)).to_have_attribute("data-state", "ok", timeout=CALL)
    expect(page.get_by_test_id("result-structured")).to_contain_text('"result": 42')
    expect(page.get_by_test_id("result-block").first).to_contain_text("6 * 7 = 42")
    expect(page.get_by_test_id("share-link")).to_have_attribute("href", re.compile(f"transport={transport}"))
    if transport == "http-sse":
        screenshot(page, "explorer-tools-form-result")


def test_lands_connected_then_disconnects_and_reconnects(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    """What ``python build.py serve`` opens: the bare URL of the demo server."""
    page.goto(demo_server.url + "/")
    expect(page.get_by_test_id("loading")).to_be_visible()
    expect(page.get_by_test_id("loading-stage")).not_to_have_text("")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    expect(page.get_by_test_id("loading")).to_be_hidden()
    expect_connected(page)
    expect(page.get_by_test_id("server-url")).to_have_value(demo_server.url)
    expect(page.get_by_test_id("server-name")).to_contain_text("pyodide-transport demo server")
    expect(page.get_by_test_id("server-capabilities")).to_contain_text("tools")
    expect(page.get_by_test_id("server-capabilities")).to_contain_text("resources (subscribe)")
    expect(page.get_by_test_id("server-instructions")).to_contain_text("A demo MCP server")

    page.get_by_test_id("disconnect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "disconnected")
    expect(page.get_by_test_id("server-info")).to_be_hidden()
    expect(page.get_by_test_id("tool-list")).to_contain_text("Connect to list tools")

    page.get_by_test_id("advanced-toggle").click()
    page.get_by_test_id("protocol-select").select_option("2025-11-25")
    page.get_by_test_id("connect-button").click()
    expect_connected(page)
    expect(page.get_by_test_id("protocol-version")).to_have_text("2025-11-25 (handshake era)")
    expect(page.get_by_test_id("session-id")).not_to_contain_text("none")


def test_page_csp_blocking_another_server_is_explained(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    """Served by the demo server, the page may connect to its own origin and loopback servers only (connect-src)."""
    open_explorer(page, f"{demo_server.url}/?autoconnect=0")
    page.get_by_test_id("server-url").fill("http://mcp.example.invalid/mcp")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-error")).to_contain_text("Content-Security-Policy", timeout=CALL)


def _old_server(route: Route) -> None:
    """A server that answers discover with 400 and initialize with a protocol version nobody speaks."""
    body = json.loads(route.request.post_data or "{}")
    if route.request.method != "POST" or body.get("method") != "initialize":
        route.fulfill(status=400, body="Bad Request")
        return
    result = {"protocolVersion": "1999-01-01", "capabilities": {}, "serverInfo": {"name": "old", "version": "0"}}
    route.fulfill(
        status=200,
        content_type="application/json",
        body=json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result}),
    )


def test_connection_errors_are_clear_and_cross_origin_works(page: Page, demo_server, static_site: str) -> None:  # type: ignore[no-untyped-def]
    page.route("**/gone/mcp", lambda route: route.fulfill(status=404, body="Not Found"))
    page.route("**/old/mcp", _old_server)
    open_explorer(page, f"{static_site}/")
    # the automatic attempt at the page's own origin (a static server) fails quietly: the in-browser server instead
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("connection-note")).to_contain_text("No MCP server answered at this page's origin")
    expect(page.get_by_test_id("connection-error")).to_be_hidden()
    page.get_by_test_id("disconnect-button").click()
    page.get_by_test_id("transport-select").select_option("http-sse")
    connect = page.get_by_test_id("connect-button")
    error = page.get_by_test_id("connection-error")

    # another origin without CORS: the static server under its other name
    page.get_by_test_id("server-url").fill(static_site.replace("127.0.0.1", "localhost"))
    connect.click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "error", timeout=CALL)
    expect(error).to_contain_text("Blocked by CORS")
    expect(error).to_contain_text("Access-Control-Allow-Origin")

    # nothing at that path: 404
    page.get_by_test_id("server-url").fill(f"{static_site}/gone/mcp")
    connect.click()
    expect(error).to_contain_text("HTTP 404", timeout=CALL)
    expect(error).to_contain_text("check the URL")

    # no protocol version in common
    page.get_by_test_id("server-url").fill(f"{static_site}/old/mcp")
    connect.click()
    expect(error).to_contain_text("No protocol version in common", timeout=CALL)
    expect(error).to_contain_text("1999-01-01")

    # not a URL
    page.get_by_test_id("server-url").fill("127.0.0.1:1")
    connect.click()
    expect(page.get_by_test_id("connection-error")).to_contain_text("must look like http://host:port")

    # the demo server from another origin: CORS done right, it works
    page.get_by_test_id("server-url").fill(demo_server.url)
    connect.click()
    expect_connected(page)


def test_forms_json_editor_and_every_result_kind(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)

    # required fields are checked before calling
    page.get_by_test_id("tool-item-calculate").click()
    page.get_by_test_id("field-b").fill("1")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("field-error-a")).to_have_text("required")
    expect(page.get_by_test_id("tool-result")).to_have_count(0)

    # defaults prefill the form (integer fields)
    page.get_by_test_id("tool-item-long_running").click()
    expect(page.get_by_test_id("field-steps")).to_have_value("10")
    expect(page.get_by_test_id("field-delay_ms")).to_have_value("200")

    # nested object through a $ref
    page.get_by_test_id("tool-item-json_schema_2020_12_tool").click()
    page.get_by_test_id("field-name").fill("Ada")
    page.get_by_test_id("field-address.city").fill("London")
    page.get_by_test_id("call-button").click()
    expect(tool_result(page)).to_contain_text('Received: {"name": "Ada", "address": {"city": "London"}}', timeout=CALL)

    # the JSON editor: starts from the form's values, rejects bad JSON
    page.get_by_test_id("tool-item-echo").click()
    page.get_by_test_id("field-message").fill("from the form")
    page.get_by_test_id("form-mode-toggle").click()
    editor = page.get_by_test_id("json-editor")
    expect(editor).to_have_value('{\n  "message": "from the form"\n}')
    editor.fill("{oops")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("json-error")).to_contain_text("invalid JSON")
    editor.fill('{"message": "from JSON"}')
    page.get_by_test_id("call-button").click()
    expect(tool_result(page)).to_contain_text("from JSON", timeout=CALL)

    call_tool(page, "show_image")
    image = tool_result(page).locator('[data-kind="image"] img')
    expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"), timeout=CALL)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 8

    call_tool(page, "play_audio")
    expect(tool_result(page).locator('[data-kind="audio"] audio')).to_have_attribute(
        "src", re.compile(r"^data:audio/wav;base64,"), timeout=CALL
    )

    call_tool(page, "embed_resource")
    expect(tool_result(page).locator('[data-kind="resource"]')).to_contain_text("demo://readme", timeout=CALL)
    expect(tool_result(page)).to_contain_text("# pyodide-transport demo server")

    call_tool(page, "test_multiple_content_types")
    blocks = tool_result(page).get_by_test_id("result-block")
    expect(blocks).to_have_count(3, timeout=CALL)
    expect(blocks.nth(2)).to_have_attribute("data-kind", "json")

    call_tool(page, "test_error_handling")
    expect(tool_result(page)).to_have_attribute("data-state", "error", timeout=CALL)
    expect(page.get_by_test_id("result-status")).to_have_text("Tool error (isError)")
    expect(tool_result(page)).to_contain_text("intentionally returns an error")

    call_tool(page, "link_resource")
    link = tool_result(page).locator('[data-kind="resource_link"]')
    expect(link).to_contain_text("demo://readme", timeout=CALL)
    link.get_by_test_id("resource-link-read").click()
    expect(page.get_by_test_id("pane-resources")).to_be_visible()
    expect(page.get_by_test_id("resource-content")).to_contain_text("# pyodide-transport demo server", timeout=CALL)


def test_progress_cancel_log_and_trace(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)

    page.get_by_test_id("tool-item-long_running").click()
    page.get_by_test_id("field-steps").fill("200")
    page.get_by_test_id("field-delay_ms").fill("100")
    page.get_by_test_id("call-button").click()
    bar = page.get_by_test_id("progress-bar")
    expect(page.get_by_test_id("progress-text")).to_contain_text(re.compile(r"^\d+ / 200 · step"), timeout=CALL)
    expect(bar).to_have_attribute("max", "200")
    screenshot(page, "explorer-progress")
    page.get_by_test_id("cancel-button").click()
    expect(tool_result(page)).to_have_attribute("data-state", "cancelled", timeout=CALL)
    expect(page.get_by_test_id("call-button")).to_be_enabled()

    # log messages at every level, then only errors
    page.get_by_test_id("tab-log").click()
    page.get_by_test_id("log-level").select_option("debug")
    call_tool(page, "log_messages")
    expect(tool_result(page)).to_contain_text("sent 4 log messages", timeout=CALL)
    page.get_by_test_id("tab-log").click()
    entries = page.get_by_test_id("log-entry")
    for level in ("debug", "info", "warning", "error"):
        expect(entries.filter(has_text="log message").and_(page.locator(f'[data-level="{level}"]'))).to_have_count(
            1, timeout=CALL
        )
    page.get_by_test_id("log-clear").click()
    expect(entries).to_have_count(0)
    page.get_by_test_id("log-level").select_option("error")
    call_tool(page, "log_messages")
    expect(tool_result(page)).to_contain_text("sent 4 log messages", timeout=CALL)
    page.get_by_test_id("tab-log").click()
    expect(entries.filter(has_text="log message")).to_have_count(1)
    expect(entries.first).to_have_attribute("data-level", "error")

    # the trace: both directions, durations on responses, the cancellation, expandable bodies
    page.get_by_test_id("tab-trace").click()
    trace = page.get_by_test_id("trace-entry")
    expect(trace.first).to_be_visible()
    expect(
        page.locator('[data-testid="trace-entry"][data-direction="out"][data-method="tools/call"]').first
    ).to_be_visible()
    response = page.locator('[data-testid="trace-entry"][data-direction="in"][data-kind="response"]').first
    expect(response.get_by_test_id("trace-duration")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    cancelled = page.locator('[data-testid="trace-entry"][data-method="notifications/cancelled"]')
    expect(cancelled).to_have_count(1)
    expect(page.locator('[data-testid="trace-entry"][data-method="notifications/progress"]').first).to_be_attached()
    first = trace.first
    expect(first.get_by_test_id("trace-body")).to_be_hidden()
    first.locator("summary").click()
    expect(first.get_by_test_id("trace-body")).to_be_visible()
    expect(first.get_by_test_id("trace-body")).to_contain_text('"jsonrpc": "2.0"')
    screenshot(page, "explorer-trace")


def test_resources_templates_subscriptions_and_prompts(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)
    page.get_by_test_id("tab-resources").click()

    page.get_by_test_id("resource-item-demo://readme").click()
    expect(page.get_by_test_id("resource-content")).to_contain_text("# pyodide-transport demo server", timeout=CALL)
    page.get_by_test_id("resource-item-test://static-binary").click()
    expect(page.get_by_test_id("resource-content").locator("img")).to_have_attribute(
        "src", re.compile(r"^data:image/png;base64,"), timeout=CALL
    )

    page.get_by_test_id("template-item-greeting").click()
    page.get_by_test_id("template-var-name").fill("Ada")
    expect(page.get_by_test_id("template-preview")).to_have_text("demo://greeting/Ada")
    page.get_by_test_id("template-read").click()
    expect(page.get_by_test_id("resource-content")).to_contain_text("Hello, Ada!", timeout=CALL)

    page.get_by_test_id("resource-item-demo://counter").click()
    content = page.get_by_test_id("resource-content")
    expect(content).to_contain_text('"value"', timeout=CALL)
    first = content.inner_text()
    page.get_by_test_id("subscribe-button").click()
    expect(page.get_by_test_id("subscribe-button")).to_have_text("Unsubscribe", timeout=CALL)
    live = page.get_by_test_id("resource-live")
    expect(live).to_have_text(re.compile(r"live · [2-9]\d* updates"), timeout=CALL)  # live updates arrive
    expect(content).not_to_have_text(first)
    page.get_by_test_id("subscribe-button").click()
    expect(page.get_by_test_id("subscribe-button")).to_have_text("Subscribe to updates", timeout=CALL)
    expect(live).to_be_hidden()

    page.get_by_test_id("tab-prompts").click()
    page.get_by_test_id("prompt-item-code_review").click()
    page.get_by_test_id("prompt-get").click()
    expect(page.get_by_test_id("prompt-arg-error-code")).to_have_text("required")
    page.get_by_test_id("prompt-arg-code").fill("print('hi')")
    page.get_by_test_id("prompt-arg-language").fill("py")  # the server's completions fill the field's list
    options = page.get_by_test_id("prompt-complete-language").locator("option")
    expect(options.first).to_have_attribute("value", "python", timeout=CALL)
    page.get_by_test_id("prompt-arg-language").fill("python")
    page.get_by_test_id("prompt-get").click()
    message = page.get_by_test_id("prompt-message")
    expect(message).to_have_attribute("data-role", "user", timeout=CALL)
    expect(message).to_contain_text("Review this python code:")
    expect(message).to_contain_text("print('hi')")
    page.get_by_test_id("prompt-item-test_prompt_with_image").click()
    page.get_by_test_id("prompt-get").click()
    expect(page.get_by_test_id("prompt-message").first.locator("img")).to_have_attribute(
        "src", re.compile(r"^data:image/png;base64,"), timeout=CALL
    )


def test_sampling_and_elicitation_ask_the_user(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)

    page.get_by_test_id("tool-item-ask_user").click()
    page.get_by_test_id("call-button").click()
    dialog = page.get_by_test_id("input-request")
    expect(dialog).to_be_visible(timeout=CALL)
    expect(page.get_by_test_id("elicitation-message")).to_have_text("Tell me about yourself")
    expect(page.get_by_test_id("elicit-colour")).to_have_value("2")  # the schema's default, blue
    page.get_by_test_id("elicit-accept").click()
    expect(page.get_by_test_id("elicit-error-name")).to_have_text("required")
    page.get_by_test_id("elicit-name").fill("Grace")
    page.get_by_test_id("elicit-accept").click()
    expect(dialog).to_be_hidden()
    expect(tool_result(page)).to_contain_text("Hello Grace, you like blue.", timeout=CALL)

    page.get_by_test_id("call-button").click()
    expect(dialog).to_be_visible(timeout=CALL)
    page.get_by_test_id("elicit-decline").click()
    expect(tool_result(page)).to_contain_text("The user chose to decline.", timeout=CALL)

    page.get_by_test_id("tool-item-ask_llm").click()
    page.get_by_test_id("field-question").fill("What is 6 times 7?")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("sampling-message")).to_contain_text("user: What is 6 times 7?", timeout=CALL)
    page.get_by_test_id("sampling-reply").fill("42")
    page.get_by_test_id("sampling-send").click()
    expect(tool_result(page)).to_contain_text("LLM (human (explorer)) says: 42", timeout=CALL)


def test_schemas_are_kept_and_param_headers_show_in_the_trace(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    open_explorer(page, f"{demo_server.url}/")
    expect_connected(page)

    # a schema's constraints beyond its fields are shown as the server sent them (SEP-2106)
    page.get_by_test_id("tool-item-json_schema_2020_12_tool").click()
    notes = page.get_by_test_id("schema-notes")
    expect(notes).to_contain_text('allOf: [{"anyOf":[{"required":["phone"]},{"required":["email"]}]}]')
    expect(notes).to_contain_text('then: {"required":["phone"]}')

    # an x-mcp-header argument travels in its Mcp-Param-* header too (SEP-2243), and the trace shows it
    page.get_by_test_id("tool-item-test_param_headers").click()
    expect(page.get_by_test_id("field-header")).to_have_text("also sent as the Mcp-Param-Region header")
    page.get_by_test_id("field-region").fill("eu west 1")
    page.get_by_test_id("call-button").click()
    expect(tool_result(page)).to_contain_text("region: eu west 1", timeout=CALL)
    page.get_by_test_id("tab-trace").click()
    sent = page.locator('[data-testid="trace-entry"][data-direction="out"][data-method="tools/call"]').last
    sent.locator("summary").click()
    expect(sent.get_by_test_id("trace-headers")).to_have_text("Mcp-Param-Region: eu west 1")
    screenshot(page, "explorer-param-headers")

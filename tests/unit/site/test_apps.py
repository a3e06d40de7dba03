"""The MCP Apps host protocol (ptsite.apps): states, ordering, visibility, errors, teardown."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from ptsite.apps import (
    APP_MIME_TYPE,
    HOST_PROTOCOL_VERSION,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REFUSED,
    TRANSITIONS,
    AppHost,
    AppResource,
    CallTool,
    Closed,
    Log,
    OfferLink,
    PostMessage,
    ReadResource,
    Resize,
    Show,
    app_resource,
    app_tools,
    frame_url,
    resource_uri,
    sandbox_from_query,
    sandbox_origin,
    sandbox_problem,
    visibility,
)

URI = "ui://demo/calculator-history"
CHART = {"name": "calculator_history", "inputSchema": {"type": "object"}, "_meta": {"ui": {"resourceUri": URI}}}
CLEAR = {"name": "clear", "inputSchema": {}, "_meta": {"ui": {"resourceUri": URI, "visibility": ["app"]}}}
MODEL_ONLY = {"name": "text", "inputSchema": {}, "_meta": {"ui": {"visibility": ["model"]}}}
PLAIN = {"name": "calculate", "inputSchema": {}}
TOOLS = {t["name"]: t for t in (CHART, CLEAR, MODEL_ONLY, PLAIN)}


def host(**overrides: Any) -> AppHost:
    options: dict[str, Any] = {
        "tool": CHART,
        "arguments": {"title": "T"},
        "resource": AppResource(URI, "<!doctype html><p>app</p>", {"connectDomains": []}),
        "server_tools": TOOLS,
        "host_info": {"name": "explorer", "version": "1"},
        "max_height": 500,
    }
    options.update(overrides)
    return AppHost(**options)


def posted(actions: list[Any]) -> list[dict[str, Any]]:
    return [a.message for a in actions if isinstance(a, PostMessage)]


def ready_host(**overrides: Any) -> AppHost:
    h = host(**overrides)
    h.feed({"jsonrpc": "2.0", "method": "ui/notifications/sandbox-proxy-ready", "params": {}})
    h.feed({"jsonrpc": "2.0", "id": 1, "method": "ui/initialize", "params": {"appInfo": {"name": "a"}}})
    h.feed({"jsonrpc": "2.0", "method": "ui/notifications/initialized"})
    h.drain()
    return h


def test_tool_metadata() -> None:
    flat = {"name": "old", "_meta": {"ui/resourceUri": "ui://x/old"}}
    assert resource_uri(CHART) == URI and resource_uri(flat) == "ui://x/old"
    assert (
        resource_uri(PLAIN) is None
        and resource_uri({"name": "w", "_meta": {"ui": {"resourceUri": "https://x"}}}) is None
    )
    assert visibility(PLAIN) == ["model", "app"] and visibility(CLEAR) == ["app"]
    assert [t["name"] for t in app_tools([CHART, CLEAR, PLAIN, flat])] == ["calculator_history", "old"]


def test_app_resource_checks_the_mime_type_and_reads_meta() -> None:
    meta = {"ui": {"csp": {"connectDomains": []}, "prefersBorder": True}}
    got = app_resource(URI, {"contents": [{"uri": URI, "mimeType": APP_MIME_TYPE, "text": "<p>", "_meta": meta}]})
    assert got.html == "<p>" and got.csp == {"connectDomains": []} and got.prefers_border is True
    blob = base64.b64encode(b"<b>hi</b>").decode()
    assert app_resource(URI, {"contents": [{"uri": URI, "mimeType": APP_MIME_TYPE, "blob": blob}]}).html == "<b>hi</b>"
    assert app_resource(URI, {"contents": [{"uri": URI, "mimeType": APP_MIME_TYPE, "text": ""}]}).csp is None
    with pytest.raises(ValueError, match="is not text/html;profile=mcp-app"):
        app_resource(URI, {"contents": [{"uri": URI, "mimeType": "text/html", "text": "<p>"}]})
    with pytest.raises(ValueError, match="no contents"):
        app_resource(URI, {"contents": []})


def test_the_lifecycle_in_order() -> None:
    h = host()
    assert h.state == "waiting-proxy"
    h.tool_result({"content": [{"type": "text", "text": "r"}], "structuredContent": {"count": 0}})
    assert h.drain() == [], "nothing goes to the app before it is initialized"
    h.feed({"jsonrpc": "2.0", "method": "ui/notifications/sandbox-proxy-ready", "params": {}})
    [ready] = posted(h.drain())
    assert ready["method"] == "ui/notifications/sandbox-resource-ready"
    assert ready["params"]["html"].startswith("<!doctype") and ready["params"]["csp"] == {"connectDomains": []}
    assert h.state == "resource-sent"
    h.feed({"jsonrpc": "2.0", "id": 1, "method": "ui/initialize", "params": {"protocolVersion": HOST_PROTOCOL_VERSION}})
    [answer] = posted(h.drain())
    result = answer["result"]
    assert answer["id"] == 1 and result["protocolVersion"] == "2026-01-26"
    assert result["hostInfo"]["name"] == "explorer"
    assert set(result["hostCapabilities"]) >= {"serverTools", "serverResources", "logging", "openLinks"}
    context = result["hostContext"]
    assert context["toolInfo"]["tool"]["name"] == "calculator_history" and context["displayMode"] == "inline"
    assert context["containerDimensions"] == {"maxHeight": 500}
    assert h.state == "initializing"
    h.feed({"jsonrpc": "2.0", "method": "ui/notifications/initialized", "params": {}})
    sent = posted(h.drain())
    assert [m["method"] for m in sent] == ["ui/notifications/tool-input", "ui/notifications/tool-result"]
    assert sent[0]["params"] == {"arguments": {"title": "T"}} and sent[1]["params"]["structuredContent"] == {"count": 0}
    assert h.state == "ready"
    h.tool_result({"content": []})
    assert h.drain() == [], "the result goes once"


def test_a_result_after_initialized_and_a_cancellation() -> None:
    h = ready_host()
    h.tool_cancelled("stopped by the user")
    [note] = posted(h.drain())
    assert note == {
        "jsonrpc": "2.0",
        "method": "ui/notifications/tool-cancelled",
        "params": {"reason": "stopped by the user"},
    }


def test_every_state_and_event_is_in_the_table() -> None:
    assert set(TRANSITIONS) == {"waiting-proxy", "resource-sent", "initializing", "ready", "tearing-down", "closed"}
    assert all(after in TRANSITIONS for row in TRANSITIONS.values() for after in row.values())


def test_a_second_initialize_is_refused() -> None:
    h = ready_host()
    h.feed({"jsonrpc": "2.0", "id": 9, "method": "ui/initialize", "params": {}})
    [answer] = posted(h.drain())
    assert answer["error"]["code"] == INVALID_REQUEST


def test_requests_before_initialize_are_refused() -> None:
    h = host()
    h.feed({"jsonrpc": "2.0", "method": "ui/notifications/sandbox-proxy-ready"})
    h.drain()
    h.feed({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "calculate"}})
    [answer] = posted(h.drain())
    assert "ui/initialize first" in answer["error"]["message"]


def test_tools_call_honours_visibility_and_the_server() -> None:
    h = ready_host()
    h.feed({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "calculate", "arguments": {"a": 1}}})
    actions = h.drain()
    assert CallTool(3, "calculate", {"a": 1}) in actions
    assert any(isinstance(a, Log) and "tools/call calculate" in a.text for a in actions), "audited in the log"
    h.call_done(3, result={"content": [], "structuredContent": {"result": 5}})
    assert posted(h.drain()) == [
        {"jsonrpc": "2.0", "id": 3, "result": {"content": [], "structuredContent": {"result": 5}}}
    ]
    h.feed({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "clear"}})
    assert CallTool(4, "clear", {}) in h.drain(), "app-only tools are callable by the app"
    h.feed({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "text"}})
    [refused] = posted(h.drain())
    assert refused["error"]["code"] == REFUSED and "may not be called by apps" in refused["error"]["message"]
    h.feed({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "elsewhere"}})
    [refused] = posted(h.drain())
    assert "not on this server" in refused["error"]["message"]
    h.feed({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "calculate", "arguments": [1]}})
    assert "must be an object" in posted(h.drain())[0]["error"]["message"]
    h.call_done(8, error="The server refused the call: boom")
    assert posted(h.drain())[0]["error"] == {"code": REFUSED, "message": "The server refused the call: boom"}


def test_resources_read_ping_and_unknown_methods() -> None:
    h = ready_host()
    h.feed({"jsonrpc": "2.0", "id": "r", "method": "resources/read", "params": {"uri": "demo://readme"}})
    assert ReadResource("r", "demo://readme") in h.drain()
    h.feed({"jsonrpc": "2.0", "id": 10, "method": "ping"})
    assert posted(h.drain()) == [{"jsonrpc": "2.0", "id": 10, "result": {}}]
    h.feed({"jsonrpc": "2.0", "id": 11, "method": "sampling/createMessage", "params": {}})
    assert posted(h.drain())[0]["error"]["code"] == METHOD_NOT_FOUND
    h.feed({"jsonrpc": "2.0", "id": 12, "method": "ui/request-display-mode", "params": {"mode": "fullscreen"}})
    assert posted(h.drain())[0]["result"] == {"mode": "inline"}


def test_logs_size_messages_and_context() -> None:
    h = ready_host()
    h.feed(
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "logger": "c", "data": "hi"}}
    )
    assert h.drain() == [Log("info", "app:c", "hi")]
    h.feed({"jsonrpc": "2.0", "method": "ui/notifications/size-changed", "params": {"width": 300.2, "height": 900}})
    assert h.drain() == [Resize(301, 500)], "height clamped to maxHeight"
    h.feed({"jsonrpc": "2.0", "method": "ui/notifications/size-changed", "params": {"height": "tall"}})
    assert h.drain() == [Resize(None, None)]
    h.feed(
        {
            "jsonrpc": "2.0",
            "id": 20,
            "method": "ui/message",
            "params": {"role": "user", "content": {"type": "text", "text": "x"}},
        }
    )
    actions = h.drain()
    assert any(isinstance(a, Show) and a.kind == "message" and '"text": "x"' in a.text for a in actions)
    assert posted(actions) == [{"jsonrpc": "2.0", "id": 20, "result": {}}]
    h.feed({"jsonrpc": "2.0", "id": 21, "method": "ui/update-model-context", "params": {"structuredContent": {"a": 1}}})
    actions = h.drain()
    assert (
        any(isinstance(a, Show) and a.kind == "model-context" for a in actions) and posted(actions)[0]["result"] == {}
    )


def test_open_link_waits_for_the_user() -> None:
    h = ready_host()
    h.feed({"jsonrpc": "2.0", "id": 30, "method": "ui/open-link", "params": {"url": "javascript:alert(1)"}})
    assert posted(h.drain())[0]["error"]["message"] == "Invalid URL"
    h.feed({"jsonrpc": "2.0", "id": 31, "method": "ui/open-link", "params": {"url": "https://example.invalid/a"}})
    actions = h.drain()
    assert OfferLink(31, "https://example.invalid/a") in actions and posted(actions) == []
    h.link_decided(31, opened=False)
    assert posted(h.drain())[0]["error"]["message"] == "Link opening denied by user"
    h.feed({"jsonrpc": "2.0", "id": 32, "method": "ui/open-link", "params": {"url": "http://127.0.0.1:1/"}})
    h.drain()
    h.link_decided(32, opened=True)
    assert posted(h.drain()) == [{"jsonrpc": "2.0", "id": 32, "result": {}}]
    h.link_decided(32, opened=True)
    assert h.drain() == [], "answered once"


def test_malformed_messages_are_dropped_and_reported_once() -> None:
    h = ready_host()
    for bad in (
        "text",
        {"jsonrpc": "1.0"},
        {"jsonrpc": "2.0"},
        {"jsonrpc": "2.0", "method": 5},
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
    ):
        h.feed(bad)
    actions = h.drain()
    assert len(actions) == 1 and isinstance(actions[0], Log) and actions[0].level == "warning"
    assert h.dropped == 5 and h.state == "ready"


def test_teardown_waits_for_the_answer() -> None:
    h = ready_host()
    h.teardown("closed by the user")
    [request] = posted(h.drain())
    assert request["method"] == "ui/resource-teardown" and request["params"] == {"reason": "closed by the user"}
    assert h.state == "tearing-down"
    h.feed({"jsonrpc": "2.0", "id": 40, "method": "tools/call", "params": {"name": "calculate"}})
    assert "being closed" in posted(h.drain())[0]["error"]["message"]
    h.feed({"jsonrpc": "2.0", "id": request["id"], "result": {}})
    assert h.drain() == [Closed("closed")] and h.state == "closed"
    h.feed({"jsonrpc": "2.0", "id": 41, "method": "ping"})
    h.call_done(40, result={})
    assert h.drain() == [], "a closed app hears nothing"


def test_teardown_timeout_and_early_teardown() -> None:
    h = ready_host()
    h.teardown()
    h.drain()
    h.teardown_timeout()
    actions = h.drain()
    assert actions[-1] == Closed("timeout") and h.state == "closed"
    early = host()
    early.teardown("gone")
    assert early.drain() == [Closed("gone")], "an app that never initialized is removed at once"


def test_the_sandbox_address() -> None:
    assert sandbox_from_query("?server=x&sandbox=http%3A%2F%2F127.0.0.1%3A9%2Fsandbox.html") == (
        "http://127.0.0.1:9/sandbox.html"
    )
    assert sandbox_from_query("?sandbox=javascript:alert(1)") is None and sandbox_from_query("") is None
    page = "http://127.0.0.1:8000"
    assert sandbox_problem("http://127.0.0.1:9/sandbox.html", page) is None
    assert "another origin" in (sandbox_problem("http://127.0.0.1:8000/sandbox/sandbox.html", page) or "")
    assert "apps/sandbox.json" in (sandbox_problem(None, page) or "")
    assert "not an http(s) URL" in (sandbox_problem("data:text/html,x", page) or "")
    assert sandbox_origin("http://127.0.0.1:9/sandbox.html?x=1") == "http://127.0.0.1:9"
    url = frame_url("http://127.0.0.1:9/sandbox.html", {"connectDomains": []}, page)
    assert url == (
        "http://127.0.0.1:9/sandbox.html?parent=http%3A%2F%2F127.0.0.1%3A8000&csp=%7B%22connectDomains%22%3A%5B%5D%7D"
    )
    assert (
        frame_url("http://h:1/s.html?v=2", None, page) == "http://h:1/s.html?v=2&parent=http%3A%2F%2F127.0.0.1%3A8000"
    )

"""The MCP Apps sandbox proxy (server_demo.sandbox), the demo's app, and /apps/sandbox.json."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from core_client import MemoryClient

from pyodide_transport.apps import DEFAULT_CSP
from pyodide_transport.errors import RemoteProtocolError
from server_demo.__main__ import parse_args
from server_demo.app import AppConfig, create_app, sandbox_url
from server_demo.demo import APP_MIME_TYPE, CALCULATOR_APP_URI, HISTORY_LIMIT
from server_demo.sandbox import create_sandbox_app, parse_csp_query


def test_the_query_parameter() -> None:
    assert parse_csp_query(None) is None and parse_csp_query("") is None and parse_csp_query("null") is None
    assert parse_csp_query('{"connectDomains":["http://127.0.0.1:9"]}') == {"connectDomains": ["http://127.0.0.1:9"]}
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        parse_csp_query("{nope")


async def test_the_sandbox_app_sends_the_csp_header() -> None:
    app = create_sandbox_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:9") as http:
        plain = await http.get("/sandbox.html")
        assert plain.status_code == 200 and "sandbox.js" in plain.text
        assert plain.headers["content-security-policy"] == DEFAULT_CSP
        assert plain.headers["x-content-type-options"] == "nosniff"
        declared = quote(json.dumps({"connectDomains": ["http://127.0.0.1:7"]}))
        got = await http.get(f"/sandbox.html?csp={declared}&parent=http://127.0.0.1:8")
        assert "connect-src 'self' http://127.0.0.1:7" in got.headers["content-security-policy"]
        bad = await http.get("/sandbox.html?csp=" + quote('{"connectDomains":["x; script-src *"]}'))
        assert bad.status_code == 400 and "is not an origin" in bad.text
        assert "content-security-policy" not in bad.headers
        script = await http.get("/sandbox.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert "sandbox-proxy-ready" in script.text


async def test_the_main_app_says_where_the_sandbox_is() -> None:
    for port, expected in ((4321, "http://127.0.0.1:4321/sandbox.html"), (None, None)):
        app = create_app(config=AppConfig(oauth=None, sandbox_port=port))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http:
            answer = await http.get("/apps/sandbox.json")
            assert answer.status_code == 200 and answer.json() == {"url": expected}
    assert sandbox_url("localhost:8000", 5) == "http://localhost:5/sandbox.html"
    assert sandbox_url("[::1]:8000", 5) == "http://[::1]:5/sandbox.html"
    assert sandbox_url("bad host\r\n", 5) == "http://127.0.0.1:5/sandbox.html"


def test_the_cli_flags() -> None:
    args = parse_args([])
    assert args.sandbox_port == 0 and args.no_sandbox is False
    args = parse_args(["--sandbox-port", "9123", "--no-sandbox"])
    assert args.sandbox_port == 9123 and args.no_sandbox is True


async def test_the_demo_app_tools_and_resource(client: MemoryClient) -> None:
    await client.initialize()
    tools = {t["name"]: t for t in (await client.result("tools/list"))["tools"]}
    assert tools["calculator_history"]["_meta"]["ui"] == {
        "resourceUri": CALCULATOR_APP_URI,
        "visibility": ["model", "app"],
    }
    assert tools["calculator_history_clear"]["_meta"]["ui"]["visibility"] == ["app"]
    assert tools["calculator_history_text"]["_meta"]["ui"]["visibility"] == ["model"]
    assert "_meta" not in tools["echo"]
    listed = {r["uri"]: r for r in (await client.result("resources/list"))["resources"]}
    assert listed[CALCULATOR_APP_URI]["mimeType"] == APP_MIME_TYPE
    [contents] = (await client.result("resources/read", {"uri": CALCULATOR_APP_URI}))["contents"]
    assert contents["mimeType"] == APP_MIME_TYPE and contents["text"].startswith("<!doctype html>")
    assert contents["_meta"]["ui"] == {"csp": {"connectDomains": [], "resourceDomains": []}, "prefersBorder": True}
    for needed in ("ui/initialize", "ui/notifications/initialized", "ui/notifications/size-changed", "ResizeObserver"):
        assert needed in contents["text"]
    assert "src=" not in contents["text"] and "href=" not in contents["text"], "self-contained"

    await client.result("tools/call", {"name": "calculate", "arguments": {"a": 2, "b": 3}})
    await client.result("tools/call", {"name": "calculate", "arguments": {"a": 6, "b": 2, "operation": "divide"}})
    history = await client.result("tools/call", {"name": "calculator_history", "arguments": {}})
    assert history["structuredContent"]["count"] == 2
    assert [h["expression"] for h in history["structuredContent"]["history"]] == ["2 + 3 = 5", "6 / 2 = 3.0"]
    assert "2 + 3 = 5" in history["content"][0]["text"]
    text = await client.result("tools/call", {"name": "calculator_history_text", "arguments": {}})
    assert "2 calculation(s)" in text["content"][0]["text"]
    cleared = await client.result("tools/call", {"name": "calculator_history_clear", "arguments": {}})
    assert cleared["structuredContent"] == {"history": [], "count": 0}
    for i in range(HISTORY_LIMIT + 5):
        await client.result("tools/call", {"name": "calculate", "arguments": {"a": i, "b": 0}})
    bounded = await client.result("tools/call", {"name": "calculator_history", "arguments": {}})
    assert bounded["structuredContent"]["count"] == HISTORY_LIMIT
    assert bounded["structuredContent"]["history"][0]["a"] == 5, "the oldest are dropped"

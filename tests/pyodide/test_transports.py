"""The transport suite inside real Pyodide (Node): JS ``fetch`` and ``WebSocket`` against the demo server.

The scenarios are ``transport_scenarios.py`` (shared with the CPython run in
``tests/unit/pyodide_transport/test_connection.py``); here they run over the
browser adapters of ``pyodide_transport._browser``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from node_runtime import NodePyodide

from devtools.ports import free_port
from devtools.servers import DemoServer
from tests.pyodide.transport_scenarios import HANDSHAKE, STACKS, SUITE

pytestmark = pytest.mark.pyodide

ENDPOINTS = ["/mcp", "/mcp/json", "/mcp/stateless", "/ws"]
ERAS = ["auto", HANDSHAKE]
PRELUDE = """
import asyncio, json, sys
import pyodide_transport
import tests.pyodide.transport_scenarios as S
"""


def endpoint_url(base: str, endpoint: str) -> str:
    return (base.replace("http://", "ws://") if endpoint == "/ws" else base) + endpoint


def run_scenario(pyodide: NodePyodide, name: str, url: str, era: str, **options: Any) -> Any:
    options_json = json.dumps(options)
    code = PRELUDE + (
        f"json.dumps(await S.{name}(pyodide_transport.connect, {url!r}, {era!r}, **json.loads({options_json!r})))"
    )
    return pyodide.run_json(code)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("scenario", list(SUITE))
def test_suite_in_pyodide(
    pyodide: NodePyodide, demo_server: Any, scenario: str, endpoint: str, era: str, stack: str
) -> None:
    url = endpoint_url(demo_server.url, endpoint)
    code = (
        PRELUDE
        + f"json.dumps(await S.run_stacked({scenario!r}, pyodide_transport.connect, {url!r}, {era!r}, {stack!r}))"
    )
    outcome = pyodide.run_json(code)
    if stack == "middleware":
        assert outcome["logged"]["out"] > 0 and outcome["logged"]["in"] > 0, outcome
    if scenario == "initialize":
        assert outcome["era"] == ("modern" if era == "auto" else "handshake")
        assert outcome["transport"] == ("websocket" if endpoint == "/ws" else "streamable-http")


@pytest.mark.parametrize("endpoint", ["/mcp", "/mcp/json"])
def test_session_expiry_in_pyodide(pyodide: NodePyodide, demo_server: Any, endpoint: str) -> None:
    outcome = run_scenario(pyodide, "session_expiry", demo_server.url + endpoint, HANDSHAKE)
    assert outcome["old"] != outcome["new"]


def test_sse_stream_closed_mid_response_resumes_in_pyodide(pyodide: NodePyodide, demo_server: Any) -> None:
    outcome = run_scenario(pyodide, "sse_resumption", demo_server.url + "/mcp", HANDSHAKE)
    assert outcome["resumptions"] >= 1 and outcome["last_event_id"]


def test_uses_the_browser_adapters(pyodide: NodePyodide, demo_server: Any) -> None:
    code = (
        PRELUDE
        + f"""
client = await pyodide_transport.connect({demo_server.url + "/mcp"!r}, protocol_version=S.HANDSHAKE)
t = client.transport
kind = type(t._http).__name__
await client.close()
json.dumps([kind, sys.platform])
"""
    )
    assert pyodide.run_json(code) == ["BrowserHTTPClient", "emscripten"]


def test_network_failure_names_cors_as_possible_cause_in_node(pyodide: NodePyodide) -> None:
    code = (
        PRELUDE
        + f"""
try:
    await pyodide_transport.connect("http://127.0.0.1:{free_port()}/mcp")
    out = "connected?!"
except pyodide_transport.NetworkError as exc:
    out = [type(exc).__name__, str(exc)]
json.dumps(out)
"""
    )
    kind, text = pyodide.run_json(code)
    assert kind == "NetworkError"  # Node has no page origin: not provably CORS
    assert "fetch failed" in text and "CORS may be the cause" in text and "Access-Control-Expose-Headers" in text


def test_websocket_open_close_100_times_leaks_no_proxies(pyodide: NodePyodide, demo_server: Any) -> None:
    url = endpoint_url(demo_server.url, "/ws")
    code = (
        PRELUDE
        + f"""
from pyodide_transport._browser import live_proxy_count, open_websocket
from pyodide_transport import WebSocketTransport
from pyodide_transport.messages import make_request
before = live_proxy_count()
peak = 0
for i in range(100):
    t = WebSocketTransport({url!r}, ping_interval=None)
    await t.connect()
    peak = max(peak, live_proxy_count())
    if i % 10 == 0:
        await t.send(make_request(1, "ping"))
        await t.receive()
    await t.close()
refused = 0
for i in range(5):  # failed opens release their listeners too
    try:
        await open_websocket("ws://127.0.0.1:9/ws", ["mcp"])
    except pyodide_transport.NetworkError:
        refused += 1
json.dumps([before, peak, live_proxy_count(), refused])
"""
    )
    before, peak, after, refused = pyodide.run_json(code)
    assert refused == 5
    assert peak == before + 4  # open, message, error, close listeners of the one live socket
    assert after == before == 0


def test_websocket_server_drop_reconnects_in_pyodide(pyodide: NodePyodide) -> None:
    first = DemoServer()
    port = first.port
    second = None
    try:
        start = (
            PRELUDE
            + f"""
from tests.pyodide import transport_state
client = await pyodide_transport.connect(
    "ws://127.0.0.1:{port}/ws", protocol_version=S.HANDSHAKE,
    reconnect_delay=0.2, max_reconnect_delay=0.5, max_reconnect_attempts=60,
)
transport_state.client = client
r = await client.call_tool("echo", {{"message": "before"}})
json.dumps([r.content[0].text, client.transport.subprotocol])
"""
        )
        assert pyodide.run_json(start) == ["before", "mcp"]
        first.stop()
        wait = (
            PRELUDE
            + """
from tests.pyodide import transport_state
t = transport_state.client.transport
for _ in range(500):
    if t.state != "open":
        break
    await asyncio.sleep(0.02)
t.state
"""
        )
        assert pyodide.run(wait) == "reconnecting"
        second = DemoServer(port=port)  # the new server takes the old port
        after = (
            PRELUDE
            + """
from tests.pyodide import transport_state
client = transport_state.client
r = await client.call_tool("echo", {"message": "after"})
out = [r.content[0].text, client.transport.reconnects, client.session_generation]
await client.close()
transport_state.client = None
json.dumps(out)
"""
        )
        assert pyodide.run_json(after) == ["after", 1, 1]
    finally:
        first.stop()
        if second is not None:
            second.stop()

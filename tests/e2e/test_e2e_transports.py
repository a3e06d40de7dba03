"""The browser transports in real Chromium: a page on one origin, MCP servers on others (CORS).

The page (``site/transport-test.html``) is served by a plain static server on
its own port, so every MCP request below is cross-origin: preflights, the
exposed ``Mcp-Session-Id`` and SSE all go through the browser's CORS rules.
A second demo server allows only ``http://localhost:*`` origins: the page's
requests to it must fail with a clear ``CORSError``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from devtools import DIST, ROOT
from devtools.chromium import LoopbackGuard
from devtools.servers import ServerProcess

pytestmark = pytest.mark.e2e

SCENARIOS = ROOT / "tests" / "pyodide" / "transport_scenarios.py"
HANDSHAKE = "2025-11-25"
RESTRICTED_APP = """
import sys, uvicorn
from server_demo.app import AppConfig, create_app
from server_demo.config import SecurityConfig
app = create_app(config=AppConfig(security=SecurityConfig(allowed_origins=("http://localhost:*",))))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture(scope="module")
def page_host() -> Iterator[ServerProcess]:
    """The static site on its own origin (no CSP, so the page may connect to other ports)."""
    with ServerProcess([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(DIST), "{port}"]) as host:
        yield host


@pytest.fixture(scope="module")
def restricted_server() -> Iterator[ServerProcess]:
    """A demo server that allows only http://localhost:* origins (not the page's 127.0.0.1)."""
    with ServerProcess([sys.executable, "-c", RESTRICTED_APP, "{port}"]) as server:
        yield server


@pytest.fixture(scope="module")
def transport_page(browser: Browser, page_host: ServerProcess) -> Iterator[Page]:
    """One booted page for the module, behind the loopback guard."""
    guard = LoopbackGuard()
    context = browser.new_context()
    guard.attach(context)
    page = context.new_page()
    page.goto(f"{page_host.url}/transport-test.html")
    page.wait_for_function("document.getElementById('status').textContent !== 'booting Python…'", timeout=90_000)
    assert page.text_content("#status") == "ready"
    source = SCENARIOS.read_text()
    install = "import sys, types\nm = types.ModuleType('transport_scenarios')\nsys.modules[m.__name__] = m\n"
    run(page, install + f"exec({source!r}, m.__dict__)")
    yield page
    guard.check()
    context.close()


def run(page: Page, code: str) -> Any:
    text = page.evaluate("code => window.runPython(code)", code)
    return None if text is None else json.loads(text) if text[:1] in '[{"' else text


PRELUDE = "import json, sys, asyncio\nimport pyodide_transport\nimport transport_scenarios as S\n"


def endpoint_url(base: str, endpoint: str) -> str:
    return (base.replace("http://", "ws://") if endpoint == "/ws" else base) + endpoint


@pytest.mark.parametrize("stack", ["bare", "middleware"])
@pytest.mark.parametrize("era", ["auto", HANDSHAKE])
@pytest.mark.parametrize("endpoint", ["/mcp", "/mcp/json", "/mcp/stateless", "/ws"])
@pytest.mark.parametrize("scenario", ["initialize", "tools", "progress", "logging", "cancellation", "resources"])
def test_key_scenarios_cross_origin(
    transport_page: Page, demo_server: Any, scenario: str, endpoint: str, era: str, stack: str
) -> None:
    url = endpoint_url(demo_server.url, endpoint)
    call = f"S.run_stacked({scenario!r}, pyodide_transport.connect, {url!r}, {era!r}, {stack!r})"
    outcome = run(transport_page, PRELUDE + f"json.dumps(await {call})")
    if stack == "middleware":
        assert outcome["logged"]["out"] > 0 and outcome["logged"]["in"] > 0, outcome
    if scenario == "initialize":
        assert outcome["era"] == ("modern" if era == "auto" else "handshake")


def test_session_id_is_exposed_and_session_expiry_recovers(transport_page: Page, demo_server: Any) -> None:
    url = demo_server.url + "/mcp"
    outcome = run(
        transport_page, PRELUDE + f"json.dumps(await S.session_expiry(pyodide_transport.connect, {url!r}, S.HANDSHAKE))"
    )
    assert outcome["old"] != outcome["new"]


def test_sse_stream_closed_mid_response_resumes(transport_page: Page, demo_server: Any) -> None:
    url = demo_server.url + "/mcp"
    outcome = run(
        transport_page, PRELUDE + f"json.dumps(await S.sse_resumption(pyodide_transport.connect, {url!r}, S.HANDSHAKE))"
    )
    assert outcome["resumptions"] >= 1


def test_cors_not_allowed_gives_a_clear_cors_error(transport_page: Page, restricted_server: ServerProcess) -> None:
    code = (
        PRELUDE
        + f"""
out = []
try:
    await pyodide_transport.connect({restricted_server.url + "/mcp"!r})
except pyodide_transport.CORSError as exc:
    out.append(str(exc))
try:
    await pyodide_transport.connect({endpoint_url(restricted_server.url, "/ws")!r}, max_reconnect_attempts=0)
except pyodide_transport.NetworkError as exc:
    out.append(type(exc).__name__ + ": " + str(exc))
json.dumps(out)
"""
    )
    http_error, ws_error = run(transport_page, code)
    assert "most likely CORS" in http_error
    assert "Access-Control-Expose-Headers: Mcp-Session-Id" in http_error
    assert "Failed to fetch" in http_error
    assert ws_error.startswith("NetworkError: could not open a WebSocket")
    assert "Origin" in ws_error


def test_same_server_works_when_its_origin_allows_the_page(transport_page: Page, demo_server: Any) -> None:
    """The control for the CORS case: same code, a server that allows 127.0.0.1 origins."""
    code = (
        PRELUDE
        + f"""
client = await pyodide_transport.connect({demo_server.url + "/mcp"!r}, protocol_version=S.HANDSHAKE)
sid = client.transport.session_id
r = await client.call_tool("echo", {{"message": "cross-origin"}})
await client.close()
json.dumps([bool(sid), r.content[0].text])
"""
    )
    assert run(transport_page, code) == [True, "cross-origin"]

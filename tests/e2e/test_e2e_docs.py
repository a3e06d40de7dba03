"""The docs pages: every snippet is editable and runs in the page against the live demo server."""

from __future__ import annotations

import pytest
from e2e_support import screenshot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

BOOT = 90_000
RUN = 60_000

# page -> what each snippet's output must contain, in order
EXPECTED = {
    "getting-started.html": [
        ["connected to pyodide-transport-demo", "calculate"],
        ["'result': 42", "is_error: True"],
        ["progress 4/4", "completed 4 steps", "cancelled: the server was told to stop"],
        ["# pyodide-transport demo server", "Hello, Ada!", "Review this python code", "sent 3 log messages"],
    ],
    "transports.html": [
        ["FetchTransport", "WebSocketTransport", "'hi'"],
        ["/mcp/stateless  era=handshake session id: None", "/mcp/json       era=handshake session id: "],
        ["FetchTransport negotiated"],
        ["resource metadata 200", "authorization server metadata 200", "token 200", "signed in", "granted mcp:tools"],
    ],
    "custom-transports.html": [
        ["server: tiny 1.0", "tools: ['shout']", "server: the client closed the connection"],
        ["is a Transport: True", "→ tools/call", "result: traced"],
        [
            "→ request tools/list",
            "tools: ",
            "refused: PolicyError",
            "still connected: True",
            "breaker closed → open",
            "ping 2: ",
            "ping 3: CircuitOpenError",
        ],
        ["result: for your eyes only", "on the wire: ['encrypted']", "plaintext on the wire: False"],
    ],
}


SIGNS_IN = {("transports.html", 4)}
"""Snippets that sign in: their Run click opens the consent page in a popup, which the test accepts."""


def run(page: Page, index: int, signs_in: bool = False) -> str:
    snippet = page.get_by_test_id(f"snippet-{index}")
    if signs_in:
        with page.expect_popup(timeout=RUN) as opened:
            snippet.get_by_test_id("snippet-run").click()
        opened.value.get_by_test_id("consent-allow").click()
    else:
        snippet.get_by_test_id("snippet-run").click()
    expect(snippet).to_have_attribute("data-state", "done", timeout=RUN)
    return snippet.get_by_test_id("snippet-output").inner_text()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_snippet_runs_against_the_demo_server(page: Page, demo_server, name: str) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(
        'window.__csp = []; document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.blockedURI));'
    )
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{demo_server.url}/{name}")
    expect(page.get_by_test_id("snippet-run").first).to_be_disabled()  # until Python is up
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    snippets = page.locator(".snippet")
    expect(snippets).to_have_count(len(EXPECTED[name]))
    for index, wanted in enumerate(EXPECTED[name], start=1):
        output = run(page, index, (name, index) in SIGNS_IN)
        for text in wanted:
            assert text in output, f"snippet {index} of {name}: {text!r} not in\n{output}"
    if name == "getting-started.html":
        page.get_by_test_id("snippet-2").scroll_into_view_if_needed()
        screenshot(page, "docs-getting-started-run")
    assert page.evaluate("window.__csp") == []


def test_snippets_are_editable_and_errors_are_shown(page: Page, demo_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{demo_server.url}/getting-started.html")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    snippet = page.get_by_test_id("snippet-1")
    code = snippet.get_by_test_id("snippet-code")
    code.fill(
        "from pyodide_transport import Client, FetchTransport\n"
        "async with Client(FetchTransport(f'{SERVER}/mcp/stateless')) as client:\n"
        "    result = await client.call_tool('echo', {'message': 'edited in the page'})\n"
        "    print(result.content[0].text)\n"
    )
    assert run(page, 1).strip() == "edited in the page"

    code.fill("x = 1\nprint('before')\nraise ValueError(f'bad value {x}')")
    snippet.get_by_test_id("snippet-run").click()
    expect(snippet).to_have_attribute("data-state", "failed", timeout=RUN)
    output = snippet.get_by_test_id("snippet-output")
    expect(output).to_contain_text("before")
    expect(output).to_contain_text("ValueError: bad value 1")
    expect(output).to_contain_text('File "<snippet>", line 3')

    code.fill("print(")
    code.press("Control+Enter")  # the keyboard shortcut runs it too
    expect(snippet).to_have_attribute("data-state", "failed", timeout=RUN)
    expect(output).to_contain_text("SyntaxError")

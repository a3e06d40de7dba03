"""The site from a plain static file server (``python -m http.server``): no server_demo process at all.

The explorer finds no MCP server at its origin and connects to the in-browser demo server (the
demo server's core in a Web Worker, over a MessagePort); tools, progress, cancellation, resources,
prompts, sampling and elicitation work there as they do over HTTP. The getting-started snippets run
against it and print what they print against the real server.
"""

from __future__ import annotations

import re

import pytest
from e2e_support import BOOT, open_explorer, screenshot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

CALL = 60_000  # the first call waits for the worker's own Pyodide to boot


def test_the_explorer_uses_the_in_browser_server_on_a_static_host(page: Page, static_site: str) -> None:
    open_explorer(page, f"{static_site}/index.html")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("transport-select")).to_have_value("in-browser")
    expect(page.get_by_test_id("connection-note")).to_contain_text("using the in-browser demo server")
    expect(page.get_by_test_id("endpoint-url")).to_have_text("worker:./server-worker.js")
    # started early by assets/prestart-worker.js (beside the page's own boot), then adopted, not started twice
    assert page.evaluate("globalThis.pyodideTransportWorkers && globalThis.pyodideTransportWorkers.size") == 0
    expect(page.get_by_test_id("server-name")).to_contain_text("pyodide-transport demo server")
    expect(page.get_by_test_id("gateway-row")).to_be_hidden()
    expect(page.get_by_test_id("tool-list")).to_contain_text("calculate", timeout=CALL)
    screenshot(page, "explorer-in-browser")

    page.get_by_test_id("tool-item-calculate").click()
    page.get_by_test_id("field-a").fill("6")
    page.get_by_test_id("field-b").fill("7")
    page.get_by_test_id("field-operation").select_option(label="multiply")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("result-structured")).to_contain_text('"result": 42', timeout=CALL)

    page.get_by_test_id("tool-item-long_running").click()
    page.get_by_test_id("field-steps").fill("200")
    page.get_by_test_id("field-delay_ms").fill("100")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("progress-text")).to_contain_text(re.compile(r"^\d+ / 200 · step"), timeout=CALL)
    page.get_by_test_id("cancel-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "cancelled", timeout=CALL)

    page.get_by_test_id("tool-item-ask_llm").click()
    page.get_by_test_id("field-question").fill("What is 6 times 7?")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("sampling-message")).to_contain_text("user: What is 6 times 7?", timeout=CALL)
    page.get_by_test_id("sampling-reply").fill("42")
    page.get_by_test_id("sampling-send").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text("says: 42", timeout=CALL)

    page.get_by_test_id("tab-resources").click()
    page.get_by_test_id("resource-item-demo://readme").click()
    expect(page.get_by_test_id("resource-content")).to_contain_text("# pyodide-transport demo server", timeout=CALL)
    page.get_by_test_id("resource-item-demo://counter").click()
    page.get_by_test_id("subscribe-button").click()
    expect(page.get_by_test_id("resource-live")).to_have_text(re.compile(r"live · [2-9]\d* updates"), timeout=CALL)
    page.get_by_test_id("subscribe-button").click()

    page.get_by_test_id("tab-prompts").click()
    page.get_by_test_id("prompt-item-code_review").click()
    page.get_by_test_id("prompt-arg-code").fill("print('hi')")
    page.get_by_test_id("prompt-arg-language").fill("python")
    page.get_by_test_id("prompt-get").click()
    expect(page.get_by_test_id("prompt-message")).to_contain_text("Review this python code:", timeout=CALL)


def _snippet_outputs(page: Page, url: str) -> list[str]:
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    outputs = []
    for index in range(1, page.locator(".snippet").count() + 1):
        snippet = page.get_by_test_id(f"snippet-{index}")
        snippet.get_by_test_id("snippet-run").click()
        expect(snippet).to_have_attribute("data-state", "done", timeout=CALL)
        outputs.append(snippet.get_by_test_id("snippet-output").inner_text())
    return outputs


def test_getting_started_snippets_print_what_they_print_against_the_real_server(
    page: Page,
    static_site: str,
    demo_server,  # type: ignore[no-untyped-def]
) -> None:
    real = _snippet_outputs(page, f"{demo_server.url}/getting-started.html")
    in_browser = _snippet_outputs(page, f"{static_site}/getting-started.html")
    expect(page.get_by_test_id("snippet-target").first).to_contain_text("the in-browser demo server")
    screenshot(page, "docs-getting-started-in-browser")
    assert len(in_browser) == len(real) == 4
    assert in_browser == real  # the same core behind both: the same output, line for line


def test_a_worker_that_fails_to_start_is_a_clear_error(page: Page, static_site: str) -> None:
    page.goto(f"{static_site}/getting-started.html")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    snippet = page.get_by_test_id("snippet-1")
    snippet.get_by_test_id("snippet-code").fill(
        "import pyodide_transport as pt\n"
        "try:\n"
        '    await pt.connect("worker:./no-such-worker.js", request_timeout=30)\n'
        "except Exception as exc:\n"
        "    print(type(exc).__name__, '-', exc)\n"
        "client = await pt.connect(MCP)  # the page's other worker is unaffected\n"
        "print((await client.call_tool('echo', {'message': 'still here'})).content[0].text)\n"
        "await client.close()\n"
    )
    snippet.get_by_test_id("snippet-run").click()
    expect(snippet).to_have_attribute("data-state", "done", timeout=CALL)
    output = snippet.get_by_test_id("snippet-output").inner_text()
    assert output.startswith("ConnectionClosedError - ") and "worker" in output, output
    assert output.rstrip().endswith("still here"), output

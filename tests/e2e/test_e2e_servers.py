"""Saved servers in Chromium: add, pick, rename, delete, an mcpServers file imported (a remote entry, a stdio
entry matched to a gateway upstream, one unmatched), connecting through each, copy as config, the era selector."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import BOOT, assert_axe_clean, expect_connected, open_explorer, screenshot
from playwright.sync_api import Page, expect

from devtools import ROOT
from devtools.servers import DemoServer

pytestmark = pytest.mark.e2e
STDIO = [sys.executable, "-m", "server_demo", "--stdio"]


@pytest.fixture(scope="module")
def gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo server whose --gateway file offers the demo server over stdio as ``ours-stdio``."""
    config: Path = tmp_path_factory.mktemp("servers") / "gateway.json"
    servers = {"ours-stdio": {"command": STDIO[0], "args": STDIO[1:], "cwd": str(ROOT)}}
    config.write_text(json.dumps({"mcpServers": servers}))
    server = DemoServer("--gateway", str(config), "--no-oauth")
    try:
        yield server.url
    finally:
        server.stop()


def _open(page: Page, base: str) -> None:
    open_explorer(page, f"{base}/index.html?server={base}&transport=http-sse&autoconnect=0", height=1100)


def _connect(page: Page) -> None:
    page.get_by_test_id("connect-button").click()
    expect_connected(page, tool="echo")


def _disconnect(page: Page) -> None:
    page.get_by_test_id("disconnect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "disconnected")


def _item(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="server-item"][data-name="{name}"]')


def test_servers_add_import_connect_copy_era(page: Page, gateway_server: str, tmp_path: Path) -> None:
    base = gateway_server
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    _open(page, base)
    notice = page.get_by_test_id("servers-notice")

    # Save the panel as a named server
    page.get_by_test_id("servers-name").fill("here")
    page.get_by_test_id("servers-add").click()
    expect(_item(page, "here")).to_contain_text(f"{base} · http-sse")

    # A bad mcpServers file is refused and changes nothing
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mcpServers": {"x": {"command": "run", "args": ["ok", 3]}}}))
    page.get_by_test_id("servers-import-file").set_input_files(str(bad))
    expect(notice).to_contain_text("mcpServers.x.args[1]")
    expect(notice).to_have_attribute("data-state", "error")
    expect(page.get_by_test_id("server-item")).to_have_count(1)

    # Import: a remote entry, a stdio entry the gateway serves, a stdio entry it does not
    file = tmp_path / "claude_desktop_config.json"
    file.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "remote": {"type": "streamable-http", "url": f"{base}/mcp"},
                    "ours": {"command": STDIO[0], "args": STDIO[1:], "env": {"SECRET": "do-not-send"}},
                    "missing": {"command": "npx", "args": ["-y", "some-mcp-server"]},
                }
            }
        )
    )
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.get_by_test_id("servers-import-file").set_input_files(str(file))
    expect(notice).to_contain_text("Imported 3 servers")
    expect(notice).to_contain_text("missing")
    assert not any("do-not-send" in url or "SECRET" in url for url in requests)
    expect(_item(page, "remote")).to_contain_text(f"{base}/mcp")
    expect(_item(page, "ours")).to_contain_text("gateway ours-stdio")
    expect(_item(page, "missing")).to_have_attribute("data-available", "false")
    missing_note = page.locator("li", has=_item(page, "missing")).get_by_test_id("server-note")
    expect(missing_note).to_contain_text("--gateway FILE", use_inner_text=False)
    screenshot(page, "servers-list")
    assert_axe_clean(page, ["[data-testid=servers-root]"])

    # The unmatched one cannot be used, and says why
    _item(page, "missing").click()
    expect(notice).to_contain_text("cannot be used")
    expect(notice).to_contain_text("--gateway FILE")

    # Remote, with the era forced to the handshake era
    _item(page, "remote").click()
    expect(page.get_by_test_id("server-url")).to_have_value(f"{base}/mcp")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "disconnected")
    page.get_by_test_id("era-select").select_option("handshake")
    _connect(page)
    expect(page.get_by_test_id("protocol-version")).to_have_text("2025-11-25 (handshake era)")
    _disconnect(page)
    page.get_by_test_id("era-select").select_option("2026-07-28")
    _connect(page)
    expect(page.get_by_test_id("protocol-version")).to_have_text("2026-07-28 (modern era)")
    _disconnect(page)
    # the advanced "Protocol version" wins over the era
    page.get_by_test_id("advanced-toggle").click()
    page.get_by_test_id("protocol-select").select_option("2025-06-18")
    _connect(page)
    expect(page.get_by_test_id("protocol-version")).to_have_text("2025-06-18 (handshake era)")
    _disconnect(page)
    page.get_by_test_id("protocol-select").select_option("")
    page.get_by_test_id("era-select").select_option("handshake")

    # The stdio entry through the gateway
    _item(page, "ours").click()
    expect(page.get_by_test_id("server-url")).to_have_value(f"{base}/gateway/ours-stdio/mcp")
    expect(page.get_by_test_id("era-select")).to_have_value("auto")
    _connect(page)
    expect(page.get_by_test_id("endpoint-url")).to_have_text(f"{base}/gateway/ours-stdio/mcp")
    expect(page.get_by_test_id("server-name")).to_contain_text("pyodide-transport demo server")

    # Copy as config: the original stdio entry
    page.get_by_test_id("servers-copy").click()
    expect(notice).to_contain_text("Copied")
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert copied == {
        "mcpServers": {"ours": {"command": STDIO[0], "args": STDIO[1:], "env": {"SECRET": "do-not-send"}}}
    }
    _disconnect(page)

    # The era is remembered per server
    _item(page, "remote").click()
    expect(page.get_by_test_id("era-select")).to_have_value("handshake")

    # Copy as config for a server typed into the panel; a refused clipboard shows the text instead
    page.get_by_test_id("server-url").fill(f"{base}/mcp/json")
    page.evaluate("() => { navigator.clipboard.writeText = () => Promise.reject(new Error('denied by test')); }")
    page.get_by_test_id("servers-copy").click()
    box = page.get_by_test_id("servers-config")
    expect(box).to_be_visible()
    assert json.loads(box.input_value()) == {
        "mcpServers": {re.sub(r"^http://", "", base): {"type": "streamable-http", "url": f"{base}/mcp/json"}}
    }
    expect(notice).to_contain_text("refused the clipboard")

    # Rename and delete; the list survives a reload
    _item(page, "here").click()
    page.get_by_test_id("servers-name").fill("home")
    page.get_by_test_id("servers-rename").click()
    expect(_item(page, "home")).to_be_visible()
    expect(_item(page, "here")).to_have_count(0)
    page.get_by_test_id("servers-delete").click()
    expect(_item(page, "home")).to_have_count(0)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    names = page.get_by_test_id("server-item").evaluate_all("nodes => nodes.map(n => n.dataset.name)")
    assert names == ["remote", "ours", "missing"]
    _item(page, "ours").click()
    _connect(page)
    expect(page.get_by_test_id("endpoint-url")).to_have_text(f"{base}/gateway/ours-stdio/mcp")

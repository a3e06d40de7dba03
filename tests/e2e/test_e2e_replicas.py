"""The explorer in Chromium on two replicas sharing Redis behind HAProxy (round-robin, no affinity); one replica dies.

The page, its assets and every MCP request go through the load balancer, so one
handshake-era session is served by both replicas. A subscription's updates
reach the page whichever replica produces them. Then one replica is killed:
the session goes on, on the survivor, with the same session id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import screenshot
from playwright.sync_api import Page, expect

from devtools.servers import DemoServer
from devtools.services import HAProxy, RedisServer

pytestmark = pytest.mark.e2e

BOOT = 90_000
CALL = 30_000


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[DemoServer]]]:
    """Two demo servers (with the site) on their own Redis, behind HAProxy: (the balancer's URL, the replicas)."""
    logs = tmp_path_factory.mktemp("replicas")
    with RedisServer() as redis:
        replicas: list[DemoServer] = []
        try:
            for i in range(2):
                args = ("--store", redis.url, "--no-gateway", "--no-oauth", "--no-encryption")
                replicas.append(DemoServer(*args, log_path=logs / f"replica{i}.log"))
            with HAProxy([r.port for r in replicas]) as lb:
                yield lb.url, replicas
        finally:
            for replica in replicas:
                replica.stop()


def posts(replica: DemoServer) -> int:
    assert replica.log_path is not None
    return len(re.findall(r'"POST /mcp HTTP/1\.1" 20[02]', Path(replica.log_path).read_text(errors="replace")))


def calculate(page: Page, a: str, b: str, want: str) -> None:
    page.get_by_test_id("tab-tools").click()
    page.get_by_test_id("tool-item-calculate").click()
    page.get_by_test_id("field-a").fill(a)
    page.get_by_test_id("field-b").fill(b)
    page.get_by_test_id("field-operation").select_option(label="multiply")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("result-structured")).to_contain_text(f'"result": {want}', timeout=CALL)


def test_one_session_on_two_replicas_survives_losing_one(page: Page, balanced: tuple[str, list[DemoServer]]) -> None:
    url, replicas = balanced
    page.set_viewport_size({"width": 1400, "height": 950})
    page.goto(f"{url}/?autoconnect=0")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    page.get_by_test_id("advanced-toggle").click()
    page.get_by_test_id("protocol-select").select_option("2025-11-25")
    page.get_by_test_id("connect-button").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    session = page.get_by_test_id("session-id")
    expect(session).not_to_contain_text("none")
    session_id = session.inner_text()
    for a, b, want in (("6", "7", "42"), ("3", "5", "15"), ("4", "4", "16"), ("9", "9", "81")):
        calculate(page, a, b, want)
    assert min(posts(r) for r in replicas) >= 2, f"both replicas served the session: {[posts(r) for r in replicas]}"

    page.get_by_test_id("tab-resources").click()
    page.get_by_test_id("resource-item-demo://counter").click()
    page.get_by_test_id("subscribe-button").click()
    expect(page.get_by_test_id("resource-live")).to_have_text(re.compile(r"live · [1-9]\d* updates"), timeout=CALL)
    screenshot(page, "explorer-replicas")

    replicas[0].stop(kill=True)
    calculate(page, "7", "8", "56")
    calculate(page, "2", "21", "42")
    expect(page.get_by_test_id("session-id")).to_have_text(session_id)
    page.get_by_test_id("tool-item-bump_counter").click()
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_contain_text('"value"', timeout=CALL)
    page.get_by_test_id("tab-resources").click()
    before = page.get_by_test_id("resource-live").inner_text()
    page.get_by_test_id("tab-tools").click()
    page.get_by_test_id("call-button").click()  # bump again, on the survivor
    page.get_by_test_id("tab-resources").click()
    expect(page.get_by_test_id("resource-live")).not_to_have_text(before, timeout=CALL)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")

"""The explorer in Chromium reaches a pool of queue workers through the front door.

``python -m server_demo --backend redis-queue`` serves the built site and hands ``/mcp`` to two
``python -m server_demo worker`` processes over a ``redis-server`` of the test's own; the page
connects to ``/mcp`` as it would to any server and calls tools, one of them routed by capability.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from e2e_support import screenshot
from playwright.sync_api import Page, expect

from devtools import ROOT
from devtools.processes import stop_process
from devtools.servers import DemoServer
from devtools.services import RedisServer
from server_demo.queue_core import DISCOVERY_KEY, request_stream

pytestmark = pytest.mark.e2e

BOOT = 90_000
CALL = 30_000


def _worker(url: str, worker_id: str, *capabilities: str) -> subprocess.Popen[bytes]:
    caps = [arg for c in capabilities for arg in ("--capability", c)]
    command = [sys.executable, "-m", "server_demo", "worker", "--redis", url, "--worker-id", worker_id, *caps]
    command += ["--heartbeat-interval", "0.2", "--log-level", "warning"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready or b"ready" not in proc.stdout.readline():
        stop_process(proc)
        raise RuntimeError(f"worker {worker_id} did not start")
    return proc


@pytest.fixture(scope="module")
def queue_demo() -> Iterator[tuple[str, str]]:
    """``(front door URL, redis URL)``: the front door and two workers (``wb`` with capability ``calc``)."""
    with RedisServer() as own:
        workers = [_worker(own.url, "wa"), _worker(own.url, "wb", "calc")]
        try:
            server = DemoServer("--backend", "redis-queue", "--redis", own.url, "--no-gateway", "--no-oauth")
            try:
                yield server.url, own.url
            finally:
                server.stop()
        finally:
            for proc in workers:
                stop_process(proc)
            own.stop()


def _served(redis_url: str) -> dict[str, dict[str, int]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return {w: json.loads(text)["served"] for w, text in client.hgetall(DISCOVERY_KEY).items()}  # type: ignore[union-attr]
    finally:
        client.close()


def test_the_explorer_calls_tools_on_the_worker_pool(page: Page, queue_demo: tuple[str, str]) -> None:
    base, redis_url = queue_demo
    page.set_viewport_size({"width": 1400, "height": 950})
    page.goto(f"{base}/index.html?server={base}&transport=http-sse&autoconnect=1")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=BOOT)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected", timeout=CALL)
    expect(page.get_by_test_id("endpoint-url")).to_have_text(f"{base}/mcp")
    expect(page.get_by_test_id("tool-list")).to_contain_text("calc_add", timeout=CALL)

    page.get_by_test_id("tool-item-calculate").click()
    page.get_by_test_id("field-a").fill("6")
    page.get_by_test_id("field-b").fill("7")
    page.get_by_test_id("field-operation").select_option(label="multiply")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "ok", timeout=CALL)
    expect(page.get_by_test_id("result-structured")).to_contain_text('"result": 42')

    page.get_by_test_id("tool-item-calc_add").click()
    page.get_by_test_id("field-a").fill("40")
    page.get_by_test_id("field-b").fill("2")
    page.get_by_test_id("call-button").click()
    expect(page.get_by_test_id("tool-result")).to_have_attribute("data-state", "ok", timeout=CALL)
    expect(page.get_by_test_id("result-block").first).to_contain_text("42")
    screenshot(page, "explorer-queue-front-door")

    page.wait_for_timeout(600)  # a heartbeat or two: the discovery records carry the counts
    served = _served(redis_url)
    assert served["wb"].get(request_stream("calc")) == 1, served  # the calc_ call went to the calc worker
    assert sum(counts.get(request_stream(), 0) for counts in served.values()) >= 2  # the rest to the pool

"""Parts 1 and 2: the browser client benchmark and the cold start, in headless Chromium.

Part 1 drives ``site/bench/client.html``: the same page runs a raw JavaScript JSON-RPC loop, the
official TypeScript SDK client (1.x), the v2 TypeScript client (``@modelcontextprotocol/client``; over
``/ws`` with the page's own minimal WebSocket transport, v2 has none) and our Client (in Pyodide) against
the same server_demo, ``echo`` tool.
Part 2 loads pages in fresh browser contexts (cold HTTP cache) and once more in the same context (warm)
and reads the marks each page records.
"""

from __future__ import annotations

import json
import statistics
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext

from devtools.chromium import CHROMIUM_ARGS as CHROMIUM_ARGS  # re-exported: __main__ launches with them
from devtools.chromium import LoopbackGuard

from .common import log, summarize

ENDPOINTS = {"http-sse": "/mcp", "http-json": "/mcp/json", "http-stateless": "/mcp/stateless", "websocket": "/ws"}
HANDSHAKE = "2025-11-25"
IMPLS = {  # name -> (page impl, protocol version pinned or None to negotiate)
    "raw": ("raw", HANDSHAKE),
    "sdk": ("sdk", HANDSHAKE),
    "sdk2": ("sdk2", HANDSHAKE),
    "ours": ("ours", HANDSHAKE),
    "ours-modern": ("ours", None),
    "pyfloor": ("pyfloor", HANDSHAKE),
}
TIMEOUT_JS = "new Promise((_, reject) => setTimeout(() => reject(new Error('benchmark run timed out')), 120000))"


def guard(context: BrowserContext) -> list[str]:
    """Abort every request that would leave 127.0.0.1; returns the list of blocked URLs."""
    loopback = LoopbackGuard()
    loopback.attach(context)
    return loopback.violations


def endpoint_url(base: str, endpoint: str) -> str:
    """Absolute URL of one endpoint (ws:// for the WebSocket)."""
    path = ENDPOINTS[endpoint]
    return (base.replace("http", "ws", 1) if endpoint == "websocket" else base) + path


def client_benchmark(
    browser: Browser, base: str, calls: int, rounds: int, warmup: int, impls: list[str]
) -> dict[str, Any]:
    """Every impl x endpoint x (sequential, 16 in flight), ``rounds`` interleaved rounds; summaries."""
    context = browser.new_context()
    blocked = guard(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/bench/client.html")
    page.wait_for_function("document.body.dataset.ready", timeout=120_000)
    if page.evaluate("document.body.dataset.ready") != "true":
        raise RuntimeError(f"bench page failed to boot: {page.inner_text('#status')}")
    log(f"client page: {page.inner_text('#status')}")
    configs = [(impl, ep, conc) for ep in ENDPOINTS for impl in impls for conc in (1, 16)]
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {c: [] for c in configs}
    for round_no in range(rounds):
        order = configs[round_no:] + configs[:round_no]  # rotate so no config always runs first
        for impl, ep, conc in order:
            page_impl, protocol = IMPLS[impl]
            n = calls if conc == 1 else calls * 2
            out = page.evaluate(
                f"([i, u, n, c, w, p]) => Promise.race([window.bench(i, u, n, c, w, p), {TIMEOUT_JS}])",
                [page_impl, endpoint_url(base, ep), n, conc, warmup, protocol],
            )
            runs[(impl, ep, conc)].append(out)
        log(f"client round {round_no + 1}/{rounds} done")
    rows = []
    for (impl, ep, conc), got in runs.items():
        rows.append(
            {
                "impl": impl,
                "endpoint": ep,
                "concurrency": conc,
                "protocol": got[0].get("protocol_version"),
                **summarize(got),
            }
        )
    split = page.evaluate(f"Promise.race([window.benchSplit(500), {TIMEOUT_JS}])")
    profiles = {
        ep: page.evaluate(
            f"([u, n, p]) => Promise.race([window.benchProfile(u, n, p), {TIMEOUT_JS}])",
            [endpoint_url(base, ep), 200, HANDSHAKE],
        )
        for ep in ("http-stateless", "websocket")
    }
    negotiation = None
    if "sdk2" in impls:  # what v2 picks on its own: no options (its default) and versionNegotiation "auto"
        negotiation = {
            ep: page.evaluate(
                f"(u) => Promise.race([window.benchNegotiation(u), {TIMEOUT_JS}])", endpoint_url(base, ep)
            )
            for ep in ENDPOINTS
        }
    context.close()
    if blocked:
        raise RuntimeError(f"requests tried to leave 127.0.0.1: {blocked[:5]}")
    return {
        "rows": rows,
        "split_us": split,
        "pyodide_profiles": profiles,
        "sdk2_negotiation": negotiation,
        "page_errors": errors,
    }


MARKS_JS = "() => window.benchMarks"
RESOURCES_JS = """() => performance.getEntriesByType('resource').map(e => ({
  name: e.name, bytes: e.encodedBodySize, transfer: e.transferSize, end: e.responseEnd }))"""

EXPLORER_OBSERVER = """
window.benchMarks = {};
new MutationObserver(() => {
  const m = window.benchMarks, now = performance.now();
  if (!m.ready && document.body && document.body.dataset.ready === 'true') m.ready = now;
  const status = document.querySelector('[data-testid=connection-status]');
  if (!m.handshake && status && status.dataset.state === 'connected') m.handshake = now;
  const result = document.querySelector('[data-testid=tool-result]');
  if (!m.call && result && result.dataset.state === 'ok') m.call = now;
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


def _load_page(context: BrowserContext, base: str, name: str) -> dict[str, Any]:
    """Open one cold-start page in ``context`` and return its marks (ms since navigation start)."""
    page = context.new_page()
    try:
        if name in EXPLORER_TRANSPORTS:
            page.add_init_script(EXPLORER_OBSERVER)
            page.set_viewport_size({"width": 1400, "height": 950})
            page.goto(f"{base}/index.html?autoconnect=1&transport={EXPLORER_TRANSPORTS[name]}")
            page.wait_for_function(
                "() => window.benchMarks.handshake && document.querySelector('[data-testid=tool-item-echo]')",
                timeout=120_000,
            )
            page.get_by_test_id("tab-tools").click()
            page.get_by_test_id("tool-item-echo").click()
            page.get_by_test_id("field-message").fill("cold start")
            page.get_by_test_id("call-button").click()
            page.wait_for_function("() => window.benchMarks.call", timeout=60_000)
            marks: dict[str, Any] = page.evaluate(MARKS_JS)
            marks["protocol"] = page.get_by_test_id("protocol-version").inner_text()
        else:
            page.goto(f"{base}/bench/{name}.html")
            page.wait_for_function("() => document.body.dataset.done", timeout=120_000)
            if page.evaluate("document.body.dataset.done") != "ok":
                raise RuntimeError(f"{name} page failed: {page.inner_text('#status')}")
            raw = page.evaluate(MARKS_JS)
            marks = json.loads(raw) if isinstance(raw, str) else raw
        marks["resources"] = page.evaluate(RESOURCES_JS)
        return marks
    finally:
        page.close()


EXPLORER_TRANSPORTS = {"explorer": "http-sse", "explorer-in-browser": "in-browser"}
"""The explorer's cold starts: over HTTP to the demo server, and to the in-browser server (its own worker boot)."""

COLD_PAGES = ("bare", "minimal", "pyscript", "explorer", "explorer-in-browser")


def cold_start(browser: Browser, base: str, reps: int) -> dict[str, Any]:
    """Each page ``reps`` times in a fresh context (cold) and again in that context (warm)."""
    loads: dict[str, dict[str, list[dict[str, Any]]]] = {p: {"cold": [], "warm": []} for p in COLD_PAGES}
    for rep in range(reps):
        for name in COLD_PAGES:
            context = browser.new_context()
            blocked = guard(context)
            try:
                loads[name]["cold"].append(_load_page(context, base, name))
                loads[name]["warm"].append(_load_page(context, base, name))
            finally:
                context.close()
            if blocked:
                raise RuntimeError(f"requests tried to leave 127.0.0.1: {blocked[:5]}")
        log(f"cold start round {rep + 1}/{reps} done")
    return {name: {kind: summarize_loads(runs) for kind, runs in by_kind.items()} for name, by_kind in loads.items()}


def _stage_ends(marks: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in marks.items() if isinstance(v, int | float)}


def summarize_loads(loads: list[dict[str, Any]]) -> dict[str, Any]:
    """Median mark per stage over loads, plus the bytes the page fetched (first load), by kind."""
    keys = [k for k in _stage_ends(loads[0])]
    medians = {k: statistics.median(_stage_ends(m)[k] for m in loads if k in m) for k in keys}
    total_key = "call" if "call" in medians else "done"
    return {
        "marks_ms": medians,
        "total_ms": medians[total_key],
        "totals_ms": [round(_stage_ends(m)[total_key]) for m in loads],
        "protocol": loads[0].get("protocol"),
        "fetched": fetched_bytes(loads[0]["resources"]),
    }


def resource_kind(url: str) -> str:
    """Which part of the site a fetched URL belongs to."""
    path = urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".whl"):
        return "wheel:" + name.split("-", 1)[0].lower()
    if "/pyodide/" in path:
        return "pyodide-core"
    if "/pyscript/" in path:
        return "pyscript"
    if "/mcp" in path or path.endswith("/ws"):
        return "mcp"
    return "page"


def fetched_bytes(resources: list[dict[str, Any]]) -> dict[str, int]:
    """Encoded body bytes fetched, by kind (MCP traffic excluded)."""
    out: dict[str, int] = {}
    for r in resources:
        kind = resource_kind(r["name"])
        if kind != "mcp":
            out[kind] = out.get(kind, 0) + int(r["bytes"] or 0)
    return dict(sorted(out.items()))

"""Turn a results dict into the Markdown table, the chart (HTML/SVG, screenshot by Chromium) and the README block.

Pure functions of the results, so they can be tested on fake data.
"""

# ruff: noqa: RUF001  (the report is typeset: the multiplication sign and dashes are meant)

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENDPOINT_LABELS = {
    "http-sse": "HTTP stateful + SSE (`/mcp`)",
    "http-json": "HTTP stateful + JSON (`/mcp/json`)",
    "http-stateless": "HTTP stateless (`/mcp/stateless`)",
    "websocket": "WebSocket (`/ws`)",
}
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join([_row(header), _row(align), *(_row(r) for r in rows)])


def _rate(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    return f"{row['calls_per_s']:.0f} ({row['p50_ms']:.1f} / {row['p99_ms']:.1f})"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "–"
    return f"{a / b:.2f}×"


def _cps(row: dict[str, Any] | None) -> float | None:
    return None if row is None else float(row["calls_per_s"])


def _kb(n: float) -> str:
    return f"{n / 1000:,.0f} kB" if n >= 10_000 else f"{n / 1000:.1f} kB"


def client_rows(results: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Index the client rows by (impl, endpoint, concurrency)."""
    return {(r["impl"], r["endpoint"], r["concurrency"]): r for r in results.get("client", {}).get("rows", [])}


IMPL_LABELS = {  # page impl -> column label (the TS versions are the ones package.json pins)
    "raw": "raw JS",
    "sdk": "TS SDK 1.32",
    "sdk2": "TS client 2.4",
    "ours": "ours",
}


def client_table(results: dict[str, Any]) -> str:
    """Part 1: calls/s (p50 / p99 ms) per client, endpoint and concurrency, with ours over each peer."""
    rows = client_rows(results)
    out = []
    for ep, label in ENDPOINT_LABELS.items():
        for conc in (1, 16):
            raw, sdk, sdk2, ours = (rows.get((i, ep, conc)) for i in IMPL_LABELS)
            modern = rows.get(("ours-modern", ep, conc))
            floor = rows.get(("pyfloor", ep, conc))
            if not (raw or sdk or sdk2 or ours):
                continue
            out.append(
                [
                    label,
                    "sequential" if conc == 1 else f"{conc} in flight",
                    _rate(raw),
                    _rate(sdk),
                    _rate(sdk2),
                    _rate(ours),
                    _ratio(_cps(ours), _cps(sdk)),
                    _ratio(_cps(ours), _cps(sdk2)),
                    _ratio(_cps(ours), _cps(raw)),
                    _rate(modern),
                    _rate(floor),
                    _ratio(_cps(floor), _cps(raw)),
                ]
            )
    header = [
        "transport",
        "calls",
        *IMPL_LABELS.values(),
        "ours/1.32",
        "ours/2.4",
        "ours/raw",
        "ours 2026-07-28",
        "Python floor",
        "floor/raw",
    ]
    return _table(header, out)


def sdk2_negotiation_note(results: dict[str, Any]) -> str:
    """One sentence on what the v2 client negotiates with server_demo on its own (default, and "auto")."""
    found = results.get("client", {}).get("sdk2_negotiation") or {}

    def picks(mode: str) -> str:
        by_version: dict[str, list[str]] = {}
        for ep, got in found.items():
            entry = got.get(mode, {})
            key = entry.get("version") or f"an error ({entry.get('error', '?')})"
            by_version.setdefault(key, []).append(f"`{ENDPOINT_LABELS.get(ep, ep).split('`')[1]}`")
        if len(by_version) == 1:
            return next(iter(by_version))
        return "; ".join(f"{v} on {', '.join(eps)}" for v, eps in by_version.items())

    if not found:
        return (
            "The TS client 2.4, left to its defaults, runs the plain 2025 `initialize` handshake "
            "(its `versionNegotiation` defaults to `legacy`)."
        )
    return (
        f"Left to its defaults the TS client 2.4 negotiates {picks('default')} (its `versionNegotiation` "
        f"defaults to `legacy`: the plain 2025 `initialize` handshake); with `versionNegotiation: 'auto'` "
        f"(a `server/discover` probe first) it negotiates {picks('auto')}."
    )


STAGES = (
    ("runtime", "runtime"),
    ("wheels", "wheels"),
    ("imports", "imports"),
    ("handshake", "handshake"),
    ("call", "first call"),
)
PAGE_LABELS = {
    "bare": "bare Pyodide boot",
    "minimal": "minimal page (Pyodide + our wheel)",
    "pyscript": "minimal PyScript page",
    "explorer": "explorer (index.html)",
    "explorer-in-browser": "explorer, in-browser server (a Web Worker boots its own Pyodide)",
}


def _stages(marks: dict[str, float]) -> dict[str, float]:
    """Stage durations from cumulative marks; PyScript's boot (runtime + wheels) shows as ``python``."""
    out: dict[str, float] = {}
    prev = 0.0
    order = ["runtime", "wheels", "python", "ready", "imports", "handshake", "call", "done"]
    for key in order:
        if key in marks:
            out[key] = marks[key] - prev
            prev = marks[key]
    return out


def cold_table(results: dict[str, Any]) -> str:
    """Part 2: page open -> first tool result, per stage (median ms), cold and warm, vs bare Pyodide."""
    cold = results.get("cold_start", {})
    bare = cold.get("bare", {}).get("cold", {}).get("total_ms")
    bare_warm = cold.get("bare", {}).get("warm", {}).get("total_ms")
    out = []
    for page, label in PAGE_LABELS.items():
        entry = cold.get(page)
        if not entry:
            continue
        c = entry["cold"]
        st = _stages(c["marks_ms"])
        runtime = st.get("runtime")
        wheels = st.get("wheels")
        boot = st.get("python") or st.get("ready")
        if boot is not None:  # PyScript and the explorer: one boot stage (runtime + wheels [+ app])
            runtime_cell, wheels_cell = f"{boot:.0f} (boot)", "↖"
        else:
            runtime_cell = f"{runtime:.0f}" if runtime is not None else "–"
            wheels_cell = f"{wheels:.0f}" if wheels is not None else "–"
        imports = st.get("imports")
        after_boot = c["total_ms"] - (runtime if runtime is not None else boot or 0.0)
        over = c["total_ms"] - bare if bare else None
        over_warm = entry["warm"]["total_ms"] - bare_warm if bare_warm else None
        out.append(
            [
                label,
                runtime_cell,
                wheels_cell,
                f"{imports:.0f}" if imports is not None else "–",
                f"{st['handshake']:.0f}" if "handshake" in st else "–",
                f"{st['call']:.0f}" if "call" in st else "–",
                f"**{c['total_ms']:.0f}**",
                f"{entry['warm']['total_ms']:.0f}",
                f"+{over:.0f}" if over is not None and page != "bare" else "–",
                f"+{over_warm:.0f}" if over_warm is not None and page != "bare" else "–",
                f"+{after_boot:.0f}" if page != "bare" else "–",
            ]
        )
    header = [
        "page",
        "runtime",
        "wheels",
        "imports",
        "handshake",
        "first call",
        "cold total",
        "warm total",
        "cold − bare",
        "warm − bare",
        "after its own boot",
    ]
    return _table(header, out)


SERVER_LABELS = {  # server -> column label
    "bare-asgi": "bare-ASGI floor",
    "server_demo": "server_demo",
    "python-sdk": "Python SDK 2.3",
}


def server_rows(results: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Index the server rows by (server, mode, concurrency)."""
    return {(r["server"], r["mode"], r["concurrency"]): r for r in results.get("server", {}).get("throughput", [])}


def _cpu(row: dict[str, Any] | None) -> str:
    value = None if row is None else row.get("server_cpu_ms_per_call")
    return "–" if value is None else f"{value:.3f}"


def server_table(results: dict[str, Any]) -> str:
    """Part 3: calls/s (p50 / p99) per server, server_demo over the floor and over the SDK, CPU per call; memory."""
    rows = server_rows(results)
    out = []
    for mode, label in (("stateless", "stateless JSON"), ("stateful", "stateful SSE")):
        for conc in (1, 16):
            floor, demo, sdk = (rows.get((s, mode, conc)) for s in SERVER_LABELS)
            if not demo:
                continue
            out.append(
                [
                    label,
                    str(conc),
                    _rate(floor),
                    _rate(demo),
                    _rate(sdk),
                    _ratio(_cps(demo), _cps(floor)),
                    _ratio(_cps(demo), _cps(sdk)),
                    " / ".join(_cpu(r) for r in (floor, demo, sdk)),
                ]
            )
    header = [
        "mode",
        "connections",
        *(f"{name} calls/s (p50 / p99 ms)" if i == 0 else name for i, name in enumerate(SERVER_LABELS.values())),
        "demo/floor",
        "demo/SDK",
        "server CPU ms/call (floor / demo / SDK)",
    ]
    text = _table(header, out)
    mem = results.get("server", {}).get("memory", [])
    if mem:
        mem_rows = [
            [
                m["server"],
                str(m["sessions"]),
                f"{m['rss_before_kib'] / 1024:.1f} MiB",
                f"{m['rss_after_kib'] / 1024:.1f} MiB",
                f"**{m['kib_per_session']:.1f} KiB**",
            ]
            for m in mem
        ]
        text += "\n\n" + _table(
            ["server", "idle stateful sessions", "RSS before", "RSS after", "per session"], mem_rows
        )
    return text


def scaling_table(results: dict[str, Any]) -> str:
    """Part 3, second table: the Redis store, replicas behind HAProxy and the queue path, against in-memory."""
    scaling = results.get("server", {}).get("scaling") or {}
    rows = {(r["config"], r["mode"]): r for r in scaling.get("rows", [])}
    base = {mode: rows.get(("memory", mode)) for mode in ("stateless", "stateful")}
    out = []
    for config, label in scaling.get("configs", {}).items():
        got = {mode: rows.get((config, mode)) for mode in ("stateless", "stateful")}
        if not any(got.values()):
            continue

        def both(cell: Callable[[dict[str, Any]], str], got: dict[str, dict[str, Any] | None] = got) -> str:
            return " / ".join(cell(r) if r else "–" for r in got.values())

        out.append(
            [
                label,
                _rate(got["stateless"]),
                _rate(got["stateful"]),
                " / ".join(_ratio(_cps(got[m]), _cps(base[m])) for m in got),
                both(lambda r: f"{r['server_cpu_ms_per_call']:.3f}"),
                both(lambda r: f"{r['redis_cpu_ms_per_call']:.3f}"),
            ]
        )
    header = [
        "setup (16 connections, not pinned)",
        "stateless calls/s (p50 / p99 ms)",
        "stateful",
        "vs in-memory (stateless / stateful)",
        "server_demo CPU ms/call",
        "Redis CPU ms/call",
    ]
    return _table(header, out) if out else ""


def payload_table(results: dict[str, Any]) -> str:
    """Part 4: component sizes, raw and gzip, and what each page fetched cold."""
    comp = results.get("payload", {})
    out = [[name, str(v["files"]), _kb(v["bytes"]), _kb(v["gzip_bytes"])] for name, v in comp.items()]
    text = _table(["component (site/dist)", "files", "bytes", "gzip -6"], out)
    cold = results.get("cold_start", {})
    fetched = []
    for page, label in PAGE_LABELS.items():
        f = cold.get(page, {}).get("cold", {}).get("fetched")
        if not f:
            continue
        core = f.get("pyodide-core", 0)
        wheels = sum(v for k, v in f.items() if k.startswith("wheel:"))
        pyscript = f.get("pyscript", 0)
        page_bytes = f.get("page", 0)
        fetched.append(
            [label, _kb(core), _kb(wheels), _kb(pyscript), _kb(page_bytes), _kb(wheels + pyscript + page_bytes)]
        )
    if fetched:
        text += "\n\n" + _table(
            ["fetched on a cold load", "Pyodide core", "wheels", "PyScript", "page + app", "added to core"], fetched
        )
    return text


def targets(results: dict[str, Any]) -> list[list[str]]:
    """The issue's targets, measured value, met or not."""
    out: list[list[str]] = []
    rows = client_rows(results)

    def worst(impl_b: str, eps: tuple[str, ...]) -> tuple[float, str] | None:
        found = []
        for ep in eps:
            for conc in (1, 16):
                c, b = rows.get(("ours", ep, conc)), rows.get((impl_b, ep, conc))
                if c and b:
                    found.append((c["calls_per_s"] / b["calls_per_s"], f"{ep}, {'seq' if conc == 1 else 'c16'}"))
        return min(found, key=lambda item: item[0]) if found else None

    http = ("http-sse", "http-json", "http-stateless")
    for label, impl_b, eps, goal in (
        (f"ours ≥ 1.0× {IMPL_LABELS['sdk']} (HTTP)", "sdk", http, 1.0),
        (f"ours ≥ 1.0× {IMPL_LABELS['sdk']} (WebSocket)", "sdk", ("websocket",), 1.0),
        (f"ours ≥ 1.0× {IMPL_LABELS['sdk2']} (HTTP)", "sdk2", http, 1.0),
        (f"ours ≥ 1.0× {IMPL_LABELS['sdk2']} (WebSocket)", "sdk2", ("websocket",), 1.0),
        ("ours ≥ 0.8× raw JS floor (HTTP)", "raw", http, 0.8),
        ("ours ≥ 0.8× raw JS floor (WebSocket)", "raw", ("websocket",), 0.8),
    ):
        got = worst(impl_b, eps)
        if got:
            out.append([label, f"worst {got[0]:.2f}× ({got[1]})", "yes" if got[0] >= goal else "**no**"])
    server = server_rows(results)
    for peer, label, goal in (
        ("bare-asgi", "server_demo ≥ 0.5× bare-ASGI floor", 0.5),
        ("python-sdk", "server_demo ≥ 3× Python SDK server", 3.0),
    ):
        found = []
        for mode in ("stateless", "stateful"):
            for conc in (1, 16):
                demo, other = server.get(("server_demo", mode, conc)), server.get((peer, mode, conc))
                if demo and other:
                    found.append((demo["calls_per_s"] / other["calls_per_s"], f"{mode}, c{conc}"))
        if found:  # met only when every row is (1 connection: latency-bound; 16: throughput)
            low = min(found, key=lambda item: item[0])
            text = f"calls/s worst {low[0]:.2f}× ({low[1]})"
            at16 = [f for f in found if f[1].endswith("c16")]
            worst16 = min(at16, key=lambda item: item[0]) if at16 else low
            if worst16[0] > low[0]:
                text += f"; at 16 connections worst {worst16[0]:.2f}× ({worst16[1].split(',')[0]})"
            out.append([label, text, "yes" if low[0] >= goal else "**no**"])
    cold = results.get("cold_start", {})
    bare = cold.get("bare", {}).get("cold", {}).get("total_ms")
    for page in ("minimal", "pyscript", "explorer"):
        entry = cold.get(page, {}).get("cold", {})
        total = entry.get("total_ms")
        if bare and total:
            over = (total - bare) / 1000
            st = _stages(entry["marks_ms"])
            after = (total - (st.get("runtime") or st.get("python") or st.get("ready") or 0.0)) / 1000
            out.append(
                [
                    f"cold start ≤ bare Pyodide + 0.6 s ({PAGE_LABELS[page]})",
                    f"+{over:.2f} s vs bare; +{after:.2f} s after its own boot",
                    "yes" if over <= 0.6 else "**no**",
                ]
            )
    for m in results.get("server", {}).get("memory", []):
        if m["server"] == "server_demo":
            kb = m["kib_per_session"] * 1.024
            out.append(["idle stateful session ≤ 20 KB", f"{kb:.1f} kB", "yes" if kb <= 20 else "**no**"])
    return out


def markdown(results: dict[str, Any]) -> str:
    """The whole Markdown report (what the bench command prints and the README embeds)."""
    m = results.get("machine", {})
    parts = [
        f"Measured {results.get('date', '?')} on {m.get('nproc', '?')} CPUs ({m.get('cpu', '?')}), "
        f"{m.get('memory_gib', '?')} GiB RAM, {m.get('os', '')}; "
        + (f"Chromium {results['chromium']} headless; " if results.get("chromium") else "")
        + f"load average at start {m.get('load_average')}.",
    ]
    if results.get("client"):
        cfg = results.get("config", {})
        parts += [
            "### 1. Browser client: `echo` calls/s (p50 / p99 ms)",
            f"One Chromium page, same server_demo; {cfg.get('calls')} sequential calls and "
            f"{2 * cfg.get('calls', 0)} with 16 in flight per run, median of {cfg.get('rounds')} interleaved rounds; "
            "protocol 2025-11-25 for all four (the TS SDK 1.32's newest). The TS client 2.4 has no WebSocket "
            "transport (v2 removed it), so its `/ws` rows use a minimal one of the bench page's own "
            "(`site/bench/client.js`: subprotocol `mcp`, one JSON-RPC message per text frame, each validated "
            "with the client's schema, like 1.32's). "
            + sdk2_negotiation_note(results)
            + ' "ours 2026-07-28" is our Client with its default negotiation. The Python floor is the raw JS '
            "client with each request built and each reply decoded in Python (`json.dumps` / `json.loads`, one call "
            "into Python each way, no asyncio, no validation): the least any client running in Pyodide pays.",
            client_table(results),
        ]
        split = results["client"].get("split_us")
        if split:
            parts.append(
                f"Inside Pyodide, one call costs {split['session_us']:.0f} µs in our session layer "
                f"(Client over an in-memory pair), {split['encode_us']:.0f} µs to encode the request and "
                f"{split['decode_us']:.0f} µs to decode the response; the rest is the transport adapter, the "
                "JS↔Python bridge, the browser and the server."
            )
    if results.get("cold_start"):
        parts += [
            "### 2. Cold start: page open → first tool result (median ms since navigation start)",
            cold_table(results),
        ]
    if results.get("server"):
        cfg = results.get("config", {})
        parts += [
            "### 3. Server: `echo` under wrk",
            f"wrk 4.1 (one thread, `benchmarks/wrk_echo.lua`: every answer must be a 200 carrying the echoed "
            f"text, else the run fails) on core 1, each server alone on core 0 (`taskset`); "
            f"{cfg.get('wrk_duration_s', '?')} s per run, median of {cfg.get('rounds')} interleaved rounds. "
            "Same uvicorn settings for all three (`uvicorn.run` defaults: uvloop, httptools, access log on; log "
            "level warning, so nothing is written). Stateful: one session, initialized from Python before wrk "
            "starts, shared by every connection. The bare-ASGI floor (`benchmarks/bare_asgi.py`) answers the "
            "same JSON-RPC `echo` with no MCP code: uvicorn, one `json.loads`, one `json.dumps`.",
            server_table(results),
        ]
        scaled = scaling_table(results)
        if scaled:
            parts += [
                "Sessions in Redis, replicas and queue workers (same wrk script and server_demo; every process "
                "shares the 2 cores, so this shows each layer's cost, not how far replicas scale; CPU per call "
                "is stateless / stateful, summed over every server_demo process: replicas, queue front, worker):",
                scaled,
            ]
    if results.get("payload"):
        parts += ["### 4. Payload on top of the Pyodide core", payload_table(results)]
    tgt = targets(results)
    if tgt:
        parts += ["### Targets", _table(["target", "measured", "met"], tgt)]
    return "\n\n".join(parts) + "\n"


# --- chart ------------------------------------------------------------------------------------

COLORS = {
    "raw": "#9aa5b1",
    "sdk": "#3b82f6",
    "sdk2": "#14b8a6",
    "ours": "#f59e0b",
    "ours-modern": "#b45309",
    "server_demo": "#f59e0b",
    "python-sdk": "#3b82f6",
    "bare-asgi": "#9aa5b1",
}
STAGE_COLORS = {
    "runtime": "#94a3b8",
    "wheels": "#60a5fa",
    "python": "#818cf8",
    "ready": "#818cf8",
    "imports": "#a78bfa",
    "handshake": "#f59e0b",
    "call": "#ef4444",
    "done": "#94a3b8",
}


def _bars(title: str, groups: list[tuple[str, list[tuple[str, float]]]], width: int, unit: str) -> str:
    """A grouped horizontal bar chart as SVG."""
    label_w, row_h, gap = 190, 14, 10
    values = [v for _, bars in groups for _, v in bars] or [1.0]
    vmax = max(values) * 1.15
    height = 30 + sum(len(b) * row_h + gap for _, b in groups)
    svg = [
        f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" '
        f'font-size="11"><text x="0" y="14" font-weight="bold" font-size="13">{html.escape(title)}</text>'
    ]
    y = 26
    for group, bars in groups:
        svg.append(f'<text x="0" y="{y + len(bars) * row_h / 2 + 4}">{html.escape(group)}</text>')
        for name, v in bars:
            w = (width - label_w - 70) * v / vmax
            svg.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 2}" fill="{COLORS.get(name, "#666")}"/>'
            )
            svg.append(f'<text x="{label_w + w + 4:.1f}" y="{y + row_h - 4}">{v:,.0f} {unit}</text>')
            y += row_h
        y += gap
    svg.append("</svg>")
    return "".join(svg)


def _legend(names: list[tuple[str, str]]) -> str:
    items = "".join(f'<span><i style="background:{c}"></i>{html.escape(n)}</span>' for n, c in names)
    return f'<div class="legend">{items}</div>'


def _stacked(title: str, rows: list[tuple[str, dict[str, float]]], width: int) -> str:
    label_w, row_h = 190, 20
    totals = [sum(st.values()) for _, st in rows] or [1.0]
    vmax = max(totals) * 1.1
    height = 30 + len(rows) * (row_h + 6)
    svg = [
        f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" '
        f'font-size="11"><text x="0" y="14" font-weight="bold" font-size="13">{html.escape(title)}</text>'
    ]
    y = 26
    for label, stages in rows:
        svg.append(f'<text x="0" y="{y + 14}">{html.escape(label)}</text>')
        x = float(label_w)
        for stage, ms in stages.items():
            w = (width - label_w - 70) * ms / vmax
            svg.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0):.1f}" height="{row_h}" '
                f'fill="{STAGE_COLORS.get(stage, "#666")}"><title>{stage} {ms:.0f} ms</title></rect>'
            )
            x += max(w, 0)
        svg.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{sum(stages.values()):,.0f} ms</text>')
        y += row_h + 6
    svg.append("</svg>")
    return "".join(svg)


def chart_html(results: dict[str, Any]) -> str:
    """One HTML page with the charts (rendered to PNG by Chromium)."""
    rows = client_rows(results)
    panels = []
    for conc, title in ((1, "Browser client, sequential: calls/s"), (16, "Browser client, 16 in flight: calls/s")):
        groups = []
        for ep in ENDPOINT_LABELS:
            bars = [(i, rows[(i, ep, conc)]["calls_per_s"]) for i in IMPL_LABELS if (i, ep, conc) in rows]
            if bars:
                groups.append((ep, bars))
        if groups:
            panels.append(_bars(title, groups, 560, "/s"))
    legend = _legend(
        [
            ("raw JS (floor)", COLORS["raw"]),
            (IMPL_LABELS["sdk"], COLORS["sdk"]),
            (IMPL_LABELS["sdk2"], COLORS["sdk2"]),
            ("ours (pyodide-transport)", COLORS["ours"]),
        ]
    )
    cold = results.get("cold_start", {})
    stacked = [(PAGE_LABELS[p].split(" (")[0], _stages(cold[p]["cold"]["marks_ms"])) for p in PAGE_LABELS if p in cold]
    cold_svg = _stacked("Cold start, page open → first tool result (ms)", stacked, 560) if stacked else ""
    names = {"python": "boot (PyScript, explorer)"}
    cold_legend = _legend([(names.get(s, s), c) for s, c in STAGE_COLORS.items() if s not in ("ready", "done")])
    server = server_rows(results)
    sgroups = []
    for mode in ("stateless", "stateful"):
        for conc in (1, 16):
            bars = [(s, server[(s, mode, conc)]["calls_per_s"]) for s in SERVER_LABELS if (s, mode, conc) in server]
            if bars:
                sgroups.append((f"{mode}, c={conc}", bars))
    server_svg = _bars("Server: calls/s under wrk", sgroups, 560, "/s") if sgroups else ""
    server_legend = _legend([(label, COLORS[s]) for s, label in SERVER_LABELS.items()])
    m = results.get("machine", {})
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font-family: sans-serif; margin: 12px; width: 1160px; background: #fff; color: #111; }}
.grid {{ display: grid; grid-template-columns: 570px 570px; gap: 10px 20px; }}
.legend span {{ margin-right: 14px; font-size: 12px; }}
.legend i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; }}
h1 {{ font-size: 16px; margin: 0 0 6px; }} p {{ font-size: 11px; color: #555; margin: 0 0 8px; }}
</style></head><body>
<h1>pyodide-transport benchmarks</h1>
<p>{html.escape(str(results.get("date", "")))} · {m.get("nproc")} CPUs ({html.escape(str(m.get("cpu")))}),
{m.get("memory_gib")} GiB · headless Chromium, loopback</p>
<div class="grid"><div>{panels[0] if panels else ""}</div><div>{panels[1] if len(panels) > 1 else ""}</div>
<div>{legend}</div><div></div>
<div>{cold_svg}{cold_legend}</div><div>{server_svg}{server_legend}</div></div>
</body></html>"""


def _sections(block: str) -> tuple[str, dict[str, str]]:
    """A report's text before its first ``### `` heading, and its sections by heading (in order)."""
    head, *rest = re.split(r"^(?=### )", block.strip(), flags=re.MULTILINE)
    return head.strip(), {s.split("\n", 1)[0]: s.strip() for s in rest}


def _target_part(label: str) -> int:
    """Which part measures a target row (by its label)."""
    if label.startswith("cold start"):
        return 2
    if label.startswith(("server_demo", "idle stateful session")):
        return 3
    return 1


def merge_block(old: str, new: str) -> str:
    """``old`` report with the parts ``new`` measured replaced (a run of some parts keeps the others).

    Each section of ``new`` replaces the section of ``old`` with the same number (or is added in
    order) and starts with ``new``'s "Measured …" line; the Targets table keeps ``old``'s rows of the
    parts ``new`` did not measure.
    """
    old_head, old_sections = _sections(old)
    new_head, new_sections = _sections(new)
    merged = dict(old_sections)
    number = {title.split()[1] if len(title.split()) > 1 else title: title for title in old_sections}
    measured = set()
    for title, text in new_sections.items():
        if title == "### Targets":
            continue
        key = title.split()[1]
        measured.add(int(key.rstrip(".")) if key.rstrip(".").isdigit() else 0)
        body = text.split("\n", 1)[1].strip() if "\n" in text else ""
        section = f"{title}\n\n{new_head.replace('Measured', 'This part measured', 1)}\n\n{body}"
        merged.pop(number.get(key, title), None)
        merged[title] = section
    targets_old = old_sections.get("### Targets", "")
    targets_new = new_sections.get("### Targets", "")
    rows = [r for r in targets_old.splitlines() if r.startswith("| ") and not r.startswith("| target")]
    kept = [r for r in rows if _target_part(r[2:].split(" | ")[0]) not in measured]
    fresh = [r for r in targets_new.splitlines()[3:] if r.startswith("| ")]
    all_rows = sorted(kept + fresh, key=lambda r: _target_part(r[2:].split(" | ")[0]))
    merged.pop("### Targets", None)
    ordered = sorted(merged.items(), key=lambda item: item[0].split()[1])
    parts = [old_head, *(text for _, text in ordered)]
    if all_rows:
        parts.append("### Targets\n\n" + "\n".join(["| target | measured | met |", "| --- | ---: | ---: |", *all_rows]))
    return "\n\n".join(parts) + "\n"


def readme_block(readme: Path) -> str:
    """The text between the bench markers of README (empty when there is none)."""
    match = re.search(re.escape(README_BEGIN) + r"(.*?)" + re.escape(README_END), readme.read_text(), re.DOTALL)
    return match.group(1).strip() if match else ""


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the bench markers inside README's "## Performance" section."""
    text = readme.read_text()
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{readme} has no {README_BEGIN} … {README_END} block in its Performance section")
    readme.write_text(pattern.sub(lambda _: f"{README_BEGIN}\n{block.strip()}\n{README_END}", text, count=1))

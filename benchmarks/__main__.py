"""``python -m benchmarks``: run every benchmark, write JSON + Markdown + PNG, print the table.

Normally started by ``python build.py bench`` (which installs what it needs and builds the site).
Results land in benchmarks/results/ (not committed); ``--publish`` also refreshes the README's
Performance block and benchmarks/latest.png.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import importlib.util
import io
import json
import os
import pstats
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from . import browser, payload, report, servers
from .common import ROOT, Server, log, machine, python

RESULTS = ROOT / "benchmarks" / "results"


BUNDLES = {  # entry point (benchmarks/) -> bundle (site/bench/), what it is
    "sdk_entry.mjs": ("mcp-sdk.js", "TypeScript SDK 1.x client"),
    "sdk2_entry.mjs": ("mcp-client2.js", "TypeScript client 2.x"),
}


def bundle_sdk(site: Path) -> list[Path]:
    """Bundle the official TypeScript clients (SDK 1.x, client 2.x) for the bench page with esbuild (local, no CDN)."""
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise SystemExit("esbuild is missing: run `npm ci` (python build.py bench does)")
    outs = []
    for entry, (bundle, what) in BUNDLES.items():
        out = site / "bench" / bundle
        cmd = [
            str(esbuild),
            str(ROOT / "benchmarks" / entry),
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--target=es2022",
            "--minify",
            f"--outfile={out}",
            "--log-level=warning",
        ]
        subprocess.run(cmd, cwd=ROOT, check=True)
        log(
            f"{what} bundled: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
            f"({out.stat().st_size / 1000:.0f} kB)"
        )
        outs.append(out)
    return outs


def cpython_profile(calls: int) -> dict[str, Any]:
    """Our session layer in CPython: the same in-memory split as in Pyodide, plus a cProfile of it."""
    spec = importlib.util.spec_from_file_location("bench_client", ROOT / "site" / "bench" / "bench_client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    split: dict[str, Any] = json.loads(asyncio.run(module.split(calls)))
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(module.split(calls))
    profiler.disable()
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(20)
    return {"split_us": split, "profile": buf.getvalue()}


def render_chart(chromium: str | None, html_text: str, png: Path) -> None:
    """Screenshot the chart page in headless Chromium (no image library needed)."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=browser.CHROMIUM_ARGS)
        try:
            page = b.new_page(viewport={"width": 1190, "height": 600})
            page.set_content(html_text)
            page.screenshot(path=str(png), full_page=True)
        finally:
            b.close()


def main() -> None:
    """Parse arguments, run the parts, write and print the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--site", type=Path, default=ROOT / "site" / "dist", help="the built site")
    parser.add_argument("--chromium", default=os.environ.get("PT_CHROMIUM"), help="Chromium executable")
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per client run (x2 concurrent)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per client/server config")
    parser.add_argument("--cold-reps", type=int, default=3, help="cold loads per page")
    parser.add_argument(
        "--server-calls", type=int, default=500, help="unused since wrk drives part 3 (kept for old command lines)"
    )
    parser.add_argument("--wrk-duration", type=float, default=5.0, help="seconds per wrk run in part 3")
    parser.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 1,3")
    parser.add_argument("--quick", action="store_true", help="tiny counts: check the harness, not the numbers")
    parser.add_argument("--publish", action="store_true", help="also update README.md and benchmarks/latest.png")
    parser.add_argument("--from-json", type=Path, help="re-render a saved results file (no measuring)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds, args.cold_reps, args.server_calls, args.wrk_duration = 30, 1, 1, 60, 1.0
    parts = {int(p) for p in args.parts.split(",") if p.strip()}
    if args.chromium is None:  # not set: Debian's if present; "" (from build.py): Playwright's own
        args.chromium = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else ""
    chromium = args.chromium or None
    site = args.site.resolve()
    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if args.from_json is not None:
        publish(json.loads(args.from_json.read_text()), chromium, stamp, args.publish)
        return
    results: dict[str, Any] = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "config": {
            "calls": args.calls,
            "rounds": args.rounds,
            "cold_reps": args.cold_reps,
            "wrk_duration_s": args.wrk_duration,
            "quick": args.quick,
        },
    }

    if parts & {1, 2}:
        if 1 in parts:
            bundle_sdk(site)
        with (
            Server(
                [python(), "-m", "server_demo", "--port", "{port}", "--site", str(site), "--log-level", "warning"],
                "bench-site",
            ) as server,
            sync_playwright() as p,
        ):
            b = p.chromium.launch(executable_path=chromium, headless=True, args=browser.CHROMIUM_ARGS)
            results["chromium"] = b.version
            try:
                if 1 in parts:
                    log("part 1: browser client throughput and latency")
                    results["client"] = browser.client_benchmark(
                        b, server.url, args.calls, args.rounds, 10, list(browser.IMPLS)
                    )
                if 2 in parts:
                    log("part 2: cold start")
                    results["cold_start"] = browser.cold_start(b, server.url, args.cold_reps)
            finally:
                b.close()
        if 1 in parts:
            log("CPython: session-layer split and profile")
            results["client"]["cpython"] = cpython_profile(2000)
    if 3 in parts:
        log("part 3: server_demo vs the Python SDK server and the bare-ASGI floor, under wrk")
        results["server"] = {
            "throughput": servers.throughput(site, args.wrk_duration, args.rounds),
            "memory": servers.idle_session_memory(site),
            "profiles": servers.server_profiles(site, RESULTS, args.wrk_duration),
            "scaling": servers.scaling(site, args.wrk_duration, args.rounds),
        }
    if 4 in parts:
        results["payload"] = payload.payload(site)
    results["elapsed_s"] = round(time.monotonic() - started, 1)

    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(results, indent=1))
    publish(results, chromium, stamp, args.publish)
    log(f"done in {results['elapsed_s']} s")


def publish(results: dict[str, Any], chromium: str | None, stamp: str, readme: bool) -> None:
    """Write the Markdown and chart beside the JSON, refresh latest.*, optionally the README; print the table."""
    text = report.markdown(results)
    json_path = RESULTS / f"bench-{stamp}.json"
    if not json_path.exists():
        json_path.write_text(json.dumps(results, indent=1))
    (RESULTS / f"bench-{stamp}.md").write_text(text)
    png = RESULTS / f"bench-{stamp}.png"
    render_chart(chromium, report.chart_html(results), png)
    for suffix, src in ((".json", json_path), (".md", RESULTS / f"bench-{stamp}.md"), (".png", png)):
        shutil.copy2(src, RESULTS / f"latest{suffix}")
    if readme:
        partial = not all(results.get(key) for key in ("client", "cold_start", "server", "payload"))
        if partial:  # keep the README's other parts (and the chart, which would lose their panels)
            report.update_readme(ROOT / "README.md", report.merge_block(report.readme_block(ROOT / "README.md"), text))
            log("README.md Performance block updated for the parts measured (benchmarks/latest.png kept)")
        else:
            shutil.copy2(png, ROOT / "benchmarks" / "latest.png")
            report.update_readme(ROOT / "README.md", text)
            log("README.md Performance block and benchmarks/latest.png updated")
    print(text, flush=True)
    log(f"results: {json_path} (+ .md, .png)")


if __name__ == "__main__":
    main()

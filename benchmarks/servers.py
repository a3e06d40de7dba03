"""Part 3: server_demo against the official Python SDK server under the same load generator.

Throughput: ``loadgen calls`` (a process of its own) at concurrency 1 and 16, for stateless JSON and
stateful SSE, rounds interleaved across servers. Besides calls/s (which the Python generator caps on
two cores) we record the server's own CPU time per call, read from /proc, which does not depend on
the generator. Memory: a fresh server, one warm-up session, then 1,000 idle stateful sessions; the
RSS growth divided by 1,000.
"""

from __future__ import annotations

import io
import json
import pstats
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from .common import ROOT, Server, log, python, rss_kib, summarize

SESSIONS = 1000


def demo_server(site: Path, name: str, profile_to: Path | None = None) -> Server:
    """server_demo on a free port (optionally under cProfile)."""
    prefix = [python(), "-m", "cProfile", "-o", str(profile_to)] if profile_to else [python()]
    args = [*prefix, "-m", "server_demo", "--port", "{port}", "--site", str(site), "--log-level", "warning"]
    return Server(args, name)


def sdk_server(mode: str, name: str, profile_to: Path | None = None) -> Server:
    """The Python SDK server (stateless JSON or stateful SSE) on a free port (optionally under cProfile)."""
    prefix = [python(), "-m", "cProfile", "-o", str(profile_to)] if profile_to else [python()]
    return Server([*prefix, "-m", "benchmarks.sdk_server", "--port", "{port}", "--mode", mode], name)


def loadgen(*args: str) -> dict[str, Any]:
    """Run the load generator once; its JSON output."""
    cmd = [python(), "-m", "benchmarks.loadgen", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen {' '.join(args)} failed: {done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def throughput(site: Path, calls: int, rounds: int) -> list[dict[str, Any]]:
    """calls/s, latency and server CPU per call: {demo, sdk} x {stateless, stateful} x {1, 16}."""
    with (
        demo_server(site, "server-demo") as demo,
        sdk_server("stateless", "sdk-stateless") as sdk_stateless,
        sdk_server("stateful", "sdk-stateful") as sdk_stateful,
    ):
        targets = {
            ("server_demo", "stateless"): (demo, "/mcp/stateless"),
            ("server_demo", "stateful"): (demo, "/mcp"),
            ("python-sdk", "stateless"): (sdk_stateless, "/mcp"),
            ("python-sdk", "stateful"): (sdk_stateful, "/mcp"),
        }
        configs = [
            (srv, mode, conc)
            for mode in ("stateless", "stateful")
            for conc in (1, 16)
            for srv in ("server_demo", "python-sdk")
        ]
        runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {c: [] for c in configs}
        for round_no in range(rounds):
            for srv, mode, conc in configs[round_no:] + configs[:round_no]:
                server, path = targets[(srv, mode)]
                n = calls if conc == 1 else calls * 3
                runs[(srv, mode, conc)].append(
                    loadgen(
                        "calls",
                        "--url",
                        server.url + path,
                        "--concurrency",
                        str(conc),
                        "--calls",
                        str(n),
                        "--server-pid",
                        str(server.pid),
                    )
                )
            log(f"server round {round_no + 1}/{rounds} done")
    rows = []
    for (srv, mode, conc), got in runs.items():
        cpu = [r["server_cpu_s"] / r["calls"] * 1000 for r in got]
        gen = [r["loadgen_cpu_s"] / r["calls"] * 1000 for r in got]
        rows.append(
            {
                "server": srv,
                "mode": mode,
                "concurrency": conc,
                **summarize(got),
                "server_cpu_ms_per_call": statistics.median(cpu),
                "loadgen_cpu_ms_per_call": statistics.median(gen),
            }
        )
    return rows


def idle_session_memory(site: Path) -> list[dict[str, Any]]:
    """RSS growth per idle stateful session with 1,000 sessions open, on fresh servers."""
    rows = []
    for srv in ("server_demo", "python-sdk"):
        server = demo_server(site, "mem-demo") if srv == "server_demo" else sdk_server("stateful", "mem-sdk")
        with server:
            url = server.url + "/mcp"
            loadgen("calls", "--url", url, "--concurrency", "1", "--calls", "20", "--warmup", "5")  # warm code paths
            time.sleep(0.5)
            before = rss_kib(server.pid)
            opened = loadgen("sessions", "--url", url, "--count", str(SESSIONS))
            time.sleep(1.0)
            after = rss_kib(server.pid)
        rows.append(
            {
                "server": srv,
                "sessions": opened["opened"],
                "errors": opened["error_count"],
                "rss_before_kib": before,
                "rss_after_kib": after,
                "kib_per_session": (after - before) / max(1, opened["opened"]),
            }
        )
        log(f"{srv}: {opened['opened']} sessions, {(after - before) / max(1, opened['opened']):.1f} KiB each")
    return rows


def server_profiles(site: Path, out_dir: Path, calls: int) -> dict[str, str]:
    """cProfile each server while the generator sends ``calls`` stateless calls at concurrency 16."""
    texts = {}
    for srv in ("server_demo", "python-sdk"):
        prof = out_dir / f"profile-{srv}.prof"
        if srv == "server_demo":
            server = demo_server(site, "profile-demo", prof)
            path = "/mcp/stateless"
        else:
            server = sdk_server("stateless", "profile-sdk", prof)
            path = "/mcp"
        with server:
            loadgen("calls", "--url", server.url + path, "--concurrency", "16", "--calls", str(calls))
        if prof.exists():
            buf = io.StringIO()
            pstats.Stats(str(prof), stream=buf).sort_stats("tottime").print_stats(20)
            texts[srv] = buf.getvalue()
    return texts

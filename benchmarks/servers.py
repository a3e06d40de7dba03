"""Part 3: server_demo against the official Python SDK server and the bare-ASGI floor, under wrk.

Throughput: wrk (``benchmarks/wrk.py``, one thread, its Lua script checks every answer) with 1 and 16
connections, for stateless JSON and stateful SSE, rounds interleaved across servers. The servers run
on core 0 and wrk on core 1 (``taskset``), so neither steals the other's CPU on a 2-core machine. All
three servers run under ``uvicorn.run`` with its defaults (uvloop, httptools, access log on) at log
level warning, so none writes a line. A stateful run shares one session (initialized from Python) among all
connections. Besides calls/s we record each server's own CPU time per call, read from /proc.
Memory: a fresh server, one warm-up session, then 1,000 idle stateful sessions (the Python load
generator, ``benchmarks/loadgen.py``); the RSS growth divided by 1,000.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from devtools.processes import stop_process
from devtools.services import HAProxy, RedisServer

from . import wrk
from .common import ROOT, Server, log, python, rss_kib
from .loadgen import cpu_seconds

SESSIONS = 1000
SERVER_CPU = 0
"""The core every benchmarked server is pinned to (wrk gets ``wrk.WRK_CPU``)."""
SERVERS = ("server_demo", "python-sdk", "bare-asgi")
PATHS = {  # (server, mode) -> endpoint path
    ("server_demo", "stateless"): "/mcp/stateless",
    ("server_demo", "stateful"): "/mcp",
    ("python-sdk", "stateless"): "/mcp",
    ("python-sdk", "stateful"): "/mcp",
    ("bare-asgi", "stateless"): "/mcp/stateless",
    ("bare-asgi", "stateful"): "/mcp",
}


def _pinned(args: list[str]) -> list[str]:
    """``args`` under ``taskset`` on :data:`SERVER_CPU` (when there are two cores or more to split)."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return args
    return ["taskset", "-c", str(SERVER_CPU), *args]


def demo_server(site: Path, name: str, profile_to: Path | None = None) -> Server:
    """server_demo on a free port (optionally under cProfile)."""
    prefix = [python(), "-m", "cProfile", "-o", str(profile_to)] if profile_to else [python()]
    args = [*prefix, "-m", "server_demo", "--port", "{port}", "--site", str(site), "--log-level", "warning"]
    return Server(_pinned(args), name)


def sdk_server(mode: str, name: str, profile_to: Path | None = None) -> Server:
    """The Python SDK server (stateless JSON or stateful SSE) on a free port (optionally under cProfile)."""
    prefix = [python(), "-m", "cProfile", "-o", str(profile_to)] if profile_to else [python()]
    return Server(_pinned([*prefix, "-m", "benchmarks.sdk_server", "--port", "{port}", "--mode", mode]), name)


def bare_server(name: str, profile_to: Path | None = None) -> Server:
    """The bare-ASGI floor (``benchmarks/bare_asgi.py``: both modes on one port) on a free port."""
    prefix = [python(), "-m", "cProfile", "-o", str(profile_to)] if profile_to else [python()]
    return Server(_pinned([*prefix, "-m", "benchmarks.bare_asgi", "--port", "{port}"]), name)


def loadgen(*args: str) -> dict[str, Any]:
    """Run the load generator once; its JSON output."""
    cmd = [python(), "-m", "benchmarks.loadgen", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen {' '.join(args)} failed: {done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def wrk_run(server: Server, path: str, mode: str, connections: int, duration_s: float) -> dict[str, Any]:
    """One checked wrk run; a stateful run opens its session first and ends it after."""
    url = server.url + path
    session_id = wrk.open_session(url) if mode == "stateful" else None
    try:
        return wrk.run(
            url, connections=connections, duration_s=duration_s, session_id=session_id, server_pid=server.pid
        )
    finally:
        wrk.close_session(url, session_id)


def throughput(site: Path, duration_s: float, rounds: int) -> list[dict[str, Any]]:
    """calls/s, latency and server CPU per call: {demo, sdk, bare} x {stateless, stateful} x {1, 16} connections."""
    with (
        demo_server(site, "server-demo") as demo,
        sdk_server("stateless", "sdk-stateless") as sdk_stateless,
        sdk_server("stateful", "sdk-stateful") as sdk_stateful,
        bare_server("bare-asgi") as bare,
    ):
        processes = {
            ("server_demo", "stateless"): demo,
            ("server_demo", "stateful"): demo,
            ("python-sdk", "stateless"): sdk_stateless,
            ("python-sdk", "stateful"): sdk_stateful,
            ("bare-asgi", "stateless"): bare,
            ("bare-asgi", "stateful"): bare,
        }
        for (srv, mode), server in processes.items():  # warm every code path before anything is timed
            wrk_run(server, PATHS[(srv, mode)], mode, 16, 1.0)
        configs = [(srv, mode, conc) for mode in ("stateless", "stateful") for conc in (1, 16) for srv in SERVERS]
        runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {c: [] for c in configs}
        for round_no in range(rounds):
            for srv, mode, conc in configs[round_no:] + configs[:round_no]:
                runs[(srv, mode, conc)].append(
                    wrk_run(processes[(srv, mode)], PATHS[(srv, mode)], mode, conc, duration_s)
                )
            log(f"server round {round_no + 1}/{rounds} done")
    rows = []
    for (srv, mode, conc), got in runs.items():
        rates = [r["calls_per_s"] for r in got]
        cpu = [r["server_cpu_s"] / r["calls"] * 1000 for r in got if r["server_cpu_s"] is not None]
        rows.append(
            {
                "server": srv,
                "mode": mode,
                "concurrency": conc,
                "calls_per_s": statistics.median(rates),
                "calls_per_s_runs": [round(x, 1) for x in rates],
                "p50_ms": statistics.median(r["p50_ms"] for r in got),
                "p99_ms": statistics.median(r["p99_ms"] for r in got),
                "samples": sum(r["calls"] for r in got),
                "server_cpu_ms_per_call": statistics.median(cpu) if cpu else None,
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


def server_profiles(site: Path, out_dir: Path, duration_s: float) -> dict[str, str]:
    """cProfile each server while wrk sends stateless calls over 16 connections for ``duration_s``."""
    texts = {}
    for srv in SERVERS:
        prof = out_dir / f"profile-{srv}.prof"
        if srv == "server_demo":
            server = demo_server(site, "profile-demo", prof)
        elif srv == "python-sdk":
            server = sdk_server("stateless", "profile-sdk", prof)
        else:
            server = bare_server("profile-bare", prof)
        with server:
            wrk_run(server, PATHS[(srv, "stateless")], "stateless", 16, duration_s)
        if prof.exists():
            buf = io.StringIO()
            pstats.Stats(str(prof), stream=buf).sort_stats("tottime").print_stats(20)
            texts[srv] = buf.getvalue()
    return texts


SCALING = {  # config -> what it is (part 3's second table)
    "memory": "1 replica, in-memory store (the default)",
    "redis": "1 replica, `--store redis://`",
    "redis-haproxy": "1 replica, `--store redis://`, behind HAProxy",
    "redis-2-haproxy": "2 replicas, `--store redis://`, behind HAProxy (round robin, no affinity)",
    "queue": "`--backend redis-queue` front + 1 `worker`",
}


class _Worker:
    """``python -m server_demo worker`` as a child process (no port: ready once its log says so)."""

    def __init__(self, redis_url: str, name: str) -> None:
        self.log_path = ROOT / "benchmarks" / "results" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        command = [python(), "-m", "server_demo", "worker", "--redis", redis_url, "--log-level", "warning"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while "ready" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker did not start: {self.log_path.read_text(errors='replace')[-500:]}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def stop(self) -> None:
        """Stop and reap it."""
        stop_process(self.proc, timeout=5)
        self._log.close()


def _scaled(config: str, site: Path, redis_url: str, stack: contextlib.ExitStack) -> tuple[str, list[int]]:
    """Start ``config``'s processes on ``stack``: the base URL and the pids of its server_demo processes."""
    base = [python(), "-m", "server_demo", "--port", "{port}", "--site", str(site), "--log-level", "warning"]
    if config == "memory":
        demo = stack.enter_context(Server(base, "scale-memory"))
        return demo.url, [demo.pid]
    if config == "queue":
        front = stack.enter_context(Server([*base, "--backend", "redis-queue", "--redis", redis_url], "scale-queue"))
        worker = _Worker(redis_url, "scale-queue-worker")
        stack.callback(worker.stop)
        return front.url, [front.pid, worker.pid]
    count = 2 if config == "redis-2-haproxy" else 1
    replicas = [stack.enter_context(Server([*base, "--store", redis_url], f"scale-r{i}")) for i in range(count)]
    pids = [r.pid for r in replicas]
    if config == "redis":
        return replicas[0].url, pids
    proxy = stack.enter_context(HAProxy([r.port for r in replicas]))
    return proxy.url, pids


def scaling(site: Path, duration_s: float, rounds: int) -> dict[str, Any]:
    """calls/s over 16 connections with the Redis store, replicas behind HAProxy, and the queue workers.

    Not pinned (on 2 cores, 2 replicas plus wrk, Redis and HAProxy cannot each have a core): this table
    shows what each layer costs next to the in-memory default, not how far replicas scale. CPU per call
    is that of every server_demo process (replicas, front, worker) and, separately, Redis.
    """
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {(c, m): [] for c in SCALING for m in ("stateless", "stateful")}
    with RedisServer() as redis:
        redis_pid = redis.proc.pid
        for config in SCALING:
            with contextlib.ExitStack() as stack:
                url, pids = _scaled(config, site, redis.url, stack)
                for mode in ("stateless", "stateful"):
                    path = PATHS[("server_demo", mode)]
                    wrk_run_pids(url + path, mode, 16, 1.0, [])  # warm-up
                    for _ in range(rounds):
                        rows[(config, mode)].append(wrk_run_pids(url + path, mode, 16, duration_s, [*pids, redis_pid]))
            log(f"scaling: {config} done")
    out = []
    for (config, mode), got in rows.items():
        out.append(
            {
                "config": config,
                "mode": mode,
                "calls_per_s": statistics.median(r["calls_per_s"] for r in got),
                "calls_per_s_runs": [round(r["calls_per_s"], 1) for r in got],
                "p50_ms": statistics.median(r["p50_ms"] for r in got),
                "p99_ms": statistics.median(r["p99_ms"] for r in got),
                "server_cpu_ms_per_call": statistics.median(sum(r["cpu_s"][:-1]) / r["calls"] * 1000 for r in got),
                "redis_cpu_ms_per_call": statistics.median(r["cpu_s"][-1] / r["calls"] * 1000 for r in got),
            }
        )
    return {"rows": out, "configs": SCALING}


def wrk_run_pids(url: str, mode: str, connections: int, duration_s: float, pids: list[int]) -> dict[str, Any]:
    """A checked wrk run (as :func:`wrk_run`), not pinned, with the CPU seconds each of ``pids`` used."""
    session_id = wrk.open_session(url) if mode == "stateful" else None
    try:
        before = [cpu_seconds(pid) for pid in pids]
        got = wrk.run(url, connections=connections, duration_s=duration_s, session_id=session_id, pin=False)
        got["cpu_s"] = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
        return got
    finally:
        wrk.close_session(url, session_id)

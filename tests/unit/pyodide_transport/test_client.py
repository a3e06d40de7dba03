"""Client tests: every scenario of client_scenarios.py under pytest, plus pytest-only checks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

try:  # pytest's default (rootdir-less) import mode
    from client_scenarios import SCENARIOS
except ImportError:  # package layout
    from .client_scenarios import SCENARIOS  # type: ignore[no-redef,import-not-found,unused-ignore]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__.removeprefix("scenario_") for s in SCENARIOS])
async def test_scenario(scenario: Callable[[], Awaitable[None]]) -> None:
    await scenario()


def test_scenarios_are_collected() -> None:
    assert len(SCENARIOS) >= 40


def test_import_does_not_load_method_maps() -> None:
    """``import pyodide_transport.client`` must not pull in ``mcp_types.methods`` (slow in Pyodide)."""
    code = "import sys, pyodide_transport.client; print('mcp_types.methods' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_names() -> None:
    import pyodide_transport
    from pyodide_transport import client

    assert pyodide_transport.Client is client.Client
    for name in client.__all__:
        assert hasattr(client, name), name

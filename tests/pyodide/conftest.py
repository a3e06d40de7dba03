"""Fixtures for the Pyodide tier: one real Pyodide (in Node) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from node_runtime import NodePyodide


@pytest.fixture(scope="session")
def pyodide() -> Iterator[NodePyodide]:
    """A booted Pyodide with pyodide-transport and its dependencies loaded from site/dist."""
    runtime = NodePyodide()
    try:
        yield runtime
    finally:
        runtime.close()

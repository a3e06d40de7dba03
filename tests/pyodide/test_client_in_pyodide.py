"""The Client scenarios of the CPython suite, run unchanged inside real Pyodide.

``tests/unit/pyodide_transport/client_scenarios.py`` holds plain async
functions; here each one is awaited inside Pyodide (Node), with the package
loaded from our wheel, so the session layer is proven on the browser runtime.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from node_runtime import NodePyodide

SCENARIO_FILE = Path(__file__).resolve().parents[1] / "unit" / "pyodide_transport" / "client_scenarios.py"
SCENARIOS = [
    node.name
    for node in ast.parse(SCENARIO_FILE.read_text()).body
    if isinstance(node, ast.AsyncFunctionDef) and node.name.startswith("scenario_")
]

RUN = """
import sys
from tests.unit.pyodide_transport import client_scenarios
import pyodide_transport
assert "site-packages" in pyodide_transport.__file__, pyodide_transport.__file__
pyodide_transport.install_scheduler({batched})
try:
    await client_scenarios.{name}()
finally:
    pyodide_transport.install_scheduler(True)
sys.platform
"""


def test_scenarios_found() -> None:
    assert len(SCENARIOS) >= 30


@pytest.mark.parametrize("scheduler", ["webloop", "batched"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_client_scenario_in_pyodide(pyodide: NodePyodide, name: str, scheduler: str) -> None:
    """Each scenario under Pyodide's own scheduling and under our batching scheduler."""
    code = RUN.format(name=name, batched=scheduler == "batched")
    assert pyodide.run(code, timeout=60) == "emscripten"

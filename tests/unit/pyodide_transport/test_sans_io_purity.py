"""The sans-I/O core must import no browser, asyncio, socket or HTTP I/O module.

Two independent checks: the imports written in each module's source (AST,
including imports inside functions and ``TYPE_CHECKING`` blocks), and a real
import in a fresh interpreter where those modules are poisoned.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pyodide_transport

PACKAGE_DIR = Path(pyodide_transport.__file__).parent
PURE_MODULES = ["sse", "streamable_http", "backoff", "messages", "errors", "transport"]
FORBIDDEN = [
    "js",
    "pyodide",
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "select",
    "http",
    "urllib.request",
    "httpx",
    "aiohttp",
    "requests",
    "websockets",
    "threading",
    "subprocess",
    "concurrent",
]
FORBIDDEN_SIBLINGS = ["_browser", "fetch", "websocket", "memory"]  # adapters and asyncio-based modules


def _is_forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def _is_impure_sibling(name: str) -> bool:
    return name.startswith(".") and name.lstrip(".").split(".")[0] in FORBIDDEN_SIBLINGS


def _imports(path: Path) -> list[tuple[int, str]]:
    """Absolute module names imported anywhere in ``path``; relative ones as ``.name``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.append((node.lineno, base))
            if node.level and not node.module:  # from . import x
                found += [(node.lineno, "." + alias.name) for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((node.lineno, arg.value))
    return found


@pytest.mark.parametrize("module", PURE_MODULES)
def test_source_imports_no_io_module(module: str) -> None:
    path = PACKAGE_DIR / f"{module}.py"
    bad = [f"line {line}: {name}" for line, name in _imports(path) if _is_forbidden(name) or _is_impure_sibling(name)]
    assert not bad, f"{module}.py imports I/O or browser modules: {bad}"


def test_detector_catches_forbidden_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import json\nimport asyncio.events\nfrom http import client\nfrom . import memory\n"
        "def f():\n    import js\n    __import__('socket')\n"
    )
    names = [name for _, name in _imports(sample)]
    assert [n for n in names if _is_forbidden(n)] == ["asyncio.events", "http", "js", "socket"]
    assert ".memory" in names


_PROBE = """
import importlib, json, sys, types
# The runtime dependencies may use such modules internally; load them first, then poison.
import pydantic, mcp_types, mcp_types.jsonrpc, mcp_types.version
forbidden = json.loads(sys.argv[1])
for name in list(sys.modules):
    if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
        sys.modules[name] = None
for name in forbidden:
    sys.modules[name] = None
# Load the submodules without the package __init__ (which wires in the asyncio-based transports).
package = types.ModuleType("pyodide_transport")
package.__path__ = [sys.argv[2]]
sys.modules["pyodide_transport"] = package
for sibling in json.loads(sys.argv[4]):
    sys.modules["pyodide_transport." + sibling] = None
for module in json.loads(sys.argv[3]):
    importlib.import_module("pyodide_transport." + module)
print("ok")
"""


def test_modules_import_with_io_modules_poisoned() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            json.dumps(FORBIDDEN),
            str(PACKAGE_DIR),
            json.dumps(PURE_MODULES),
            json.dumps(FORBIDDEN_SIBLINGS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_probe_fails_when_a_module_imports_io(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import asyncio\n")
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(FORBIDDEN), str(tmp_path), json.dumps(["bad"]), "[]"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "asyncio" in result.stderr

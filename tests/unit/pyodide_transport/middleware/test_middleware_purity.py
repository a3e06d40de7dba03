"""The middleware's decision modules are sans-I/O: no asyncio, browser, socket or HTTP module.

``test_sans_io_purity.py`` resolves its ``PURE_MODULES`` as top-level files of the package and
imports them with only the top-level package stubbed, so it cannot take a subpackage's modules;
this is the same two checks (the source's imports, and a real import with those modules
poisoned) for ``pyodide_transport.middleware``.
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
MIDDLEWARE_DIR = PACKAGE_DIR / "middleware"
PURE = ["_base", "policy_core", "breaker_core", "redaction"]
SHELLS = ["policy", "breaker", "bridge", "logging_transport"]  # asyncio or logging shells
PACKAGE_IMPURE = ["_browser", "fetch", "websocket", "memory", "client", "cpython", "connection", "oauth", "encrypted"]
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
    "logging",
    "time",
]


def _imports(path: Path) -> list[tuple[int, int, str]]:
    """``(line, level, module)`` of every import in ``path`` (level: leading dots)."""
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, 0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.level, node.module or ""))
            if node.level and not node.module:
                found += [(node.lineno, node.level, alias.name) for alias in node.names]
    return found


def _bad(level: int, name: str) -> bool:
    top = name.split(".")[0]
    if level == 0:
        return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    if level == 1:
        return top in SHELLS
    return top in PACKAGE_IMPURE


@pytest.mark.parametrize("module", PURE)
def test_source_imports_no_io_module(module: str) -> None:
    bad = [
        f"line {line}: {'.' * lvl}{name}"
        for line, lvl, name in _imports(MIDDLEWARE_DIR / f"{module}.py")
        if _bad(lvl, name)
    ]
    assert not bad, f"middleware/{module}.py imports I/O or shell modules: {bad}"


def test_the_detector_catches_them(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nfrom .policy import x\nfrom ..memory import y\nfrom ..messages import z\n")
    assert [(lvl, n) for _, lvl, n in _imports(sample) if _bad(lvl, n)] == [
        (0, "asyncio"),
        (1, "policy"),
        (2, "memory"),
    ]


_PROBE = """
import importlib, json, sys, types
import pydantic, mcp_types, mcp_types.jsonrpc, mcp_types.version
forbidden, package_dir, impure, shells, modules = (json.loads(a) for a in sys.argv[1:6])
for name in list(sys.modules):
    if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
        sys.modules[name] = None
for name in forbidden:
    sys.modules[name] = None
for name, path, poisoned in (
    ("pyodide_transport", package_dir, impure),
    ("pyodide_transport.middleware", package_dir + "/middleware", shells),
):
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
    for sibling in poisoned:
        sys.modules[name + "." + sibling] = None
for module in modules:
    importlib.import_module("pyodide_transport.middleware." + module)
print("ok")
"""


def _probe(modules: list[str], shells: list[str] = SHELLS) -> subprocess.CompletedProcess[str]:
    """Import ``modules`` of the middleware in a fresh interpreter with I/O modules and ``shells`` poisoned."""
    args = [FORBIDDEN, str(PACKAGE_DIR), PACKAGE_IMPURE, shells, modules]
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *(json.dumps(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_modules_import_with_io_modules_poisoned() -> None:
    result = _probe(PURE)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_probe_fails_for_a_shell() -> None:
    result = _probe(["bridge"], shells=[])
    assert result.returncode != 0 and "asyncio" in result.stderr

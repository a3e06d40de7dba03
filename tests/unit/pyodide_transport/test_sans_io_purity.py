"""The sans-I/O core must import no browser, asyncio, socket or HTTP I/O module.

Two independent checks: the imports written in each module's source (AST,
including imports inside functions and ``TYPE_CHECKING`` blocks), and a real
import in a fresh interpreter where those modules are poisoned. Both run over
the client package's pure modules (the middleware's decision modules included)
and over the demo server's decision modules (its dispatcher, HTTP rules and
2026-07-28 envelope checks).
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
PURE_MODULES = [
    "sse",
    "streamable_http",
    "websocket_core",
    "session",
    "wire",
    "backoff",
    "messages",
    "errors",
    "transport",
    "oauth_core",
    "envelope",
    "apps",
    "check_report",
    "middleware._base",
    "middleware.policy_core",
    "middleware.breaker_core",
    "middleware.redaction",
]
MIDDLEWARE_SHELLS = ["policy", "breaker", "bridge", "logging_transport"]  # the middleware's asyncio shells
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
    "redis",
    "threading",
    "subprocess",
    "concurrent",
]
FORBIDDEN_SIBLINGS = [
    "_browser",
    "fetch",
    "websocket",
    "memory",
    "client",
    "cpython",
    "connection",
    "oauth",
    "encrypted",
    "port",
]  # adapters and asyncio-based modules
SERVER_DIR = PACKAGE_DIR.parent / "server_demo"
SERVER_PURE_MODULES = ["dispatch", "errors", "http_rules", "modern", "gateway_core", "queue_core"]
SERVER_IMPURE_SIBLINGS = [
    "core",
    "http",
    "websocket",
    "stdio",
    "app",
    "demo",
    "__main__",
    "gateway",
    "gateway_router",
    "gateway_shared",
    "queue",
    "queue_worker",
    "queue_backend",
]  # sessions and adapters


def _is_forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def _is_impure_sibling(name: str, siblings: list[str] = FORBIDDEN_SIBLINGS) -> bool:
    return name.startswith(".") and name.lstrip(".").split(".")[0] in siblings


def _is_impure_in(name: str, package: str, siblings: list[str]) -> bool:
    """Whether ``name`` is an absolute import of one of ``package``'s impure modules."""
    return any(name == f"{package}.{s}" or name.startswith(f"{package}.{s}.") for s in siblings)


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
    path = PACKAGE_DIR / f"{module.replace('.', '/')}.py"
    siblings = [*FORBIDDEN_SIBLINGS, *MIDDLEWARE_SHELLS]
    bad = [
        f"line {line}: {name}"
        for line, name in _imports(path)
        if _is_forbidden(name) or _is_impure_sibling(name, siblings)
    ]
    assert not bad, f"{module}.py imports I/O or browser modules: {bad}"


@pytest.mark.parametrize("module", SERVER_PURE_MODULES)
def test_server_source_imports_no_io_module(module: str) -> None:
    path = SERVER_DIR / f"{module}.py"
    bad = [
        f"line {line}: {name}"
        for line, name in _imports(path)
        if _is_forbidden(name)
        or _is_impure_sibling(name, SERVER_IMPURE_SIBLINGS)
        or _is_impure_in(name, "server_demo", SERVER_IMPURE_SIBLINGS)
        or _is_impure_in(name, "pyodide_transport", FORBIDDEN_SIBLINGS)
    ]
    assert not bad, f"server_demo/{module}.py imports I/O modules or the session/adapters: {bad}"


def test_detector_catches_forbidden_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import json\nimport asyncio.events\nfrom http import client\nfrom . import memory\n"
        "def f():\n    import js\n    __import__('socket')\n"
    )
    names = [name for _, name in _imports(sample)]
    assert [n for n in names if _is_forbidden(n)] == ["asyncio.events", "http", "js", "socket"]
    assert ".memory" in names
    assert _is_impure_sibling(".core", SERVER_IMPURE_SIBLINGS) and not _is_impure_sibling(
        ".config", SERVER_IMPURE_SIBLINGS
    )
    assert _is_impure_in("server_demo.http", "server_demo", SERVER_IMPURE_SIBLINGS)
    assert not _is_impure_in("server_demo.http_rules", "server_demo", SERVER_IMPURE_SIBLINGS)


_PROBE = """
import importlib, json, sys, types
# The runtime dependencies may use such modules internally; load them first, then poison.
import pydantic, mcp_types, mcp_types.jsonrpc, mcp_types.version, mcp_types.methods
forbidden = json.loads(sys.argv[1])
for name in list(sys.modules):
    if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
        sys.modules[name] = None
for name in forbidden:
    sys.modules[name] = None
# Load the submodules without the packages' __init__ (which wire in the asyncio-based parts);
# the packages' impure modules are poisoned too.
for name, path, siblings in json.loads(sys.argv[2]):
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
    for sibling in siblings:
        sys.modules[name + "." + sibling] = None
for module in json.loads(sys.argv[3]):
    importlib.import_module(module)
print("ok")
"""

_CLIENT_PACKAGE = ("pyodide_transport", str(PACKAGE_DIR), FORBIDDEN_SIBLINGS)
_MIDDLEWARE_PACKAGE = ("pyodide_transport.middleware", str(PACKAGE_DIR / "middleware"), MIDDLEWARE_SHELLS)
_SERVER_PACKAGE = ("server_demo", str(SERVER_DIR), SERVER_IMPURE_SIBLINGS)


def _probe(packages: list[tuple[str, str, list[str]]], modules: list[str]) -> subprocess.CompletedProcess[str]:
    """Import ``modules`` (dotted names) in a fresh interpreter with I/O modules poisoned."""
    return subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(FORBIDDEN), json.dumps(packages), json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_modules_import_with_io_modules_poisoned() -> None:
    result = _probe([_CLIENT_PACKAGE, _MIDDLEWARE_PACKAGE], [f"pyodide_transport.{m}" for m in PURE_MODULES])
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_server_modules_import_with_io_modules_poisoned() -> None:
    result = _probe([_CLIENT_PACKAGE, _SERVER_PACKAGE], [f"server_demo.{m}" for m in SERVER_PURE_MODULES])
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_probe_fails_when_a_module_imports_io(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import asyncio\n")
    result = _probe([("sample", str(tmp_path), [])], ["sample.bad"])
    assert result.returncode != 0
    assert "asyncio" in result.stderr


def test_probe_fails_when_a_module_imports_an_impure_sibling(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("from . import core\n")
    result = _probe([("sample", str(tmp_path), ["core"])], ["sample.bad"])
    assert result.returncode != 0
    assert "core" in result.stderr

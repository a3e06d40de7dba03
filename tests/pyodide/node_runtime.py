"""A real Pyodide interpreter in a Node process, driven from pytest.

The driver and its Node runner ship in the package (:class:`pyodide_transport.check.NodePyodide`,
``pyodide_transport/_node_runner.mjs``); here it boots from the repository's ``site/dist/pyodide``
with this ``tests/`` folder mounted as the package ``tests`` in Pyodide's site-packages, so suites
written as plain modules import there as they do in CPython (``import tests.pyodide.transport_scenarios``),
and ``server_demo/`` mounted as ``server_demo`` (its core is pure Python: a server can run in Pyodide
at the other end of a ``MessageChannel``).
A Python exception inside Pyodide becomes :class:`PyodideError` carrying the Pyodide traceback.
"""

from __future__ import annotations

from devtools import DIST, ROOT
from pyodide_transport.check import NodePyodide as _NodePyodide
from pyodide_transport.check import PyodideError

__all__ = ["NodePyodide", "PyodideError"]


class NodePyodide(_NodePyodide):
    """Pyodide from ``site/dist`` with ``tests/`` and ``server_demo/`` importable; one per test session."""

    def __init__(self, boot_timeout: float = 120.0) -> None:
        if not (DIST / "pyodide" / "pyodide-lock.json").exists():
            raise RuntimeError("site/dist is not built: run `python build.py site` first")
        super().__init__(
            DIST / "pyodide",
            mounts={"tests": ROOT / "tests", "server_demo": ROOT / "server_demo"},
            boot_timeout=boot_timeout,
        )

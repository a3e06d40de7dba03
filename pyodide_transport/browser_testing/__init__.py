"""Test an MCP server from a real browser: our client in Pyodide, in headless Chromium or Node, driven from CPython.

Installed with ``pip install "pyodide-transport[browser-testing]"``:

* ``pyodide-transport check URL`` (:mod:`.cli`): the browser-compatibility report, with the
  transport half run in a real page; text, JSON or JUnit XML; exit 0/1/2.
* a pytest plugin (:mod:`.plugin`, registered through ``pytest11``): the ``browser_mcp`` fixture,
  ``--mcp-url``, the ``mcp_runtime`` marker and ``--mcp-browser-check URL``.
* :mod:`.session`: the same from Python (:class:`BrowserMCP` on a :class:`ChromiumRuntime` or
  :class:`NodeRuntime`).
* :mod:`.runtime`: the offline Pyodide folder they boot from, fetched once into a user cache with
  the site build's pins and integrity checks.

:mod:`.harness` is the part that runs inside Pyodide. Names are imported on first use, so
importing this package there (or in pytest) loads no browser driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import RuntimeSetupError, ensure_runtime
    from .session import BrowserCodeError, BrowserMCP, ChromiumRuntime, NodeRuntime, find_chromium, start_runtime

__all__ = [
    "BrowserCodeError",
    "BrowserMCP",
    "ChromiumRuntime",
    "NodeRuntime",
    "RuntimeSetupError",
    "ensure_runtime",
    "find_chromium",
    "start_runtime",
]

_HOMES = {"RuntimeSetupError": "runtime", "ensure_runtime": "runtime"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES.get(name, 'session')}", __name__), name)

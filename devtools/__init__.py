"""Helpers for the tests, the benchmarks and the stress runs: one place, never shipped in the wheel.

Importable from the repository root (pytest's ``pythonpath``, ``python -m benchmarks``):

* :mod:`devtools.ports`: free loopback ports, waiting for a listener.
* :mod:`devtools.processes`: stopping subprocesses, their memory.
* :mod:`devtools.servers`: the demo server (or any server) in a subprocess, an app under uvicorn in-process.
* :mod:`devtools.chromium`: launch options, the executable to drive, the loopback guard.
* :mod:`devtools.transports`: the shipped CPython adapters plus what tests inspect (a request log, raw frames).
* :mod:`devtools.reliability`: servers and waits shared by the fault, security and load tiers.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DIST", "ROOT"]

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""

DIST = ROOT / "site" / "dist"
"""The built site (``python build.py site``); its ``pyodide/`` folder is the Pyodide runtime."""

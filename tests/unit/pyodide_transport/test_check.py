"""``python -m pyodide_transport.check``: all green on the demo server, red on a broken one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pyodide"))

from transport_adapters import shared_conftest

from pyodide_transport import check

ROOT = Path(__file__).resolve().parents[3]
# The demo app with one CORS bug: Mcp-Session-Id is sent but not exposed to scripts.
HIDDEN_SESSION_APP = """
import sys, uvicorn
from server_demo.app import create_app

inner = create_app()

async def app(scope, receive, send):
    async def strip(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [
                (k, v) for k, v in message["headers"] if k.lower() != b"access-control-expose-headers"
            ]}
        await send(message)
    await inner(scope, receive, strip if scope["type"] == "http" else send)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture
def broken_server() -> Iterator[str]:
    shared = shared_conftest()
    port = shared.free_port()
    proc = subprocess.Popen([sys.executable, "-c", HIDDEN_SESSION_APP, str(port)], cwd=ROOT)
    try:
        shared.wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
    assert "[PASS] tools listed: 26 tools" in out
    assert out.rstrip().endswith("A browser client can fully use this server.")


def test_hidden_session_id_fails(broken_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([broken_server]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] Mcp-Session-Id exposed: the server sets Mcp-Session-Id but does not list it" in out
    assert "1 blocking problem(s)." in out


def test_foreign_origin_refused_fails_the_preflight(demo_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([demo_server.url + "/mcp", "--origin", "http://app.example.invalid", "--json"]) == 1
    seen = statuses(capsys.readouterr().out)
    assert seen["CORS preflight for POST"] == "fail"


def test_conformance_mode_needs_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_CONFORMANCE_SCENARIO", "initialize")
    assert check.main([]) == 2

"""The browser-testing tooling as a server author gets it: built, installed in a fresh virtualenv, run offline.

One module-scoped fixture builds our wheel, installs ``pyodide_transport-*.whl[browser-testing]``
into a new virtualenv outside this repository and runs ``pyodide-transport runtime`` once (the only
step with network: it fills a fresh cache). Then a driver runs inside a network namespace with
no network at all (only its own loopback): it starts the demo server and a deliberately broken
one, and runs from that virtualenv, in a folder outside the repository, with no ``PYTHONPATH``:

* ``pyodide-transport check`` against both, in Chromium and in Node-Pyodide, as JSON and JUnit,
  and in Chromium against a server that wants a token, given with ``--header``;
* a server author's small pytest file using the plugin's fixtures in both runtimes;
* ``pytest --mcp-browser-check`` against the broken server.

The Chromium is found by the tool itself (no ``PT_CHROMIUM``): Playwright's own, else one on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from devtools import ROOT

pytestmark = pytest.mark.e2e

USER_TESTS = """
import pytest
from pyodide_transport.browser_testing import BrowserCodeError


async def test_echo(browser_mcp):
    result = await browser_mcp.call_tool("echo", {"message": "hi from a browser"})
    assert result.content[0].text == "hi from a browser"
    assert not result.is_error


@pytest.mark.mcp_runtime("chromium", "node")
async def test_snippets_run_in_pyodide(browser_mcp, mcp_runtime):
    assert await browser_mcp.run("import sys\\nsys.platform") == "emscripten"
    names = await browser_mcp.run("names = [t.name for t in (await client.list_tools()).tools]\\nnames")
    assert "echo" in names
    assert await browser_mcp.run("len(names)") == len(names)  # names stay for the next snippet
    assert browser_mcp.protocol_version == "2026-07-28"


@pytest.mark.mcp_runtime("node")
async def test_server_errors_come_back_typed(browser_mcp):
    with pytest.raises(BrowserCodeError) as caught:
        await browser_mcp.call_tool("no_such_tool", {})
    assert caught.value.type_name == "MCPError"
    assert caught.value.code == -32602


def test_a_plain_test_still_runs():
    assert True


@pytest.fixture
def mcp_client_setup():  # runs in the page; the handlers it defines answer the server's requests
    return '''
from mcp_types import CreateMessageResult, TextContent

async def sampling_handler(params):
    print("sampling asked:", params.messages[0].content.text)
    return CreateMessageResult(role="assistant", content=TextContent(type="text", text="four"), model="page")
'''


async def test_the_page_answers_sampling(browser_mcp):
    result = await browser_mcp.call_tool("test_sampling", {"prompt": "2+2?"})
    assert result.content[0].text == "LLM response: four"
"""

# Runs under `unshare -n` with the repository's interpreter: brings up the namespace's loopback,
# starts the two servers there, runs the installed tool's commands and writes what they did.
DRIVER = r"""
import fcntl, json, os, socket, struct, subprocess, sys
from pathlib import Path

config = json.loads(sys.argv[1])
if config["netns"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]  # SIOCGIFFLAGS
    fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))  # SIOCSIFFLAGS: IFF_UP

from devtools.servers import BEARER_COMMAND, BEARER_TOKEN, HIDDEN_SESSION_COMMAND, DemoServer, ServerProcess

env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PT_CHROMIUM", "VIRTUAL_ENV")}
env.update(config["env"])
work = Path(config["work"])
results = {}

def tool(name, *cmd):
    done = subprocess.run(list(cmd), cwd=work, env=env, capture_output=True, text=True, timeout=400)
    results[name] = {"rc": done.returncode, "out": done.stdout, "err": done.stderr[-4000:]}

with DemoServer(site=None, quiet=True) as good, ServerProcess(HIDDEN_SESSION_COMMAND, quiet=True) as bad:
    bin_ = Path(config["bin"])
    probe = "import pyodide_transport, sys; print(pyodide_transport.__file__); print(sys.prefix)"
    tool("where", str(bin_ / "python"), "-c", probe)
    for runtime in ("chromium", "node"):
        for label, server in (("good", good), ("bad", bad)):
            url = server.url + "/mcp"
            tool(f"check-{label}-{runtime}", str(bin_ / "pyodide-transport"), "check", url,
                 "--runtime", runtime, "--format", "json")
    with ServerProcess(BEARER_COMMAND, quiet=True) as locked:
        tool("check-bearer", str(bin_ / "pyodide-transport"), "check", locked.url + "/mcp", "--format", "json",
             "--header", f"Authorization: Bearer {BEARER_TOKEN}")
    tool("check-junit", str(bin_ / "pyodide-transport"), "check", bad.url + "/mcp", "--format", "junit",
         "--output", str(work / "check.xml"))
    tool("pytest", str(bin_ / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-rA",
         "--mcp-url", good.url + "/mcp", "--junitxml", str(work / "user.xml"), "test_my_server.py")
    tool("pytest-check", str(bin_ / "python"), "-m", "pytest", "-p", "no:cacheprovider",
         "--mcp-browser-check", bad.url + "/mcp", "test_my_server.py::test_a_plain_test_still_runs")
Path(config["out"]).write_text(json.dumps(results))
"""


def _netns() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Build, install in a fresh virtualenv, fetch the runtime once; then run the driver offline."""
    base = tmp_path_factory.mktemp("installed-tooling")
    assert not base.resolve().is_relative_to(ROOT)
    wheels, env_dir, work, cache = base / "wheels", base / "venv", base / "work", base / "cache"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = wheels.glob("pyodide_transport-*-py3-none-any.whl")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_ = env_dir / "bin"
    subprocess.run(
        [
            str(bin_ / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"{wheel}[browser-testing]",
        ],
        check=True,
        cwd=work,
    )
    tool_env = {"PYODIDE_TRANSPORT_CACHE": str(cache)}
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PT_CHROMIUM", "VIRTUAL_ENV")}
    fetched = subprocess.run(
        [str(bin_ / "pyodide-transport"), "runtime"],
        cwd=work,
        env={**clean, **tool_env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert fetched.returncode == 0, fetched.stderr
    runtime = Path(fetched.stdout.strip())
    assert runtime.is_relative_to(cache) and (runtime / "pyodide.asm.wasm").is_file()

    (work / "test_my_server.py").write_text(USER_TESTS)
    out = base / "results.json"
    netns = _netns()
    config = {"netns": netns, "env": tool_env, "work": str(work), "bin": str(bin_), "out": str(out)}
    command = [sys.executable, "-c", DRIVER, json.dumps(config)]
    subprocess.run(
        (["unshare", "-n"] if netns else []) + command,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=1500,
    )
    results: dict[str, Any] = json.loads(out.read_text())
    return {"results": results, "netns": netns, "work": work, "venv": env_dir}


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {c["name"].split(" from ")[0]: c["status"] for c in json.loads(result["out"])}


def test_runs_from_the_virtualenv_without_this_repository(installed: dict[str, Any]) -> None:
    where = installed["results"]["where"]
    module, prefix = where["out"].split()
    assert Path(module).is_relative_to(installed["venv"]), module
    assert not Path(module).resolve().is_relative_to(ROOT)
    assert Path(prefix) == installed["venv"]
    if not installed["netns"]:
        pytest.skip("no network namespace here: offline runs not proven")


@pytest.mark.parametrize("runtime", ["chromium", "node"])
def test_check_is_all_green_on_the_demo_server(installed: dict[str, Any], runtime: str) -> None:
    result = installed["results"][f"check-good-{runtime}"]
    assert result["rc"] == 0, result
    seen = statuses(result)
    assert "fail" not in seen.values() and "warn" not in seen.values(), seen
    for name in (
        "CORS preflight for POST",
        "Mcp-Session-Id exposed",
        "connect with FetchTransport",
        "tools listed",
        "SSE streaming",
        "GET stream",
        "DELETE ends the session",
    ):
        assert seen[name] == "pass", (name, seen)
    assert seen["runtime"] == "info"
    detail = next(c["detail"] for c in json.loads(result["out"]) if c["name"] == "runtime")
    assert detail.startswith("Chromium " if runtime == "chromium" else "Node")


@pytest.mark.parametrize(
    ("runtime", "failing"),
    [
        # The page cannot read the session id, so the handshake-era session breaks in the browser.
        ("chromium", {"Mcp-Session-Id exposed", "handshake-era session"}),
        # Node's fetch has no CORS: only the probe sees the hidden header.
        ("node", {"Mcp-Session-Id exposed"}),
    ],
)
def test_check_names_exactly_what_the_broken_server_gets_wrong(
    installed: dict[str, Any], runtime: str, failing: set[str]
) -> None:
    result = installed["results"][f"check-bad-{runtime}"]
    assert result["rc"] == 1, result
    seen = statuses(result)
    assert {name for name, status in seen.items() if status == "fail"} == failing, seen
    checks = {c["name"].split(" from ")[0]: c["detail"] for c in json.loads(result["out"])}
    assert "Access-Control-Expose-Headers" in checks["Mcp-Session-Id exposed"]
    if runtime == "chromium":
        assert "could not read Mcp-Session-Id" in checks["handshake-era session"]


def test_a_token_given_with_header_is_sent_from_the_page(installed: dict[str, Any]) -> None:
    result = installed["results"]["check-bearer"]
    assert result["rc"] == 0, result
    seen = statuses(result)
    assert seen["connect with FetchTransport"] == seen["tools listed"] == seen["DELETE ends the session"] == "pass"
    assert seen["runtime"] == "info" and "fail" not in seen.values()


def test_check_writes_junit_for_ci(installed: dict[str, Any]) -> None:
    result = installed["results"]["check-junit"]
    assert result["rc"] == 1
    assert "2 blocking problem(s)" in result["out"]  # the text summary on stdout
    suite = ElementTree.parse(installed["work"] / "check.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    failed = {case.get("name", "").split(" from ")[0] for case in suite if case.find("failure") is not None}
    assert failed == {"Mcp-Session-Id exposed", "handshake-era session"}


def test_a_server_authors_pytest_file_passes_in_chromium_and_node(installed: dict[str, Any]) -> None:
    result = installed["results"]["pytest"]
    assert result["rc"] == 0, result["out"][-4000:] + result["err"]
    cases = ElementTree.parse(installed["work"] / "user.xml").getroot().iter("testcase")
    passed = {case.get("name") for case in cases if len(case) == 0}
    assert passed == {
        "test_echo[chromium]",
        "test_snippets_run_in_pyodide[chromium]",
        "test_snippets_run_in_pyodide[node]",
        "test_server_errors_come_back_typed[node]",
        "test_a_plain_test_still_runs",
        "test_the_page_answers_sampling[chromium]",
    }
    assert "sampling asked: 2+2?" in result["out"]  # printed in the page, shown by pytest (-rA)


def test_the_ready_made_check_test_fails_with_the_findings(installed: dict[str, Any]) -> None:
    result = installed["results"]["pytest-check"]
    assert result["rc"] == 1, result
    out = result["out"]
    assert "1 failed, 1 passed" in out
    assert "2 problem(s) block a browser client (chromium):" in out
    assert "FAIL Mcp-Session-Id exposed" in out and "FAIL handshake-era session" in out

"""The pytest plugin's wiring, in a pytester run (the browser runs: test_installed_tooling)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")


def test_it_registers_through_its_entry_point() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "pyodide_transport"]
    assert plugin.value == "pyodide_transport.browser_testing.plugin"


def test_the_marker_runs_a_test_once_per_runtime(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mcp_runtime("chromium", "node")
        def test_both(mcp_runtime):
            assert mcp_runtime in ("chromium", "node")

        def test_default(mcp_runtime):
            assert mcp_runtime == "node"
        """
    )
    result = pytester.runpytest("--mcp-runtime", "node", "-v", "-p", "no:asyncio")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_both?chromium? PASSED*", "*test_both?node? PASSED*", "*test_default?node?*"])


def test_an_unknown_runtime_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mcp_runtime("firefox")
        def test_x(mcp_runtime):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:asyncio")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*unknown mcp_runtime ?'firefox'?: use chromium, node*"])


def test_browser_mcp_without_a_url_says_how_to_give_one(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("async def test_x(browser_mcp):\n    pass\n")
    monkeypatch.delenv("MCP_URL", raising=False)
    result = pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*browser_mcp needs the server's URL: pass --mcp-url URL*"])


def test_a_runtime_that_fails_to_start_fails_each_test_once_told(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        async def test_a(browser_mcp):
            pass

        async def test_b(browser_mcp):
            pass
        """
    )
    monkeypatch.setenv("PYODIDE_TRANSPORT_RUNTIME", str(pytester.path / "missing"))
    result = pytester.runpytest("-p", "no:asyncio", "--mcp-url", "http://127.0.0.1:9/mcp", "--mcp-runtime", "node")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*the node runtime did not start: RuntimeSetupError*holds no pyodide.mjs*"])


def test_the_check_option_adds_one_test(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYODIDE_TRANSPORT_RUNTIME", str(pytester.path / "missing"))
    result = pytester.runpytest("-p", "no:asyncio", "--mcp-browser-check", "http://127.0.0.1:9/mcp", "-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the chromium runtime did not start: RuntimeSetupError*", "*mcp-browser-check?http://127.0.0.1:9/mcp?*"]
    )


def test_a_runtime_that_died_is_booted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyodide_transport.browser_testing import plugin, session

    class Fake:
        def __init__(self) -> None:
            self.alive = True
            self.closed = False

        def close(self) -> None:
            self.closed = True

    booted: list[Fake] = []
    monkeypatch.setattr(session, "start_runtime", lambda name: booted.append(Fake()) or booted[-1])
    pool = plugin.RuntimePool()
    first = pool.get("node")
    assert pool.get("node") is first and len(booted) == 1
    booted[0].alive = False
    second = pool.get("node")
    assert second is not first and booted[0].closed and len(booted) == 2
    pool.close()
    assert booted[1].closed


def test_a_malformed_header_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("async def test_x(browser_mcp):\n    pass\n")
    result = pytester.runpytest("-p", "no:asyncio", "--mcp-url", "http://127.0.0.1:9/mcp", "--mcp-header", "nope")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--mcp-header: header 'nope': expected 'NAME: VALUE'*"])


@pytest.mark.pyodide
def test_a_header_reaches_the_server_from_browser_mcp_and_the_check(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a server that wants a token, in Node-Pyodide booted from the built site's folder."""
    from devtools import DIST
    from devtools.servers import BEARER_COMMAND, BEARER_TOKEN, ServerProcess

    monkeypatch.setenv("PYODIDE_TRANSPORT_RUNTIME", str(DIST / "pyodide"))
    pytester.makepyfile(
        """
        async def test_signed_in(browser_mcp):
            result = await browser_mcp.call_tool("echo", {"message": "with a token"})
            assert result.content[0].text == "with a token"
        """
    )
    with ServerProcess(BEARER_COMMAND, quiet=True) as server:
        url = server.url + "/mcp"
        options = ["-p", "no:asyncio", "--mcp-runtime", "node", "--mcp-url", url, "--mcp-browser-check", url]
        result = pytester.runpytest(*options, "--mcp-header", f"Authorization: Bearer {BEARER_TOKEN}")
        result.assert_outcomes(passed=2)
        refused = pytester.runpytest(*options)
    refused.assert_outcomes(failed=1, errors=1)
    refused.stdout.fnmatch_lines(
        ["*could not connect to*AuthorizationRequiredError*", "*FAIL protected-resource metadata*"]
    )

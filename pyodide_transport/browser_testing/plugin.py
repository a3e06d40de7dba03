"""The pytest plugin (entry point ``pytest11``): test an MCP server from our client in a real browser.

Installed with ``pyodide-transport[browser-testing]``, it registers itself. A test asks for the
``browser_mcp`` fixture and gets a :class:`~pyodide_transport.browser_testing.session.BrowserMCP`:
a client connected to the server inside Pyodide, in headless Chromium (default) or Node::

    async def test_echo(browser_mcp):
        result = await browser_mcp.call_tool("echo", {"message": "hi"})
        assert result.content[0].text == "hi"

    @pytest.mark.mcp_runtime("chromium", "node")      # once in each
    async def test_tools(browser_mcp):
        assert "echo" in await browser_mcp.run("[t.name for t in (await client.list_tools()).tools]")

Options: ``--mcp-url URL`` (or the ``mcp_url`` ini value; or override the ``mcp_url`` fixture to
start a server), ``--mcp-runtime chromium|node``, ``--mcp-header 'NAME: VALUE'`` (a test token for
both), and ``--mcp-browser-check URL``, which adds one ready-made test running ``pyodide-transport
check`` that fails with the report's blocking findings.
``mcp_client_options`` (a fixture returning a dict of JSON data) goes to ``pyodide_transport.connect``;
``mcp_client_setup`` (Python source) runs in the page first and may define the client's handlers
(``sampling_handler``, ``elicitation_handler``, ``roots_handler``, ``wrap``, ...).
Each runtime boots once per test session. ``async def`` tests that use ``browser_mcp`` run without
an async plugin; with pytest-asyncio or anyio they run in theirs.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

from .runtime import RUNTIMES, RuntimeName

if TYPE_CHECKING:
    from .session import BrowserMCP, Runtime

__all__ = [
    "BrowserCheckError",
    "BrowserCheckItem",
    "RuntimePool",
    "browser_mcp",
    "mcp_client_options",
    "mcp_client_setup",
    "mcp_runtime",
    "mcp_url",
]

_POOL = pytest.StashKey["RuntimePool"]()
_HEADERS = pytest.StashKey[dict[str, str]]()
_ASYNC_MARKERS = ("asyncio", "anyio", "trio")


class RuntimePool:
    """The runtimes of one test session: each booted on first use, kept, and stopped at the end.

    A runtime that failed to boot fails every later test that wants it with the same message,
    without trying again; one that died (a snippet's timeout stops Node) is booted again.
    """

    def __init__(self) -> None:
        self._booted: dict[str, Runtime] = {}
        self._failed: dict[str, str] = {}

    def get(self, name: RuntimeName) -> Runtime:
        """The booted runtime ``name`` (booting it now if needed); a boot failure fails the test."""
        from ..errors import TransportError
        from .session import start_runtime

        if name in self._failed:
            pytest.fail(self._failed[name], pytrace=False)
        if name in self._booted and not self._booted[name].alive:  # e.g. stopped by a timeout: boot anew
            self._booted.pop(name).close()
        if name not in self._booted:
            try:
                self._booted[name] = start_runtime(name)
            except TransportError as exc:
                self._failed[name] = f"the {name} runtime did not start: {type(exc).__name__}: {exc}"
                pytest.fail(self._failed[name], pytrace=False)
        return self._booted[name]

    def close(self) -> None:
        """Stop every booted runtime."""
        for runtime in self._booted.values():
            runtime.close()
        self._booted.clear()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--mcp-url``, ``--mcp-runtime``, ``--mcp-browser-check`` and their ini values."""
    group = parser.getgroup("mcp-browser", "test an MCP server from a real browser (pyodide-transport)")
    group.addoption("--mcp-url", dest="mcp_url", metavar="URL", help="the MCP endpoint the browser_mcp fixture uses")
    group.addoption(
        "--mcp-runtime",
        dest="mcp_runtime",
        choices=RUNTIMES,
        help="where browser_mcp runs when a test has no mcp_runtime marker (default: chromium)",
    )
    group.addoption(
        "--mcp-header",
        dest="mcp_headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="send this header from browser_mcp and the browser check, e.g. 'Authorization: Bearer TOKEN' (repeatable)",
    )
    group.addoption(
        "--mcp-browser-check",
        dest="mcp_browser_check",
        metavar="URL",
        help="add a test running the browser-compatibility check against URL; it fails with the blocking findings",
    )
    parser.addini("mcp_url", "the MCP endpoint the browser_mcp fixture uses", default=None)
    parser.addini("mcp_runtime", "default runtime for browser_mcp: chromium or node", default="chromium")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the session's runtime pool."""
    config.addinivalue_line(
        "markers", "mcp_runtime(*names): run this test's browser_mcp in these runtimes (chromium, node), once each"
    )
    config.stash[_POOL] = RuntimePool()
    from ..check import parse_headers

    try:
        config.stash[_HEADERS] = parse_headers(config.getoption("mcp_headers") or [])
    except ValueError as exc:
        raise pytest.UsageError(f"--mcp-header: {exc}") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the runtimes the session booted."""
    pool = config.stash.get(_POOL, None)
    if pool is not None:
        pool.close()


def _headers(config: pytest.Config) -> dict[str, str]:
    return config.stash[_HEADERS]


def _default_runtime(config: pytest.Config) -> RuntimeName:
    name = config.getoption("mcp_runtime") or config.getini("mcp_runtime") or "chromium"
    if name not in RUNTIMES:
        raise pytest.UsageError(f"mcp_runtime = {name!r}: use one of {', '.join(RUNTIMES)}")
    return cast(RuntimeName, name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``mcp_runtime`` (``browser_mcp`` does) once per runtime its marker names."""
    if "mcp_runtime" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("mcp_runtime")
    names = list(marker.args) if marker is not None and marker.args else [_default_runtime(metafunc.config)]
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown:
        pytest.fail(f"{metafunc.definition.nodeid}: unknown mcp_runtime {unknown}: use {', '.join(RUNTIMES)}", False)
    metafunc.parametrize("mcp_runtime", names, indirect=True, ids=names)


@pytest.fixture
def mcp_runtime(request: pytest.FixtureRequest) -> RuntimeName:
    """The runtime this test's ``browser_mcp`` runs in: ``"chromium"`` or ``"node"``."""
    return cast(RuntimeName, getattr(request, "param", None) or _default_runtime(request.config))


@pytest.fixture(scope="session")
def mcp_url(request: pytest.FixtureRequest) -> str:
    """The server's MCP endpoint: ``--mcp-url``, the ``mcp_url`` ini value, ``$MCP_URL`` or ``--mcp-browser-check``.

    Override it in ``conftest.py`` to start a server for the session and return its URL.
    """
    config = request.config
    url = (
        config.getoption("mcp_url")
        or config.getini("mcp_url")
        or os.environ.get("MCP_URL")
        or config.getoption("mcp_browser_check")
    )
    if not url:
        pytest.fail(
            "browser_mcp needs the server's URL: pass --mcp-url URL, set mcp_url in the ini file, "
            "or override the mcp_url fixture",
            pytrace=False,
        )
    return str(url)


@pytest.fixture
def mcp_client_options() -> dict[str, Any]:
    """Options for ``pyodide_transport.connect`` in the page (JSON data: headers, protocol_version, ...)."""
    return {}


@pytest.fixture
def mcp_client_setup() -> str:
    """Python run in the page before the client connects; the handlers it defines are the client's.

    For example ``async def sampling_handler(params): return CreateMessageResult(...)``, or
    ``elicitation_handler``, ``roots_handler``, ``wrap`` (middleware), ``on_log``: see
    :data:`pyodide_transport.browser_testing.harness.CLIENT_HOOKS`.
    """
    return ""


@pytest.fixture
def browser_mcp(
    request: pytest.FixtureRequest,
    mcp_runtime: RuntimeName,
    mcp_url: str,
    mcp_client_options: dict[str, Any],
    mcp_client_setup: str,
) -> Iterator[BrowserMCP]:
    """A client connected to ``mcp_url`` inside Pyodide in ``mcp_runtime``, closed after the test."""
    from .session import BrowserCodeError, BrowserMCP

    options = dict(mcp_client_options)
    if headers := _headers(request.config):
        options["headers"] = {**headers, **(options.get("headers") or {})}
    runtime = request.config.stash[_POOL].get(mcp_runtime)
    try:
        session = BrowserMCP.open(runtime, mcp_url, options, setup=mcp_client_setup)
    except BrowserCodeError as exc:
        failed = f"could not connect to {mcp_url} in {mcp_runtime}: {exc.type_name}: {exc.error_message}"
    else:
        failed = ""
    if failed:  # outside the except block: the page's traceback is not the test's
        pytest.fail(failed, pytrace=False)
    yield session
    session.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that uses ``browser_mcp`` when no async plugin has claimed it."""
    if "browser_mcp" not in pyfuncitem.funcargs or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if any(pyfuncitem.get_closest_marker(name) for name in _ASYNC_MARKERS):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


class BrowserCheckError(AssertionError):
    """The browser-compatibility check found blocking problems: a failed assertion, its findings the message."""


class BrowserCheckItem(pytest.Item):
    """The ready-made test of ``--mcp-browser-check URL``: the whole check, failing with its findings."""

    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url

    def runtest(self) -> None:
        """Run the check (transport half in the session's default runtime)."""
        from ..check import run_checks
        from ..check_report import render

        runtime = _default_runtime(self.config)
        booted = self.config.stash[_POOL].get(runtime)  # the session's, booted once for all tests
        checks = run_checks(self.url, runtime=runtime, headers=_headers(self.config), booted=booted)
        self.add_report_section("call", "browser check", render(self.url, checks, "text"))
        blocking = [c for c in checks if c.fatal]
        if blocking:
            lines = [f"{self.url}: {len(blocking)} problem(s) block a browser client ({runtime}):"]
            lines += [f"  FAIL {c.name}: {c.detail}" for c in blocking]
            raise BrowserCheckError("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The findings, not a traceback."""
        if isinstance(excinfo.value, BrowserCheckError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """Where pytest says the test is."""
        return self.path, None, self.name


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the ``--mcp-browser-check`` test."""
    url = config.getoption("mcp_browser_check")
    if url:
        items.append(BrowserCheckItem.from_parent(session, name=f"mcp-browser-check[{url}]", url=url))

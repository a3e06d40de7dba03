"""The host side: a real browser page (or Node) running our client in Pyodide, driven from CPython.

A *runtime* is one booted Pyodide with ``pyodide_transport`` loaded from the offline folder of
:func:`~pyodide_transport.browser_testing.runtime.ensure_runtime`:

* :class:`ChromiumRuntime`: headless Chromium through Playwright, the page served from a loopback
  port of its own, so every request to the server is a real cross-origin ``fetch`` with CORS;
* :class:`NodeRuntime`: Pyodide in Node (:class:`~pyodide_transport.check.NodePyodide`).

Both boot once and take one JSON request at a time for
:mod:`~pyodide_transport.browser_testing.harness`. Each works from its own thread, so the
awaitable methods of :class:`BrowserMCP` work from any event loop (and tests with function-scoped
loops share one booted browser).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import http.server
import itertools
import json
import os
import shutil
import sys
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from mcp_types import (
    CallToolResult,
    GetPromptResult,
    ListPromptsResult,
    ListResourcesResult,
    ListToolsResult,
    ReadResourceResult,
)

from ..check import NodePyodide, PyodideError
from .runtime import RUNTIMES, RuntimeName, RuntimeSetupError, ensure_runtime

__all__ = [
    "CHROMIUM_ARGS",
    "RUNTIMES",
    "BrowserCodeError",
    "BrowserMCP",
    "ChromiumRuntime",
    "NodeRuntime",
    "Runtime",
    "RuntimeName",
    "find_chromium",
    "start_runtime",
]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
"""Launch flags: no sandbox (containers, root), and nothing that phones home in the background."""

SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
"""System browsers looked up on PATH when Playwright has no browser of its own."""

INSTALL_HINT = 'pip install "pyodide-transport[browser-testing]"'

_T = TypeVar("_T")


class BrowserCodeError(PyodideError):
    """Test code raised inside the browser runtime.

    Attributes:
        type_name: The exception's class name there (e.g. ``MCPError``, ``CORSError``).
        code: The JSON-RPC error code when it was an ``MCPError``, else ``None``.
        remote_traceback: The traceback inside Pyodide.
        runtime: ``"chromium"`` or ``"node"``.
    """

    def __init__(self, runtime: str, error: Mapping[str, Any]) -> None:
        self.type_name = str(error.get("type", "Exception"))
        self.code: int | None = error.get("code")
        self.remote_traceback = str(error.get("traceback", ""))
        self.runtime = runtime
        self.error_message = str(error.get("message", ""))
        super().__init__(f"{self.type_name} in {runtime}: {self.error_message}\n{self.remote_traceback}")


def find_chromium() -> str | None:
    """The Chromium to drive, found the way ``python build.py test`` finds it.

    ``$PYODIDE_TRANSPORT_CHROMIUM`` (or ``$PT_CHROMIUM``) wins when set ("" = Playwright's own);
    then Playwright's own browser when it is installed (``None``); then a system Chromium or Chrome.

    Raises:
        RuntimeSetupError: No Playwright, or no browser at all (the message says how to get one).
    """
    for variable in ("PYODIDE_TRANSPORT_CHROMIUM", "PT_CHROMIUM"):
        configured = os.environ.get(variable)
        if configured is not None:
            return configured or None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeSetupError(f"the chromium runtime needs Playwright: {INSTALL_HINT}") from None
    with contextlib.suppress(Exception), sync_playwright() as p:
        if Path(p.chromium.executable_path).exists():
            return None
    for name in SYSTEM_CHROMIUMS:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeSetupError(
        "no Chromium found: run `python -m playwright install chromium`, install a system Chromium, "
        "or set PYODIDE_TRANSPORT_CHROMIUM to one"
    )


class Runtime(Protocol):
    """A booted Pyodide that answers :mod:`~pyodide_transport.browser_testing.harness` requests."""

    name: RuntimeName
    info: dict[str, Any]

    @property
    def alive(self) -> bool:
        """Whether it can still take requests (a timed-out Node run, a crashed page: no)."""

    def request(self, request: Mapping[str, Any], timeout: float) -> concurrent.futures.Future[Any]:
        """Send one request; the future holds its value or raises what the harness reported."""

    def close(self) -> None:
        """Stop the runtime. Idempotent."""


def _answer(runtime: str, text: str | None) -> Any:
    reply = json.loads(text or "null")
    if not isinstance(reply, dict):
        raise PyodideError(f"the {runtime} harness gave no answer: {text!r}")
    if reply.get("output"):
        sys.stdout.write(reply["output"])
        sys.stdout.flush()
    if not reply.get("ok"):
        raise BrowserCodeError(runtime, reply.get("error") or {})
    return reply.get("value")


def _harness_call(request: Mapping[str, Any]) -> str:
    """Python source that hands ``request`` to the harness and evaluates to its JSON answer."""
    return (
        f"from pyodide_transport.browser_testing.harness import dispatch\nawait dispatch({json.dumps(dict(request))!r})"
    )


class NodeRuntime:
    """Pyodide in a Node process, requests sent from one worker thread.

    Args:
        folder: The Pyodide folder (default :func:`~pyodide_transport.browser_testing.runtime.ensure_runtime`).
        boot_timeout: Seconds Pyodide may take to boot.
    """

    name: RuntimeName = "node"

    def __init__(self, folder: Path | None = None, *, boot_timeout: float = 120.0) -> None:
        self._pyodide = NodePyodide(folder or ensure_runtime(), boot_timeout=boot_timeout)
        self.info = dict(self._pyodide.info)
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="node-pyodide")

    @property
    def alive(self) -> bool:
        """See :class:`Runtime`."""
        return self._pyodide.running

    def request(self, request: Mapping[str, Any], timeout: float) -> concurrent.futures.Future[Any]:
        """See :class:`Runtime`."""
        code = _harness_call(request)
        return self._worker.submit(lambda: _answer(self.name, self._pyodide.run(code, timeout)))

    def close(self) -> None:
        """See :class:`Runtime`."""
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._pyodide.close()


_HARNESS_PAGE = Path(__file__).with_name("harness.html")
_MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}


class _Files(http.server.SimpleHTTPRequestHandler):
    """The runtime folder, plus the harness page at ``/``, with module-script MIME types."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.extensions_map = {**self.extensions_map, **_MIME}
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?")[0] in ("/", "/index.html"):
            body = _HARNESS_PAGE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ChromiumRuntime:
    """Headless Chromium showing the harness page, with Pyodide booted in it.

    The page and the runtime folder are served from ``127.0.0.1`` on a port of their own, so the
    server under test sees a real page origin (``http://127.0.0.1:PORT``) and real CORS requests.

    Args:
        folder: The Pyodide folder (default :func:`~pyodide_transport.browser_testing.runtime.ensure_runtime`).
        executable: A Chromium executable (default :func:`find_chromium`).
        boot_timeout: Seconds the browser and Pyodide may take to start.

    Raises:
        RuntimeSetupError: No Playwright or no browser.
        PyodideError: The page did not boot Pyodide.
    """

    name: RuntimeName = "chromium"

    def __init__(
        self, folder: Path | None = None, *, executable: str | None = None, boot_timeout: float = 120.0
    ) -> None:
        folder = folder or ensure_runtime()
        chromium = executable if executable is not None else find_chromium()
        handler = functools.partial(_Files, directory=str(folder))
        self._files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._files.daemon_threads = True
        threading.Thread(target=self._files.serve_forever, name="pyodide-files", daemon=True).start()
        self.origin = f"http://127.0.0.1:{self._files.server_address[1]}"
        self.console: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chromium-runtime", daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._browser: Any = None
        self._page: Any = None
        self.info: dict[str, Any] = {}
        try:
            self.info = self._submit(self._start(chromium, boot_timeout)).result(boot_timeout + 30)
        except BaseException:
            self.close()
            raise

    @property
    def alive(self) -> bool:
        """See :class:`Runtime`."""
        return self._loop.is_running() and self._page is not None and not self._page.is_closed()

    def _submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _start(self, executable: str | None, boot_timeout: float) -> dict[str, Any]:
        from playwright.async_api import Error, async_playwright

        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as exc:
            raise RuntimeSetupError(f"could not start Chromium ({executable or 'Playwright own'}): {exc}") from None
        self._page = await self._browser.new_page()
        self._page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self._page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        await self._page.goto(self.origin + "/")
        try:
            await self._page.wait_for_function("globalThis.ptReady !== undefined", timeout=boot_timeout * 1000)
        except Error:
            raise PyodideError(f"Pyodide did not boot in Chromium: {self.console[-20:]}") from None
        ready: dict[str, Any] = await self._page.evaluate("globalThis.ptReady")
        if not ready.get("ok"):
            raise PyodideError(f"Pyodide did not boot in Chromium: {ready.get('error')}\n{self.console[-20:]}")
        return {**ready, "origin": self.origin, "browser": self._browser.version}

    async def _request(self, request: str, limit: float) -> Any:
        try:
            async with asyncio.timeout(limit):
                text = await self._page.evaluate("r => globalThis.ptDispatch(r)", request)
        except TimeoutError:
            raise PyodideError(f"the page did not answer within {limit:.0f} s") from None
        return _answer(self.name, text)

    def request(self, request: Mapping[str, Any], timeout: float) -> concurrent.futures.Future[Any]:
        """See :class:`Runtime`."""
        return self._submit(self._request(json.dumps(dict(request)), timeout))

    async def _stop(self) -> None:
        for closer in (self._browser, self._playwright):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await (closer.close() if closer is self._browser else closer.stop())

    def close(self) -> None:
        """See :class:`Runtime`."""
        if self._loop.is_running():
            with contextlib.suppress(Exception):
                self._submit(self._stop()).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._files.shutdown()
        self._files.server_close()


def start_runtime(name: RuntimeName, folder: Path | None = None) -> Runtime:
    """Boot the runtime called ``name`` (``chromium`` or ``node``) from ``folder`` (default: the cached one).

    Raises:
        ValueError: An unknown name.
        RuntimeSetupError: Fetching the runtime or finding a browser failed.
        PyodideError: Pyodide did not boot.
    """
    if name == "chromium":
        return ChromiumRuntime(folder)
    if name == "node":
        return NodeRuntime(folder)
    raise ValueError(f"unknown runtime {name!r}: use one of {', '.join(RUNTIMES)}")


_ids = itertools.count(1)


class BrowserMCP:
    """One connected client inside a runtime, and the test code run against it there.

    ``await browser_mcp.run(code)`` runs Python source in the page with ``client`` (a connected
    :class:`~pyodide_transport.client.Client`) and ``url`` bound, top-level ``await`` allowed; it
    returns the value of the last expression as JSON data. Names a snippet defines stay for the next
    one. The typed helpers (:meth:`call_tool`, :meth:`list_tools`, ...) run the same calls in the
    page and return the ``mcp-types`` result models. What the page raises comes back as
    :class:`BrowserCodeError`, typed by name.

    Use :meth:`open` to connect; the methods are awaitable from any event loop.
    """

    def __init__(self, runtime: Runtime, url: str, session: str, info: dict[str, Any], timeout: float) -> None:
        self.runtime = runtime
        self.url = url
        self.session = session
        self.info = info
        self.timeout = timeout

    @classmethod
    def open(
        cls,
        runtime: Runtime,
        url: str,
        options: Mapping[str, Any] | None = None,
        *,
        setup: str = "",
        timeout: float = 60.0,
    ) -> BrowserMCP:
        """Connect a client to ``url`` inside ``runtime`` (blocking); ``options`` go to ``pyodide_transport.connect``.

        Options must be JSON data (``headers``, ``protocol_version``, ``request_timeout``, ...).
        ``setup`` is Python run in the page first: the handlers it defines (``sampling_handler``,
        ``elicitation_handler``, ``roots_handler``, ``wrap``, ... see
        :data:`~pyodide_transport.browser_testing.harness.CLIENT_HOOKS`) are passed to ``connect``.

        Raises:
            BrowserCodeError: The setup code or the connection failed in the page (e.g. ``CORSError``).
        """
        session = f"s{next(_ids)}"
        request = {"op": "open", "session": session, "url": url, "options": dict(options or {}), "setup": setup}
        info = runtime.request(request, timeout).result(timeout + 5)
        return cls(runtime, url, session, info, timeout)

    @property
    def protocol_version(self) -> str | None:
        """The protocol version the client and server agreed on."""
        version: str | None = self.info.get("protocol_version")
        return version

    async def run(self, code: str, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the page's timeout
        """Run ``code`` in the page and return its last expression as JSON data (see the class docstring)."""
        limit = timeout or self.timeout
        future = self.runtime.request({"op": "run", "session": self.session, "code": code}, limit)
        return await asyncio.wrap_future(future)

    async def _call(self, method: str, *args: Any) -> Any:
        arguments = f"*json.loads({json.dumps(list(args))!r})" if args else ""
        return await self.run(f"await client.{method}({arguments})")

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None) -> CallToolResult:
        """``client.call_tool`` in the page; a tool's own failure is ``result.is_error``, not an exception."""
        return CallToolResult.model_validate(await self._call("call_tool", name, dict(arguments or {})))

    async def list_tools(self) -> ListToolsResult:
        """``client.list_tools`` in the page (every page of the list)."""
        return ListToolsResult.model_validate(await self._call("list_tools"))

    async def list_resources(self) -> ListResourcesResult:
        """``client.list_resources`` in the page."""
        return ListResourcesResult.model_validate(await self._call("list_resources"))

    async def read_resource(self, uri: str) -> ReadResourceResult:
        """``client.read_resource`` in the page."""
        return ReadResourceResult.model_validate(await self._call("read_resource", uri))

    async def list_prompts(self) -> ListPromptsResult:
        """``client.list_prompts`` in the page."""
        return ListPromptsResult.model_validate(await self._call("list_prompts"))

    async def get_prompt(self, name: str, arguments: Mapping[str, str] | None = None) -> GetPromptResult:
        """``client.get_prompt`` in the page."""
        return GetPromptResult.model_validate(await self._call("get_prompt", name, dict(arguments or {})))

    def close(self) -> None:
        """Close the client in the page (blocking). Idempotent; a runtime already gone is ignored."""
        with contextlib.suppress(Exception):
            self.runtime.request({"op": "close", "session": self.session}, 15).result(20)

    def __enter__(self) -> BrowserMCP:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

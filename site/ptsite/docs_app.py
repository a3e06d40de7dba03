"""The docs pages' runner (Pyodide only): every snippet is editable and runs in the page.

Each ``.snippet`` element holds a ``textarea`` with the code, a Run button
and an output ``pre``. Snippets share one namespace per page (like a
notebook) that starts with ``SERVER``, the origin of the demo server that
serves the page, and ``MCP``, the endpoint the snippets connect to: the demo
server's ``/mcp`` when one serves the page, else (a static host) the in-browser
demo server, ``worker:./server-worker.js``. Output appears as it is printed;
Ctrl/Cmd+Enter runs, Tab indents.
"""

from __future__ import annotations

import sys
from typing import Any

import js
from pyodide.ffi import to_js

import pyodide_transport as pt

from .dom import Scope, by_testid, report_error, set_error_sink, set_text
from .settings import IN_BROWSER_ENDPOINT
from .snippets import run_snippet

__all__ = ["main"]


class Docs:
    """The snippets of one docs page."""

    def __init__(self) -> None:
        self.scope = Scope()
        origin = str(js.location.origin)
        self.namespace: dict[str, Any] = {"__name__": "__snippet__", "SERVER": origin, "MCP": f"{origin}/mcp"}

    async def find_server(self) -> None:
        """Point ``MCP`` at the in-browser demo server when no MCP server answers at this page's origin."""
        if not await has_backend(str(js.location.origin)):
            self.namespace["MCP"] = IN_BROWSER_ENDPOINT
            for label in js.document.querySelectorAll('[data-testid="snippet-target"]'):
                set_text(label, "the in-browser demo server (no server behind this page)")

    def setup(self) -> None:
        """Bind every snippet's controls and show that Python is ready."""
        for snippet in js.document.querySelectorAll(".snippet"):
            self._bind(snippet)
        set_text(
            by_testid("runtime-info"),
            f"Python {sys.version.split()[0]} · Pyodide · pyodide-transport {pt.__version__}",
        )
        set_error_sink(lambda text: js.console.error(text))
        js.document.body.classList.remove("booting")
        js.document.body.dataset.ready = "true"

    def _bind(self, snippet: Any) -> None:
        code = snippet.querySelector("textarea")
        run = snippet.querySelector('[data-testid="snippet-run"]')
        output = snippet.querySelector('[data-testid="snippet-output"]')
        status = snippet.querySelector('[data-testid="snippet-status"]')
        code.rows = max(3, str(code.value).count("\n") + 1)
        run.disabled = False
        set_text(status, "ready")

        async def go(_evt: Any = None) -> None:
            if run.disabled:
                return
            run.disabled = True
            output.classList.remove("failed")
            set_text(output, "")
            set_text(status, "running…")
            snippet.dataset.state = "running"

            def write(text: str) -> None:
                output.textContent = str(output.textContent) + text

            try:
                result = await run_snippet(str(code.value), self.namespace, write)
            finally:
                run.disabled = False
            if result.ok:
                set_text(status, "done")
                snippet.dataset.state = "done"
                if not str(output.textContent):
                    set_text(output, "(no output)")
            else:
                write(("\n" if str(output.textContent) else "") + result.error)
                output.classList.add("failed")
                set_text(status, "failed")
                snippet.dataset.state = "failed"

        def keys(evt: Any) -> Any:
            if str(evt.key) == "Enter" and (evt.ctrlKey or evt.metaKey):
                evt.preventDefault()
                return go()
            if str(evt.key) == "Tab" and not evt.shiftKey:
                evt.preventDefault()
                start, end = int(code.selectionStart), int(code.selectionEnd)
                text = str(code.value)
                code.value = text[:start] + "    " + text[end:]
                code.selectionStart = code.selectionEnd = start + 4
            return None

        def grow(_evt: Any) -> None:
            code.rows = max(3, str(code.value).count("\n") + 1)

        self.scope.on(run, "click", go)
        self.scope.on(code, "keydown", keys)
        self.scope.on(code, "input", grow)


async def has_backend(origin: str) -> bool:
    """Whether an MCP server answers at ``origin``/mcp (a JSON-RPC answer of any status, not a static 404/501)."""
    body = '{"jsonrpc": "2.0", "id": 0, "method": "ping"}'
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    options = to_js({"method": "POST", "headers": headers, "body": body}, dict_converter=js.Object.fromEntries)
    try:
        response = await js.fetch(f"{origin}/mcp", options)
    except Exception:  # a network error: nothing there
        return False
    kind = str(response.headers.get("content-type") or "")
    return "json" in kind or "event-stream" in kind


async def main() -> None:
    """Start the page's snippet runner (called by the page's PyScript tag)."""
    try:
        docs = Docs()
        await docs.find_server()
        docs.setup()
    except Exception as exc:
        report_error(exc)
        raise

"""The Apps tab: tools with an MCP App (SEP-1865), opened inside a sandbox proxy on a second origin.

The explorer declares the ``io.modelcontextprotocol/ui`` extension; the tab lists the tools whose
``_meta.ui.resourceUri`` names a ``ui://`` resource. "Open app" calls the tool, reads the resource
(its MIME type must be ``text/html;profile=mcp-app``) and loads the sandbox proxy in an iframe
(``sandbox="allow-scripts allow-same-origin"``: the proxy keeps its own, different origin; the app
inside it gets an opaque one). Messages are taken only from that frame's window and the sandbox's
origin, and handed to :class:`ptsite.apps.AppHost`, which decides everything; this module only runs
its actions. Every call the app makes goes through :meth:`Explorer.call_tool` with ``origin="app"``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import TYPE_CHECKING, Any

import js
import mcp_types as mt
from pyodide.ffi import create_proxy

import pyodide_transport as pt
from pyodide_transport.apps import build_csp, ui_extension_capability

from .apps import (
    TEARDOWN_TIMEOUT,
    Action,
    AppHost,
    CallTool,
    Closed,
    Log,
    OfferLink,
    PostMessage,
    ReadResource,
    Resize,
    Show,
    app_resource,
    app_tools,
    frame_url,
    resource_uri,
    sandbox_from_query,
    sandbox_origin,
    sandbox_problem,
)
from .dom import FormView, Scope, by_testid, clear, el, report_error, set_text, spawn
from .features import Feature
from .forms import build_form

if TYPE_CHECKING:
    from pyodide_transport.client import Client

    from .explorer_app import Explorer

__all__ = ["AppsFeature"]

MAX_MESSAGES = 200
"""App messages kept in the pane."""

MAX_HEIGHT = 600
"""The app frame's maximum height (``containerDimensions.maxHeight``)."""


def _dump(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


class AppsFeature(Feature):
    """The Apps tab and the host of the app it shows (one at a time)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.scope = Scope()  # the list and the form
        self.run_scope = Scope()  # the running app's controls
        self.tools: list[dict[str, Any]] = []
        self.sandbox: str | None = None
        self.sandbox_note = ""
        self.host: AppHost | None = None
        self.frame: Any = None
        self.origin = ""
        self.form_view: FormView | None = None
        self.selected: str | None = None
        self._listener: Any = None
        self._messages = 0

    # -- hooks ------------------------------------------------------------------------------
    def setup(self) -> None:
        """Fill the pane and find the sandbox proxy (deep link, then ``apps/sandbox.json``)."""
        root = by_testid("apps-root")
        clear(root)
        root.appendChild(el("h2", "MCP Apps", cls="apps-title"))
        root.appendChild(
            el(
                "p",
                "Tools with an interactive app (SEP-1865). The app runs in a sandbox proxy on another origin, "
                "with the Content-Security-Policy its resource declares; it reaches the server only through "
                "the explorer.",
                cls="muted small",
            )
        )
        root.appendChild(el("p", "Looking for the sandbox proxy…", cls="small", testid="apps-sandbox"))
        root.appendChild(el("p", cls="error-text", testid="apps-error", hidden=True, role="alert"))
        layout = el("div", cls="apps-layout")
        layout.appendChild(el("ul", cls="apps-list", testid="apps-list", aria_label="Tools with an app"))
        layout.appendChild(el("div", cls="apps-detail", testid="apps-detail"))
        root.appendChild(layout)
        root.appendChild(el("section", cls="app-running", testid="app-running", hidden=True, aria_label="Running app"))
        self._render_list()
        spawn(self._find_sandbox())

    def client_options(self) -> dict[str, Any]:
        """Declare MCP Apps support (the ``io.modelcontextprotocol/ui`` extension)."""
        return {"capabilities": mt.ClientCapabilities(extensions=ui_extension_capability())}

    def on_tools(self, tools: list[mt.Tool]) -> None:
        """Keep the tools that open an app."""
        self.tools = app_tools(_dump(t) for t in tools)
        self._render_list()

    async def connected(self, client: Client) -> None:
        """Nothing to do: ``on_tools`` already listed the apps."""

    def disconnected(self) -> None:
        """The session is gone: the app can no longer reach its server, so it is closed."""
        if self.host is not None:
            self._teardown("the server was disconnected")
        self.tools = []
        self._render_list()

    # -- sandbox ----------------------------------------------------------------------------
    async def _find_sandbox(self) -> None:
        url = sandbox_from_query(str(js.location.search))
        how = "from the ?sandbox= link"
        if url is None:
            how = "from apps/sandbox.json"
            try:
                response = await js.fetch("./apps/sandbox.json", js.JSON.parse('{"cache": "no-store"}'))
                if response.ok:
                    data = json.loads(str(await response.text()))
                    found = data.get("url") if isinstance(data, dict) else None
                    url = found if isinstance(found, str) and found else None
            except Exception:
                url = None
        self.sandbox = url
        problem = sandbox_problem(url, str(js.location.origin))
        note = by_testid("apps-sandbox")
        if problem is not None:
            self.sandbox = None
            self.sandbox_note = problem
            set_text(note, problem)
            note.dataset.state = "missing"
        else:
            self.sandbox_note = f"Sandbox proxy: {url} ({how})"
            set_text(note, self.sandbox_note)
            note.dataset.state = "ready"

    # -- list and form --------------------------------------------------------------------------
    def _render_list(self) -> None:
        listing = by_testid("apps-list")
        if listing is None:
            return
        self.scope.clear()
        clear(listing)
        set_text(by_testid("apps-count"), str(len(self.tools)) if self.tools else "")
        if not self.tools:
            text = "No tool of this server has an MCP App." if self.explorer.client is not None else "Not connected."
            listing.appendChild(el("li", text, cls="muted small", testid="apps-empty"))
            clear(by_testid("apps-detail"))
            return
        for tool in self.tools:
            name = str(tool["name"])
            label = str(tool.get("title") or name)
            button = el(
                "button",
                label,
                type="button",
                cls="apps-item" + (" selected" if name == self.selected else ""),
                testid=f"app-tool-{name}",
                title=str(resource_uri(tool)),
            )
            self.scope.on(button, "click", functools.partial(self._pick, name))
            listing.appendChild(el("li", children=[button]))
        if self.selected not in {str(t["name"]) for t in self.tools}:
            self.selected = str(self.tools[0]["name"])
        self._render_detail()

    def _pick(self, name: str, _evt: Any) -> None:
        self._select(name)

    def _select(self, name: str) -> None:
        self.selected = name
        self._render_list()

    def _render_detail(self) -> None:
        detail = by_testid("apps-detail")
        clear(detail)
        tool = next((t for t in self.tools if t["name"] == self.selected), None)
        if tool is None:
            return
        detail.appendChild(el("h3", str(tool.get("title") or tool["name"]), testid="app-tool-title"))
        detail.appendChild(el("div", f"{tool['name']} · {resource_uri(tool)}", cls="meta small"))
        if tool.get("description"):
            detail.appendChild(el("p", str(tool["description"]), cls="muted small"))
        self.form_view = FormView(build_form(tool.get("inputSchema") or {}), self.scope, prefix="app-field")
        detail.appendChild(self.form_view.node)
        button = el("button", "Open app", type="button", cls="primary", testid="app-open")
        self.scope.on(button, "click", lambda _e: self._open(tool))
        detail.appendChild(el("div", cls="apps-actions", children=[button]))

    def _error(self, text: str) -> None:
        box = by_testid("apps-error")
        set_text(box, text)
        box.hidden = not text

    # -- opening an app -----------------------------------------------------------------------
    async def _open(self, tool: dict[str, Any]) -> None:
        self._error("")
        if self.form_view is None:
            return
        arguments, errors = self.form_view.values()
        if errors:
            self._error("Fix the highlighted arguments first.")
            return
        if self.explorer.client is None:
            self._error("Connect to a server first.")
            return
        if self.sandbox is None:
            self._error(self.sandbox_note or "No sandbox proxy is configured.")
            return
        uri = resource_uri(tool)
        assert uri is not None
        if self.host is not None:  # one app at a time: the running one is torn down first
            old = self.host
            self._teardown("replaced by another app")
            for _ in range(int(TEARDOWN_TIMEOUT * 20) + 10):
                if old.state == "closed":
                    break
                await asyncio.sleep(0.05)
        try:
            read = await self.explorer.read_resource(uri, origin="app")
            resource = app_resource(uri, _dump(read))
        except ValueError as exc:
            self._error(f"Not shown: {exc}")
            return
        except Exception as exc:
            self._error(f"Could not read the app {uri}: {exc}")
            return
        server_tools = {t.name: _dump(t) for t in self.explorer.tools}
        self.host = AppHost(
            tool=tool,
            arguments=arguments,
            resource=resource,
            server_tools=server_tools,
            host_info={"name": "pyodide-transport-explorer", "version": pt.__version__},
            theme="light",
            max_height=MAX_HEIGHT,
        )
        self._render_running(tool, resource.csp, resource.prefers_border)
        spawn(self._call(tool, arguments, self.host))

    async def _call(self, tool: dict[str, Any], arguments: dict[str, Any], host: AppHost) -> None:
        try:
            result = await self.explorer.call_tool(str(tool["name"]), arguments, origin="app")
        except asyncio.CancelledError:
            host.tool_cancelled("cancelled")
            raise
        except Exception as exc:
            host.tool_cancelled(f"the call failed: {exc}")
            self._run(host)
            return
        raw = _dump(result)
        box = by_testid("app-tool-result")
        if box is not None and host is self.host:
            self.explorer.render_result(box, raw)
        host.tool_result(raw)
        self._run(host)

    def _render_running(self, tool: dict[str, Any], csp: dict[str, Any] | None, border: bool | None) -> None:
        assert self.sandbox is not None and self.host is not None
        self.run_scope.clear()
        running = by_testid("app-running")
        clear(running)
        running.hidden = False
        self.origin = sandbox_origin(self.sandbox)
        src = frame_url(self.sandbox, csp, str(js.location.origin))
        close = el("button", "Close app", type="button", cls="danger small-btn", testid="app-close")
        self.run_scope.on(close, "click", lambda _e: self._teardown("closed by the user"))
        head = el(
            "div",
            cls="app-head",
            children=[
                el("h3", f"App: {tool.get('title') or tool['name']}", testid="app-title"),
                el("span", "starting", cls="badge", testid="app-state"),
                close,
            ],
        )
        running.appendChild(head)
        audit = el("details", cls="app-audit", testid="app-audit")
        audit.appendChild(el("summary", "Sandbox and Content-Security-Policy"))
        audit.appendChild(el("div", f"sandbox proxy origin: {self.origin}", cls="meta small", testid="app-origin"))
        audit.appendChild(
            el(
                "div",
                "declared _meta.ui.csp: " + (json.dumps(csp) if csp is not None else "(none: restrictive default)"),
                cls="meta small",
            )
        )
        audit.appendChild(el("pre", build_csp(csp), cls="block code", testid="app-csp"))
        running.appendChild(audit)
        self.explorer.add_log("info", "app", f"CSP for {tool['name']}: {build_csp(csp)}")
        frame = el(
            "iframe",
            testid="app-frame",
            cls="app-frame" + (" bordered" if border is not False else ""),
            title=f"MCP App of {tool['name']}",
            sandbox="allow-scripts allow-same-origin",
            referrerpolicy="no-referrer",
        )
        frame.style.height = "120px"
        self.frame = frame
        self._listener = create_proxy(self._on_message)
        js.window.addEventListener("message", self._listener)
        running.appendChild(frame)
        running.appendChild(el("div", cls="app-notes", testid="app-notes", aria_live="polite"))
        result_box = el("div", cls="app-tool-result", testid="app-tool-result")
        running.appendChild(el("details", cls="app-result", children=[el("summary", "The tool's result"), result_box]))
        messages = el("details", cls="app-trace", open=True)
        messages.appendChild(
            el("summary", children=[el("span", "App messages "), el("span", "0", testid="app-messages-count")])
        )
        messages.appendChild(el("ol", cls="app-messages", testid="app-messages"))
        running.appendChild(messages)
        self._messages = 0
        frame.src = src

    # -- messages ----------------------------------------------------------------------------
    def _on_message(self, evt: Any) -> None:
        host, frame = self.host, self.frame
        if host is None or frame is None:
            return
        if evt.source != frame.contentWindow or str(evt.origin) != self.origin:
            return  # not our app's frame: ignored
        try:
            text = js.JSON.stringify(evt.data)
            message = json.loads(str(text)) if text is not None else None
        except Exception:
            message = None
        self._trace("in", message)
        try:
            host.feed(message)
            self._run(host)
        except Exception as exc:
            report_error(exc)

    def _trace(self, direction: str, message: Any) -> None:
        listing = by_testid("app-messages")
        if listing is None:
            return
        if isinstance(message, dict):
            what = message.get("method") or ("error" if "error" in message else "result")
            ident = f" #{message['id']}" if "id" in message else ""
            summary = f"{'app → host' if direction == 'in' else 'host → app'} {what}{ident}"
        else:
            summary = f"{'app → host' if direction == 'in' else 'host → app'} (malformed)"
        body = json.dumps(message, indent=2)[:4000] if message is not None else "(not JSON)"
        entry = el(
            "li",
            testid="app-message",
            data_direction=direction,
            data_method=str(message.get("method", "")) if isinstance(message, dict) else "",
            children=[el("details", children=[el("summary", summary), el("pre", body)])],
        )
        listing.appendChild(entry)
        while listing.childElementCount > MAX_MESSAGES:
            listing.firstElementChild.remove()
        self._messages += 1
        set_text(by_testid("app-messages-count"), str(self._messages))

    def _run(self, host: AppHost) -> None:
        """Carry out what the host decided."""
        if host is not self.host:
            return
        for action in host.drain():
            self._do(host, action)
        state = by_testid("app-state")
        if state is not None:
            set_text(state, host.state)
            state.dataset.state = host.state

    def _do(self, host: AppHost, action: Action) -> None:
        if isinstance(action, PostMessage):
            if self.frame is not None and self.frame.contentWindow is not None:
                self._trace("out", action.message)
                self.frame.contentWindow.postMessage(js.JSON.parse(json.dumps(action.message)), self.origin)
        elif isinstance(action, CallTool):
            spawn(self._app_call(host, action))
        elif isinstance(action, ReadResource):
            spawn(self._app_read(host, action))
        elif isinstance(action, Resize):
            if self.frame is not None and action.height is not None:
                self.frame.style.height = f"{action.height}px"
                self.frame.dataset.height = str(action.height)
        elif isinstance(action, Log):
            self.explorer.add_log(action.level, action.logger, action.text)
        elif isinstance(action, Show):
            self._note(f"The app sent {'a message' if action.kind == 'message' else 'model context'}:", action.text)
        elif isinstance(action, OfferLink):
            self._offer_link(host, action)
        elif isinstance(action, Closed):
            self._remove(action.reason)

    async def _app_call(self, host: AppHost, action: CallTool) -> None:
        try:
            result = await self.explorer.call_tool(action.name, action.arguments, origin="app")
        except Exception as exc:
            host.call_done(action.request_id, error=str(exc) or type(exc).__name__)
        else:
            host.call_done(action.request_id, result=_dump(result))
        self._run(host)

    async def _app_read(self, host: AppHost, action: ReadResource) -> None:
        try:
            result = await self.explorer.read_resource(action.uri, origin="app")
        except Exception as exc:
            host.call_done(action.request_id, error=str(exc) or type(exc).__name__)
        else:
            host.call_done(action.request_id, result=_dump(result))
        self._run(host)

    def _note(self, title: str, text: str) -> Any:
        notes = by_testid("app-notes")
        node = el("div", cls="app-note", testid="app-note", children=[el("strong", title), el("pre", text)])
        if notes is not None:
            notes.appendChild(node)
        return node

    def _offer_link(self, host: AppHost, action: OfferLink) -> None:
        node = self._note("The app asks to open a link:", action.url)
        node.dataset.kind = "link"
        open_button = el("button", "Open in a new tab", type="button", cls="small-btn", testid="app-link-open")
        decline = el("button", "Decline", type="button", cls="small-btn", testid="app-link-decline")

        def decide(opened: bool) -> None:
            if opened:
                js.window.open(action.url, "_blank", "noopener,noreferrer")
            open_button.disabled = decline.disabled = True
            host.link_decided(action.request_id, opened)
            self._run(host)

        self.run_scope.on(open_button, "click", lambda _e: decide(True))
        self.run_scope.on(decline, "click", lambda _e: decide(False))
        node.appendChild(el("div", cls="apps-actions", children=[open_button, decline]))

    # -- closing ------------------------------------------------------------------------------
    def _teardown(self, reason: str) -> None:
        host = self.host
        if host is None:
            return
        host.teardown(reason)
        self._run(host)
        if host.state == "tearing-down":
            spawn(self._wait_teardown(host))

    async def _wait_teardown(self, host: AppHost) -> None:
        await asyncio.sleep(TEARDOWN_TIMEOUT)
        host.teardown_timeout()
        self._run(host)

    def _remove(self, reason: str) -> None:
        if self._listener is not None:
            js.window.removeEventListener("message", self._listener)
            self._listener.destroy()
            self._listener = None
        if self.frame is not None:
            self.frame.remove()
            self.frame = None
        self.host = None
        self.run_scope.clear()
        running = by_testid("app-running")
        clear(running)
        running.appendChild(el("p", f"App closed ({reason}).", cls="muted small", testid="app-closed"))

"""The History tab: every call of this server, saved requests, re-run, edit, export and import (Pyodide only).

The model and its formats are :mod:`ptsite.history` (pure); this module keeps one
:class:`~ptsite.history.ServerHistory` per server URL in ``localStorage`` and draws the pane.
The server shown is the connected one, else the one the connection panel names: browsing
works without a connection, re-running needs one.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import js
from pyodide.ffi import to_js

from .dom import Scope, block_node, by_testid, clear, el, import_chosen_file, set_text, spawn
from .features import CallRecord, Feature
from .history import (
    HistoryEntry,
    HistoryImportError,
    SavedRequest,
    ServerHistory,
    dump_export,
    dump_store,
    entry_from_record,
    format_duration,
    load_store,
    matches,
    merge,
    parse_export,
    storage_key,
)
from .settings import describe_error, endpoint_url
from .views import prompt_views, resource_contents_blocks

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["HistoryFeature"]


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


def _when(wall: float) -> str:
    """The local date and time of ``wall`` (seconds since the epoch), from the browser's clock."""
    date = js.Date.new(wall * 1000)
    return f"{date.toLocaleDateString()!s} {str(date.toTimeString())[:8]}"


def _drop_event(func: Callable[[str], None], key: str, _evt: Any) -> None:
    func(key)


class HistoryFeature(Feature):
    """The History tab (``history-root``): one list per server URL, kept in ``localStorage``."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.scope = Scope()  # the pane's fixed controls
        self.list_scope = Scope()
        self.detail_scope = Scope()
        self.stores: dict[str, ServerHistory] = {}
        self.selected: tuple[str, str] | None = None  # ("entry", id) or ("saved", name)
        self.root: Any = None
        self.shown_server: str | None = None

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        """Draw the pane and follow the connection panel's server."""
        self.root = by_testid("history-root")
        self.filter = el("input", type="search", testid="history-filter", spellcheck="false", placeholder="tool name…")
        self.import_input = el("input", type="file", testid="history-import-file", accept="application/json,.json")
        export = el("button", "Export", type="button", cls="small-btn", testid="history-export")
        self.clear_button = el("button", "Clear history", type="button", cls="small-btn", testid="history-clear")
        self.confirm = el(
            "span",
            cls="history-confirm",
            testid="history-clear-confirmation",
            hidden=True,
            role="alert",
            children=[
                el("span", "", testid="history-clear-question"),
                el("button", "Yes, clear", type="button", cls="small-btn danger", testid="history-clear-confirm"),
                el("button", "Keep", type="button", cls="small-btn", testid="history-clear-cancel"),
            ],
        )
        toolbar = el(
            "div",
            cls="toolbar history-toolbar",
            children=[
                el("label", cls="inline", children=[el("span", "Filter"), self.filter]),
                el(
                    "div",
                    cls="history-actions",
                    children=[
                        export,
                        el("label", cls="inline small file-label", children=[el("span", "Import"), self.import_input]),
                        self.clear_button,
                        self.confirm,
                    ],
                ),
            ],
        )
        self.server_line = el("p", "", cls="small muted", testid="history-server")
        self.notice = el("p", "", cls="history-notice", testid="history-notice", role="status", hidden=True)
        self.saved_list = el("ul", cls="item-list history-list", testid="saved-list", aria_label="Saved requests")
        self.history_list = el("ul", cls="item-list history-list", testid="history-list", aria_label="History")
        self.detail = el("div", cls="detail-col", testid="history-detail")
        lists = el(
            "div",
            cls="list-col",
            children=[
                el("div", cls="list-head", children=[el("h3", "Saved requests")]),
                self.saved_list,
                el("div", cls="list-head", children=[el("h3", "History")]),
                self.history_list,
            ],
        )
        self.root.appendChild(
            el(
                "div",
                cls="history",
                children=[
                    toolbar,
                    self.server_line,
                    self.notice,
                    el("div", cls="split", children=[lists, self.detail]),
                ],
            )
        )
        self.scope.on(self.filter, "input", lambda _e: self.render())
        self.scope.on(export, "click", lambda _e: self.export())
        self.scope.on(self.import_input, "change", lambda _e: self.import_file())
        self.scope.on(self.clear_button, "click", lambda _e: self._ask_clear())
        self.scope.on(by_testid("history-clear-confirm"), "click", lambda _e: self._clear())
        self.scope.on(by_testid("history-clear-cancel"), "click", lambda _e: self._hide_confirm())
        for testid in ("server-url", "transport-select"):
            self.scope.on(by_testid(testid), "change", lambda _e: self.render(reset=True))
        self.scope.on(by_testid("tab-history"), "click", lambda _e: self.render())
        self.render(reset=True)

    # ------------------------------------------------------------ store

    def server(self) -> str:
        """The server whose history is shown: the connected one, else the panel's."""
        if self.explorer.client is not None and self.explorer.url:
            return self.explorer.url
        settings = self.explorer.settings()
        try:
            return endpoint_url(settings.server, settings.transport)
        except ValueError:
            return ""

    def store(self, server: str) -> ServerHistory:
        """``server``'s history, read from ``localStorage`` the first time."""
        if server not in self.stores:
            try:
                text = js.localStorage.getItem(storage_key(server))
            except Exception as exc:  # storage disabled (a privacy setting)
                self.say(f"This browser refuses local storage ({exc}): history lasts until the page closes.", True)
                text = None
            store, problem = load_store(text if isinstance(text, str) else None)  # a missing key is JS null
            if problem:
                self.say(problem, True)
            self.stores[server] = store
        return self.stores[server]

    def put(self, server: str, store: ServerHistory) -> None:
        """Keep ``store`` for ``server`` (in memory, and in ``localStorage`` when it fits)."""
        self.stores[server] = store
        try:
            js.localStorage.setItem(storage_key(server), dump_store(store))
            return
        except Exception as exc:
            problem = str(exc)
        half = store.trimmed(len(store.history) // 2)
        try:
            js.localStorage.setItem(storage_key(server), dump_store(half))
        except Exception:
            self.say(
                f"The browser's storage is full ({problem}): this history is kept only until the page closes.", True
            )
            return
        self.stores[server] = half
        self.say(f"The browser's storage is full ({problem}): only the {len(half.history)} newest entries kept.", True)

    def say(self, text: str, error: bool = False) -> None:
        """Show a notice above the lists."""
        if self.root is None:
            return
        set_text(self.notice, text)
        self.notice.dataset.state = "error" if error else "ok"
        self.notice.hidden = not text

    # ------------------------------------------------------------ hooks

    def on_call(self, record: CallRecord) -> None:
        """Keep the call in its server's history, newest first."""
        if not record.server:
            return
        self.put(record.server, self.store(record.server).add(entry_from_record(record)))
        if record.server == self.server():
            self.render()

    async def connected(self, client: Any) -> None:
        """Show the connected server's history."""
        self.render(reset=True)

    def disconnected(self) -> None:
        """Keep showing the same server's history (for browsing)."""
        self.render()

    # ------------------------------------------------------------ lists

    def render(self, reset: bool = False) -> None:
        """Redraw the lists (and, with ``reset``, empty the detail)."""
        server = self.server()
        if server != self.shown_server:  # another server now (a saved server picked, the URL edited)
            self.shown_server, reset = server, True
        store = self.store(server) if server else ServerHistory()
        set_text(self.server_line, f"History of {server}" if server else "Fill in a server URL to see its history.")
        set_text(by_testid("history-count"), str(len(store.history)) if store.history else "")
        self.list_scope.clear()
        query = str(self.filter.value)
        clear(self.saved_list)
        saved = [s for s in store.saved if not query or query.lower() in f"{s.name} {s.kind} {s.target}".lower()]
        if not saved:
            self.saved_list.appendChild(el("li", "No saved requests." if not query else "No match.", cls="empty"))
        for request in saved:
            button = el(
                "button",
                type="button",
                testid="saved-item",
                data_name=request.name,
                cls="selected" if self.selected == ("saved", request.name) else "",
                children=[
                    el("span", request.name, cls="name"),
                    el("span", f"{request.kind} · {request.target}", cls="desc"),
                ],
            )
            self.list_scope.on(button, "click", functools.partial(_drop_event, self.show_saved, request.name))
            self.saved_list.appendChild(el("li", children=[button]))
        clear(self.history_list)
        entries = [e for e in store.history if matches(e, query)]
        if not entries:
            empty = "No calls yet: call a tool, get a prompt or read a resource." if not query else "No match."
            self.history_list.appendChild(el("li", empty, cls="empty"))
        for entry in entries:
            self.history_list.appendChild(el("li", children=[self._entry_button(entry)]))
        if reset:
            self.selected = None
            self._empty_detail()

    def _entry_button(self, entry: HistoryEntry) -> Any:
        outcome_cls = {"ok": "ok", "tool-error": "warn", "error": "err", "cancelled": "warn"}[entry.outcome]
        era = f"{entry.protocol_version} ({entry.era})" if entry.era else entry.protocol_version
        button = el(
            "button",
            type="button",
            testid="history-entry",
            data_id=entry.id,
            data_kind=entry.kind,
            data_outcome=entry.outcome,
            cls="selected" if self.selected == ("entry", entry.id) else "",
            children=[
                el(
                    "span",
                    cls="history-line",
                    children=[
                        el("span", entry.kind, cls="badge"),
                        el("span", entry.name, cls="name history-name"),
                        el("span", entry.outcome, cls=f"badge {outcome_cls}", testid="history-outcome"),
                    ],
                ),
                el(
                    "span",
                    f"{format_duration(entry.duration)} · {era} · {_when(entry.started)[-8:]}",
                    cls="desc",
                    testid="history-meta",
                ),
            ],
        )
        self.list_scope.on(button, "click", functools.partial(_drop_event, self.show_entry, entry.id))
        return button

    def _empty_detail(self) -> None:
        self.detail_scope.clear()
        clear(self.detail)
        self.detail.appendChild(el("p", "Select a call to see its arguments and result.", cls="empty"))

    def _mark(self, selected: tuple[str, str]) -> None:
        self.selected = selected
        for button in self.root.querySelectorAll("[data-testid=history-entry]"):
            button.classList.toggle("selected", selected == ("entry", str(button.dataset.id)))
        for button in self.root.querySelectorAll("[data-testid=saved-item]"):
            button.classList.toggle("selected", selected == ("saved", str(button.dataset.name)))

    # ------------------------------------------------------------ detail

    def show_entry(self, entry_id: str) -> None:
        """Show one call: its arguments, result and actions."""
        entry = self.store(self.server()).entry(entry_id)
        if entry is None:
            return
        self.say("")
        self._mark(("entry", entry_id))
        self.detail_scope.clear()
        clear(self.detail)
        era = f"{entry.protocol_version} ({entry.era} era)" if entry.era else entry.protocol_version or "?"
        self.detail.appendChild(el("div", cls="detail-head", children=[el("h3", entry.name, testid="history-title")]))
        meta = (
            f"{entry.kind} · {entry.outcome} · {format_duration(entry.duration)} · {era} · "
            f"{_when(entry.started)} · from {entry.origin}"
        )
        self.detail.appendChild(el("p", meta, cls="small muted", testid="history-detail-meta"))
        self.detail.appendChild(el("h4", "Arguments" if entry.kind != "resource" else "URI"))
        shown = entry.arguments if entry.kind != "resource" else entry.name
        self.detail.appendChild(
            el("pre", json.dumps(shown, indent=2, ensure_ascii=False), cls="block json", testid="history-arguments")
        )
        self.detail.appendChild(el("h4", "Result"))
        box = el("div", testid="history-result")
        self.detail.appendChild(box)
        if entry.error:
            box.appendChild(el("pre", entry.error, cls="block notice", testid="history-error-text"))
        elif entry.truncated:
            box.appendChild(
                el(
                    "p",
                    f"Result truncated: it was longer than this page keeps; its first "
                    f"{len(entry.result_preview or '')} characters of JSON:",
                    cls="hint",
                    testid="history-truncated",
                )
            )
            box.appendChild(el("pre", entry.result_preview or "", cls="block json"))
        elif entry.result is not None:
            self._show_result(box, entry.kind, entry.result)
        else:
            box.appendChild(el("p", "No result (cancelled).", cls="muted"))
        self._actions(entry.kind, entry.name, entry.arguments, entry.name)

    def show_saved(self, name: str) -> None:
        """Show one saved request with its actions (run, edit, rename, delete)."""
        request = next((s for s in self.store(self.server()).saved if s.name == name), None)
        if request is None:
            return
        self.say("")
        self._mark(("saved", name))
        self.detail_scope.clear()
        clear(self.detail)
        self.detail.appendChild(el("div", cls="detail-head", children=[el("h3", request.name, testid="history-title")]))
        self.detail.appendChild(
            el("p", f"saved {request.kind} request · {request.target}", cls="small muted", testid="history-detail-meta")
        )
        shown = request.arguments if request.kind != "resource" else request.target
        self.detail.appendChild(
            el("pre", json.dumps(shown, indent=2, ensure_ascii=False), cls="block json", testid="history-arguments")
        )
        rename_box = el("input", type="text", testid="saved-rename-name", value=request.name, spellcheck="false")
        rename = el("button", "Rename", type="button", cls="small-btn", testid="saved-rename")
        delete = el("button", "Delete", type="button", cls="small-btn danger", testid="saved-delete")
        self.detail.appendChild(
            el(
                "div",
                cls="buttons",
                children=[el("label", cls="inline", children=[el("span", "Name"), rename_box]), rename, delete],
            )
        )

        def do_rename(_evt: Any) -> None:
            server = self.server()
            try:
                store = self.store(server).rename(request.name, str(rename_box.value))
            except ValueError as exc:
                self.say(f"Not renamed: {exc}.", True)
                return
            new = str(rename_box.value).strip()
            self.put(server, store)
            self.render()
            self.show_saved(new)
            self.say(f"Renamed to {new!r}.")

        def do_delete(_evt: Any) -> None:
            server = self.server()
            self.put(server, self.store(server).delete(request.name))
            self.say(f"Deleted the saved request {request.name!r}.")
            self.render(reset=True)

        self.detail_scope.on(rename, "click", do_rename)
        self.detail_scope.on(delete, "click", do_delete)
        self._actions(request.kind, request.target, request.arguments, request.name, saved=True)

    def _actions(self, kind: str, target: str, arguments: dict[str, Any], label: str, saved: bool = False) -> None:
        """Re-run, edit and re-run, and (for a history entry) save with a name: a row under the title."""
        rerun = el("button", "Run" if saved else "Re-run", type="button", cls="primary", testid="history-rerun")
        edit = el("button", "Edit and re-run", type="button", testid="history-edit")
        row = el("div", cls="buttons", children=[rerun, edit])
        self.detail.insertBefore(row, by_testid("history-detail-meta", self.detail).nextSibling)
        if not saved:
            name_box = el("input", type="text", testid="history-save-name", value=label, spellcheck="false")
            save = el("button", "Save", type="button", testid="history-save")
            row.appendChild(el("label", cls="inline", children=[el("span", "Save as"), name_box]))
            row.appendChild(save)

            def do_save(_evt: Any) -> None:
                server = self.server()
                request = SavedRequest(str(name_box.value), kind, target, dict(arguments), time.time())  # type: ignore[arg-type]
                try:
                    store = self.store(server).save(request)
                except ValueError as exc:
                    self.say(f"Not saved: {exc}.", True)
                    return
                self.put(server, store)
                self.say(f"Saved as {request.name.strip()!r}.")
                self.render()

            self.detail_scope.on(save, "click", do_save)
        editor = el("div", testid="history-editor", hidden=True)
        out = el("div", testid="history-rerun-result")
        self.detail.appendChild(editor)
        self.detail.appendChild(out)
        self.detail_scope.on(rerun, "click", lambda _e: self.run(kind, target, arguments, out))
        self.detail_scope.on(edit, "click", lambda _e: self._edit(kind, target, arguments, editor, out))

    def _edit(self, kind: str, target: str, arguments: dict[str, Any], editor: Any, out: Any) -> None:
        """A tool opens in the Tools tab's JSON editor; a prompt or resource gets an editor here."""
        if kind == "tool":
            if not any(t.name == target for t in self.explorer.tools):
                self.say(
                    self._offline(f"edit {target!r}")
                    if self.explorer.client is None
                    else (f"The server lists no tool {target!r} now: it cannot be opened."),
                    True,
                )
                return
            self.explorer.show_tab("tools")
            self.explorer.select_tool(target, arguments)
            return
        clear(editor)
        editor.hidden = False
        if kind == "resource":
            box = el("input", type="text", testid="history-edit-uri", value=target, spellcheck="false")
            editor.appendChild(el("label", children=[el("span", "Resource URI"), box]))
        else:
            box = el("textarea", cls="code", rows=6, testid="history-edit-args", spellcheck="false")
            box.value = json.dumps(arguments, indent=2)
            editor.appendChild(
                el("label", children=[el("span", f"Arguments of {target} (JSON object of strings)"), box])
            )
        problem = el("p", "", cls="error-text", testid="history-edit-error", hidden=True)
        go = el("button", "Run", type="button", cls="primary", testid="history-edit-run")
        editor.appendChild(problem)
        editor.appendChild(el("div", cls="buttons", children=[go]))

        def run_edited(_evt: Any) -> Any:
            if kind == "resource":
                uri = str(box.value).strip()
                problem.hidden = bool(uri)
                set_text(problem, "" if uri else "Give a URI.")
                return self.run(kind, uri, {}, out) if uri else None
            try:
                args = json.loads(str(box.value))
            except ValueError as exc:
                args, text = None, f"Not JSON: {exc}"
            else:
                text = "" if isinstance(args, dict) else "The arguments must be a JSON object."
            problem.hidden = not text
            set_text(problem, text)
            return None if text else self.run(kind, target, args, out)

        self.detail_scope.on(go, "click", run_edited)

    def _offline(self, what: str) -> str:
        server = self.server() or "the server"
        return f"Not connected: connect to {server} to {what} (history can be browsed offline)."

    def run(self, kind: str, target: str, arguments: dict[str, Any], out: Any) -> Any:
        """Make the call again through the explorer (``origin="history"``) and show its result in ``out``."""
        clear(out)
        if self.explorer.client is None:
            out.appendChild(el("p", self._offline("re-run this call"), cls="error-text", testid="history-rerun-error"))
            return None
        return spawn(self._run(kind, target, arguments, out))

    async def _run(self, kind: str, target: str, arguments: dict[str, Any], out: Any) -> None:
        out.appendChild(el("p", "Calling…", cls="muted"))
        try:
            if kind == "tool":
                answer: Any = await self.explorer.call_tool(target, arguments, origin="history")
            elif kind == "prompt":
                answer = await self.explorer.get_prompt(
                    target, {k: str(v) for k, v in arguments.items()}, origin="history"
                )
            else:
                answer = await self.explorer.read_resource(target, origin="history")
        except Exception as exc:
            clear(out)
            out.appendChild(
                el("pre", describe_error(exc, self.explorer.url), cls="block notice", testid="history-rerun-error")
            )
            return
        clear(out)
        out.appendChild(el("h4", "Re-run result"))
        box = el("div")
        out.appendChild(box)
        self._show_result(box, kind, _dump(answer))

    def _show_result(self, box: Any, kind: str, raw: dict[str, Any]) -> None:
        if kind == "tool":
            self.explorer.render_result(box, raw)
        elif kind == "prompt":
            for message in prompt_views(raw):
                box.appendChild(
                    el(
                        "div",
                        cls="card",
                        children=[el("div", message.role, cls="meta"), block_node(message.block, "history-block")],
                    )
                )
        else:
            for block in resource_contents_blocks(raw.get("contents")):
                box.appendChild(block_node(block, testid="history-block"))

    # ------------------------------------------------------------ clear, export, import

    def _ask_clear(self) -> None:
        count = len(self.store(self.server()).history)
        if not count:
            self.say("The history is empty already.")
            return
        set_text(by_testid("history-clear-question"), f"Clear {count} history entries of this server? ")
        self.confirm.hidden = False
        self.clear_button.hidden = True
        by_testid("history-clear-cancel").focus()

    def _hide_confirm(self) -> None:
        self.confirm.hidden = True
        self.clear_button.hidden = False

    def _clear(self) -> None:
        self._hide_confirm()
        server = self.server()
        self.put(server, self.store(server).cleared())
        self.say("History cleared (saved requests kept).")
        self.render(reset=True)

    def export(self) -> None:
        """Download this server's history and saved requests as a JSON file."""
        server = self.server()
        if not server:
            self.say("Fill in a server URL first: history is kept per server.", True)
            return
        text = dump_export(server, self.store(server))
        blob = js.Blob.new(to_js([text]), to_js({"type": "application/json"}, dict_converter=js.Object.fromEntries))
        url = js.URL.createObjectURL(blob)
        host = "".join(c if c.isalnum() else "-" for c in server.split("://", 1)[-1]).strip("-")
        link = el("a", href=str(url), download=f"mcp-history-{host}.json", hidden=True)
        js.document.body.appendChild(link)
        link.click()
        link.remove()
        js.setTimeout(to_js(lambda: js.URL.revokeObjectURL(url)), 10_000)
        self.say("Exported this server's history and saved requests.")

    def import_file(self) -> Any:
        """Read the chosen file and merge it into this server's history (nothing changes when it is invalid)."""
        return spawn(self._import())

    async def _import(self) -> None:
        server = self.server()

        def parse(text: str) -> Any:
            if not server:
                raise HistoryImportError("fill in a server URL first: history is kept per server")
            return parse_export(text)

        chosen = await import_chosen_file(self.import_input, parse, HistoryImportError, self.say)
        if chosen is None:
            return
        name, (source, incoming) = chosen
        store, (entries, saved) = merge(self.store(server), incoming)
        self.put(server, store)
        where = f" (exported from {source})" if source and source != server else ""
        self.say(f"Imported {entries} history entries and {saved} saved requests from {name}{where}.")
        self.render()

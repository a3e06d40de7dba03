"""The command palette (Ctrl+K / Cmd+K) and the tab bar's keyboard behaviour.

The palette is a modal dialog with a labelled combobox and a listbox of commands
(:mod:`ptsite.commands` ranks them): arrow keys move, Enter runs, Escape closes and focus
goes back where it was. The commands are built from the explorer's state each time it opens:
connect or disconnect, each tab (read from the page's ``[data-tab]`` buttons), refresh the lists,
open a tool, resource, template or prompt by name, clear the log or trace, re-run the last call,
go to the server's waiting request.
"?" (outside a text field) opens it on the keyboard shortcuts.

The tab bar becomes a WAI-ARIA tablist by behaviour: Left/Right/Home/End move between tabs
(activating them), the selected tab alone is in the Tab order (roving ``tabindex``), and each
pane is a ``tabpanel`` labelled by its tab. Those are attributes set here; the markup stays as is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import js
from pyodide.ffi import create_proxy

from .commands import SHORTCUTS, Command, rank, tab_move
from .dom import Scope, by_testid, clear, el, set_text, spawn
from .features import CallRecord, Feature

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["PaletteFeature"]

Action = Callable[[], Any]


@dataclass
class _Entry:
    command: Command
    action: Action
    keeps_focus: bool = False  # the action moves focus itself: do not return it on close


def _tab_label(tab: Any) -> str:
    """A tab's name without its count badge."""
    count = tab.querySelector(".count")
    text = str(tab.textContent)
    if count is not None:
        text = text.replace(str(count.textContent), "", 1)
    return " ".join(text.split())


def _typing_in(target: Any) -> bool:
    tag = str(getattr(target, "tagName", "") or "").lower()
    return tag in ("input", "textarea", "select") or bool(getattr(target, "isContentEditable", False))


class PaletteFeature(Feature):
    """Command palette, shortcuts and the tab bar's arrow keys."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.scope = Scope()
        self.list_scope = Scope()
        self.entries: list[_Entry] = []
        self.shown: list[_Entry] = []
        self.active = 0
        self.return_focus: Any = None
        self.last_call: CallRecord | None = None
        self.observer: Any = None

    # ----------------------------------------------------------------- setup

    def setup(self) -> None:
        """Fill ``palette-root`` (button + dialog), bind the shortcuts and the tab bar's keys."""
        root = by_testid("palette-root")
        if root is None:
            return
        self.button = el(
            "button",
            type="button",
            cls="palette-button",
            testid="palette-button",
            aria_keyshortcuts="Control+K Meta+K",
            aria_haspopup="dialog",
            children=[el("span", "Commands"), el("kbd", "Ctrl+K", cls="shortcut", aria_hidden="true")],
        )
        self.input = el(
            "input",
            type="text",
            id="palette-input",
            testid="palette-input",
            role="combobox",
            aria_expanded="true",
            aria_controls="palette-list",
            aria_autocomplete="list",
            autocomplete="off",
            spellcheck="false",
            placeholder="Type a command, a tool, a tab… (? for shortcuts)",
        )
        self.listbox = el("ul", id="palette-list", role="listbox", testid="palette-list", aria_label="Commands")
        self.empty = el("p", "No command matches.", cls="muted small", testid="palette-empty", hidden=True)
        self.help = el("div", cls="palette-help", testid="palette-help", hidden=True)
        self.help.appendChild(el("h3", "Keyboard shortcuts"))
        keys = el("dl")
        for combo, what in SHORTCUTS:
            keys.appendChild(el("dt", children=[el("kbd", combo)]))
            keys.appendChild(el("dd", what))
        self.help.appendChild(keys)
        self.status = el("div", "", cls="sr-only", testid="palette-status", role="status", aria_live="polite")
        close = el("button", "Close", type="button", cls="small-btn", testid="palette-close")
        help_button = el(
            "button", "Shortcuts", type="button", cls="small-btn", testid="palette-help-toggle", aria_expanded="false"
        )
        self.help_button = help_button
        head = el(
            "div",
            cls="palette-head",
            children=[el("h2", "Commands", id="palette-title"), el("div", children=[help_button, close])],
        )
        self.dialog = el(
            "div",
            cls="palette-dialog",
            role="dialog",
            aria_modal="true",
            aria_labelledby="palette-title",
            testid="palette-dialog",
            children=[
                head,
                el("label", "Search commands", for_="palette-input", cls="sr-only"),
                self.input,
                self.listbox,
                self.empty,
                self.help,
                self.status,
            ],
        )
        self.backdrop = el("div", cls="palette-backdrop", testid="palette", hidden=True, children=[self.dialog])
        clear(root)
        root.appendChild(self.button)
        root.appendChild(self.backdrop)

        self.scope.on(self.button, "click", lambda _e: self.open())
        self.scope.on(close, "click", lambda _e: self.close())
        self.scope.on(help_button, "click", lambda _e: self._toggle_help())
        self.scope.on(self.input, "input", lambda _e: self._filter())
        self.scope.on(self.dialog, "keydown", self._dialog_key)
        self.scope.on(self.backdrop, "mousedown", self._backdrop_click)
        self.scope.on(js.document, "keydown", self._global_key)
        self._setup_tabs()

    # ------------------------------------------------------------- the tabs

    def _tabs(self) -> list[Any]:
        return list(js.document.querySelectorAll(".tabs [data-tab]"))

    def _setup_tabs(self) -> None:
        bar = js.document.querySelector(".tabs")
        if bar is None:
            return
        bar.setAttribute("aria-label", "Explorer panes")
        for tab in self._tabs():
            name = str(tab.dataset.tab)
            if not tab.id:
                tab.id = f"tab-button-{name}"
            pane = js.document.querySelector(f'[data-pane="{name}"]')
            if pane is not None:
                if not pane.id:
                    pane.id = f"tab-panel-{name}"
                pane.setAttribute("role", "tabpanel")
                pane.setAttribute("aria-labelledby", str(tab.id))
                tab.setAttribute("aria-controls", str(pane.id))
        self._sync_tabs()
        self.scope.on(bar, "keydown", self._tab_key)
        # show_tab() only toggles the "active" class: follow it from any caller (clicks, features, links)
        self._observer_proxy = create_proxy(lambda _records, _observer: self._sync_tabs())
        self.observer = js.MutationObserver.new(self._observer_proxy)
        options = js.Object.new()
        options.attributes = True
        options.attributeFilter = js.Array.of("class")
        for tab in self._tabs():
            self.observer.observe(tab, options)

    def _sync_tabs(self) -> None:
        tabs = self._tabs()
        selected = next((t for t in tabs if t.classList.contains("active")), tabs[0] if tabs else None)
        for tab in tabs:
            on = tab == selected
            want = "true" if on else "false"
            if str(tab.getAttribute("aria-selected")) != want:
                tab.setAttribute("aria-selected", want)
            index = "0" if on else "-1"
            if str(tab.getAttribute("tabindex")) != index:
                tab.setAttribute("tabindex", index)

    def _tab_key(self, evt: Any) -> None:
        tabs = self._tabs()
        current = next((i for i, t in enumerate(tabs) if t == js.document.activeElement), None)
        if current is None:
            return
        target = tab_move(current, len(tabs), str(evt.key))
        if target is None:
            return
        evt.preventDefault()
        tabs[target].focus()
        tabs[target].click()

    # ------------------------------------------------------------ shortcuts

    def _global_key(self, evt: Any) -> None:
        key = str(evt.key)
        if key.lower() == "k" and (evt.ctrlKey or evt.metaKey) and not evt.altKey:
            evt.preventDefault()
            if self.backdrop.hidden:
                self.open()
            else:
                self.close()
            return
        if key == "?" and self.backdrop.hidden and not _typing_in(evt.target) and not (evt.ctrlKey or evt.metaKey):
            evt.preventDefault()
            self.open(show_help=True)

    def _dialog_key(self, evt: Any) -> None:
        key = str(evt.key)
        if key == "Escape":
            evt.preventDefault()
            evt.stopPropagation()
            self.close()
        elif key in ("ArrowDown", "ArrowUp") and self.shown:
            evt.preventDefault()
            step = 1 if key == "ArrowDown" else -1
            self._highlight((self.active + step) % len(self.shown))
        elif key in ("Home", "End") and self.shown and evt.ctrlKey:
            evt.preventDefault()
            self._highlight(0 if key == "Home" else len(self.shown) - 1)
        elif key == "Enter" and evt.target == self.input:
            evt.preventDefault()
            self._run(self.active)
        elif key == "Tab":  # keep focus in the modal dialog
            focusable = [n for n in self.dialog.querySelectorAll("input, button") if not n.disabled]
            if not focusable:
                return
            here = next((i for i, n in enumerate(focusable) if n == js.document.activeElement), -1)
            step = -1 if evt.shiftKey else 1
            evt.preventDefault()
            focusable[(here + step) % len(focusable)].focus()

    def _backdrop_click(self, evt: Any) -> None:
        if evt.target == self.backdrop:
            self.close()

    # --------------------------------------------------------------- palette

    def open(self, show_help: bool = False) -> None:
        """Show the palette with every command, focus in its search box."""
        if self.backdrop.hidden:
            active = js.document.activeElement
            self.return_focus = active if active is not None and active != js.document.body else None
        self.entries = self._commands()
        self.input.value = ""
        self.backdrop.hidden = False
        self._set_help(show_help)
        self._filter()
        self.input.focus()

    def close(self, return_focus: bool = True) -> None:
        """Hide the palette; focus goes back to where it was."""
        if self.backdrop.hidden:
            return
        self.backdrop.hidden = True
        self.list_scope.clear()
        back, self.return_focus = self.return_focus, None
        if return_focus and back is not None and back.isConnected:
            back.focus()

    def _toggle_help(self) -> None:
        self._set_help(self.help.hidden)

    def _set_help(self, on: bool) -> None:
        self.help.hidden = not on
        self.help_button.setAttribute("aria-expanded", "true" if on else "false")

    def _filter(self) -> None:
        query = str(self.input.value)
        if query.strip() == "?":
            self._set_help(True)
            query = ""
        by_key = {e.command.key: e for e in self.entries}
        self.shown = [by_key[c.key] for c in rank([e.command for e in self.entries], query)]
        self.list_scope.clear()
        clear(self.listbox)
        section = None
        for index, entry in enumerate(self.shown):
            command = entry.command
            if command.section != section and not query.strip():
                section = command.section
                self.listbox.appendChild(el("li", section, role="presentation", cls="palette-section"))
            children = [el("span", command.title, cls="title")]
            if command.hint:
                children.append(el("span", command.hint, cls="hint-text"))
            option = el(
                "li",
                role="option",
                id=f"palette-option-{index}",
                testid="palette-option",
                data_key=command.key,
                aria_selected="false",
                children=children,
            )
            self.listbox.appendChild(option)
            self.list_scope.on(option, "click", _runner(self, index))
            self.list_scope.on(option, "mousemove", _highlighter(self, index))
        self.empty.hidden = bool(self.shown)
        set_text(self.status, f"{len(self.shown)} commands" if self.shown else "No command matches")
        self._highlight(0)

    def _highlight(self, index: int) -> None:
        options = list(self.listbox.querySelectorAll('[role="option"]'))
        self.active = index if 0 <= index < len(options) else 0
        for i, option in enumerate(options):
            on = i == self.active
            option.setAttribute("aria-selected", "true" if on else "false")
            option.classList.toggle("active", on)
            if on:
                option.scrollIntoView(_nearest())
        if options:
            self.input.setAttribute("aria-activedescendant", f"palette-option-{self.active}")
        else:
            self.input.removeAttribute("aria-activedescendant")

    def _run(self, index: int) -> None:
        if not 0 <= index < len(self.shown):
            return
        entry = self.shown[index]
        self.close(return_focus=not entry.keeps_focus)
        outcome = entry.action()
        if outcome is not None and hasattr(outcome, "__await__"):
            spawn(outcome)

    # -------------------------------------------------------------- commands

    def _commands(self) -> list[_Entry]:
        ex = self.explorer
        connected = ex.client is not None
        out: list[_Entry] = []

        def add(key: str, title: str, section: str, action: Action, *, hint: str = "", **kw: Any) -> None:
            keywords = tuple(kw.pop("keywords", ()))
            out.append(_Entry(Command(key, title, section, keywords, hint), action, **kw))

        if connected:
            add("disconnect", "Disconnect", "Connection", ex.disconnect, keywords=("close",))
        else:
            add("connect", "Connect", "Connection", ex.connect, hint=str(by_testid("server-url").value))
        waiting = len(ex.input_requests.pending)
        if waiting:
            add(
                "answer-request",
                "Answer the server's request" + (f" (1 of {waiting})" if waiting > 1 else ""),
                "Connection",
                ex.input_requests.focus_first,
                keeps_focus=True,
                keywords=("sampling", "elicitation", "input"),
            )
        add(
            "focus-url",
            "Edit the server URL",
            "Connection",
            _focus("server-url"),
            keeps_focus=True,
            keywords=("address", "server"),
        )
        for tab in self._tabs():
            name = str(tab.dataset.tab)
            label = _tab_label(tab)
            add(f"tab:{name}", f"Go to {label}", "Go to", _go_tab(ex, tab, name), keeps_focus=True, keywords=(name,))
        if connected:
            for what in ("tools", "resources", "prompts"):
                add(f"refresh:{what}", f"Refresh {what}", "Lists", _click(f"{what}-refresh"), keywords=("reload",))
        add("clear:log", "Clear the log", "Panes", _click("log-clear"))
        add("clear:trace", "Clear the trace", "Panes", _click("trace-clear"))
        last = self.last_call
        if connected and last is not None and last.server == ex.url:
            add(
                "rerun",
                f"Re-run last call: {last.name}",
                "History",
                _rerun(ex, last),
                keeps_focus=True,
                keywords=("again", "repeat", last.kind),
            )
        add("help", "Show keyboard shortcuts", "Help", lambda: self.open(show_help=True), keeps_focus=True)
        for tool in ex.tools:
            add(
                f"tool:{tool.name}",
                f"Open tool {tool.name}",
                "Tools",
                _open_tool(ex, tool.name),
                keeps_focus=True,
                hint=tool.title or "",
            )
        for resource in ex.resources:
            add(
                f"resource:{resource.uri}",
                f"Read resource {resource.name}",
                "Resources",
                _open_resource(ex, str(resource.uri)),
                keeps_focus=True,
                hint=str(resource.uri),
                keywords=(str(resource.uri),),
            )
        for template in ex.templates:
            add(
                f"template:{template.name}",
                f"Open template {template.name}",
                "Resources",
                _open_in(ex, "resources", functools.partial(ex.select_template, template.name), "template-read"),
                keeps_focus=True,
                hint=template.uri_template,
            )
        for prompt in ex.prompts:
            add(
                f"prompt:{prompt.name}",
                f"Open prompt {prompt.name}",
                "Prompts",
                _open_in(ex, "prompts", functools.partial(ex.select_prompt, prompt.name), "prompt-get"),
                keeps_focus=True,
                hint=prompt.title or "",
            )
        return out

    # ----------------------------------------------------------------- hooks

    def on_call(self, record: CallRecord) -> None:
        """Remember the last call for "Re-run last call"."""
        if record.origin != "app":
            self.last_call = record


# ------------------------------------------------------------------ actions


def _nearest() -> Any:
    options = js.Object.new()
    options.block = "nearest"
    return options


def _runner(palette: PaletteFeature, index: int) -> Callable[[Any], None]:
    return lambda _e: palette._run(index)


def _highlighter(palette: PaletteFeature, index: int) -> Callable[[Any], None]:
    def move(_evt: Any) -> None:
        if palette.active != index:
            palette._highlight(index)

    return move


def _click(testid: str) -> Action:
    def run() -> None:
        node = by_testid(testid)
        if node is not None and not node.disabled:
            node.click()

    return run


def _focus(testid: str) -> Action:
    def run() -> None:
        node = by_testid(testid)
        if node is not None:
            node.focus()
            if hasattr(node, "select"):
                node.select()

    return run


def _go_tab(explorer: Explorer, tab: Any, name: str) -> Action:
    def run() -> None:
        explorer.show_tab(name)
        tab.focus()

    return run


def _focus_first(container_testid: str, fallback_testid: str = "") -> None:
    box = by_testid(container_testid)
    target = None
    if box is not None:
        target = box.querySelector("input, textarea, select")
    if target is None and fallback_testid:
        target = by_testid(fallback_testid)
    if target is not None:
        target.focus()


def _open_tool(explorer: Explorer, name: str, arguments: dict[str, Any] | None = None) -> Action:
    def run() -> None:
        explorer.show_tab("tools")
        explorer.select_tool(name, arguments)
        _focus_first("tool-detail", "call-button")

    return run


def _open_in(explorer: Explorer, tab: str, select: Callable[[], None], fallback: str) -> Action:
    def run() -> None:
        explorer.show_tab(tab)
        select()
        _focus_first(f"{tab.removesuffix('s')}-detail", fallback)

    return run


def _open_resource(explorer: Explorer, uri: str) -> Action:
    async def run() -> None:
        explorer.show_tab("resources")
        await explorer.open_resource(uri)
        button = by_testid(f"resource-item-{uri}")
        if button is not None:
            button.focus()

    return run


def _rerun(explorer: Explorer, record: CallRecord) -> Action:
    """Run ``record`` again the way the user would: tools through their form (JSON editor), the rest directly."""

    def run() -> Any:
        if record.kind == "tool":
            _open_tool(explorer, record.name, dict(record.arguments))()
            call = by_testid("call-button")
            if call is not None:
                call.focus()
                call.click()
            return None
        if record.kind == "resource":
            return _open_resource(explorer, record.name)()
        _open_in(explorer, "prompts", functools.partial(explorer.select_prompt, record.name), "prompt-get")()
        return None

    return run

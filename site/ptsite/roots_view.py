"""The connection panel's "Roots" section: the ``file://`` roots the explorer offers a server.

The list (:class:`ptsite.roots.RootsList`) is kept in ``localStorage`` and answers the server's
``roots/list``; a change while connected is announced with ``notifications/roots/list_changed``
(handshake era; the 2026-07-28 era has no such notification, the server asks again each time).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import js
import mcp_types as mt

from .dom import Scope, by_testid, clear, el, report_error, set_text, spawn
from .features import Feature
from .roots import RootsList

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["STORAGE_KEY", "RootsFeature"]

STORAGE_KEY = "pt-explorer-roots"


class RootsFeature(Feature):
    """Edits the roots list and answers ``roots/list`` from it."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.roots = RootsList()
        self.scope = Scope()
        self.list_scope = Scope()
        self.asked = 0  # roots/list requests answered (shown, so a user sees the server ask)

    # ------------------------------------------------------------ storage

    def _load(self) -> list[str]:
        try:
            stored = js.localStorage.getItem(STORAGE_KEY)
        except Exception:  # storage disabled (privacy mode): the list lives in the page only
            return []
        # a missing key is JS null (``None`` or ``pyodide.ffi.jsnull``, by Pyodide version): only a str is data
        self.roots, problems = RootsList.from_json(stored if isinstance(stored, str) else None)
        return problems

    def _save(self) -> None:
        try:
            js.localStorage.setItem(STORAGE_KEY, self.roots.to_json())
        except Exception as exc:
            report_error(exc)

    # ---------------------------------------------------------------- DOM

    def setup(self) -> None:
        """Fill ``roots-root``: a collapsible section with the list and an add form."""
        root = by_testid("roots-root")
        if root is None:
            return
        problems = self._load()
        self.count = el("span", "", cls="count", testid="roots-count")
        summary = el("summary", testid="roots-toggle", children=[el("span", "Roots "), self.count])
        self.listing = el("ul", cls="roots-list", testid="roots-list", aria_label="Roots offered to the server")
        self.uri = el(
            "input", type="text", testid="root-uri", spellcheck="false", placeholder="file:///home/me/project"
        )
        self.name = el("input", type="text", testid="root-name", spellcheck="false", placeholder="project")
        add = el("button", "Add root", type="button", cls="small-btn", testid="root-add")
        self.error = el("p", "", cls="error-text", testid="roots-error", role="alert", hidden=True)
        self.status = el("p", "", cls="hint", testid="roots-status", aria_live="polite")
        body = el(
            "div",
            cls="roots-body",
            children=[
                el("p", "Folders the server may work in (roots/list). Only file:// URIs.", cls="hint"),
                self.listing,
                el("label", "Root URI", children=[self.uri]),
                el("label", "Name (optional)", children=[self.name]),
                el("div", cls="buttons", children=[add]),
                self.error,
                self.status,
            ],
        )
        details = el("details", cls="advanced roots", testid="roots-section", children=[summary, body])
        clear(root)
        root.appendChild(details)
        self.scope.on(add, "click", lambda _e: self._add())
        for box in (self.uri, self.name):
            self.scope.on(box, "keydown", self._enter_adds)
        self._render()
        if problems:
            self._show_error("; ".join(problems))
            details.open = True

    def _enter_adds(self, evt: Any) -> None:
        if str(evt.key) == "Enter":
            evt.preventDefault()
            self._add()

    def _show_error(self, text: str) -> None:
        set_text(self.error, text)
        self.error.hidden = not text

    def _render(self) -> None:
        self.list_scope.clear()
        clear(self.listing)
        set_text(self.count, str(len(self.roots)) if len(self.roots) else "")
        if not len(self.roots):
            self.listing.appendChild(el("li", "No roots: the server gets an empty list.", cls="empty muted small"))
        for index, root in enumerate(self.roots.roots):
            label = root.name or root.uri
            remove = el(
                "button",
                "Remove",
                type="button",
                cls="small-btn",
                testid="root-remove",
                aria_label=f"Remove root {label}",
            )
            text = [el("code", root.uri, cls="small")]
            if root.name:
                text.insert(0, el("strong", root.name, cls="small"))
            item = el(
                "li",
                testid="root-item",
                data_uri=root.uri,
                data_index=index,
                children=[el("span", cls="root-text", children=text), remove],
            )
            self.listing.appendChild(item)
            self.list_scope.on(remove, "click", functools.partial(_drop_event, self._remove, root.uri))

    def _add(self) -> None:
        try:
            self.roots = self.roots.add(str(self.uri.value), str(self.name.value))
        except ValueError as exc:  # the typed text stays for the user to fix
            self._show_error(str(exc))
            self.uri.focus()
            return
        self._show_error("")
        self.uri.value = ""
        self.name.value = ""
        self._changed(f"Added {self.roots.roots[-1].uri}.")
        self.uri.focus()

    def _remove(self, uri: str) -> None:
        self.roots = self.roots.remove(uri)
        self._show_error("")
        self._changed(f"Removed {uri}.")
        self.uri.focus()

    def _changed(self, what: str) -> None:
        self._save()
        self._render()
        client = self.explorer.client
        told = ""
        if client is not None and client.is_connected():
            if client.era == "handshake":
                spawn(client.notify_roots_list_changed())
                told = " The server was told the list changed."
            else:
                told = " The server reads the new list the next time it asks."
        set_text(self.status, what + told)

    # -------------------------------------------------------------- hooks

    def client_options(self) -> dict[str, Any]:
        """Declare ``roots`` and answer ``roots/list`` from the current list."""
        return {"roots_handler": self.list_roots}

    async def list_roots(self) -> mt.ListRootsResult:
        """The ``roots/list`` answer: the list as it is now."""
        self.asked += 1
        set_text(self.status, f"The server asked for the roots ({self.asked} times): sent {len(self.roots)}.")
        return mt.ListRootsResult.model_validate({"roots": self.roots.to_wire()})


def _drop_event(func: Callable[[str], None], value: str, _evt: Any) -> None:
    """Call ``func(value)``, dropping the DOM event (for ``functools.partial`` handlers)."""
    func(value)

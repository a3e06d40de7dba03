"""Saved servers at the top of the connection panel: pick, save, rename, delete, import, copy as config, era.

The model is :mod:`ptsite.servers` (pure); this module keeps the list in ``localStorage`` and
draws it into ``servers-root``. Picking a server fills the panel (it connects on Connect); an
``mcpServers`` file's stdio entries are matched against this page's server's gateway
(``GET /gateway/match?name=&command=&args=``). The "Protocol era" choice is stored with each
server and sent as the client's protocol version unless the advanced "Protocol version" select
names one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import js
from pyodide.ffi import to_js

from .dom import Scope, by_testid, clear, el, import_chosen_file, set_text, spawn
from .features import Feature
from .servers import (
    ERAS,
    STORAGE_KEY,
    ImportedEntry,
    SavedServer,
    ServerList,
    ServersImportError,
    client_protocol,
    config_snippet,
    default_name,
    dump_servers,
    load_servers,
    match_query,
    parse_mcp_servers,
    remote_server,
    resolve_stdio,
)

if TYPE_CHECKING:
    from .explorer_app import Explorer

__all__ = ["ServersFeature"]


def _drop_event(func: Callable[[str], Any], key: str, _evt: Any) -> Any:
    return func(key)


class ServersFeature(Feature):
    """The saved-server list, its import and export, and the protocol era (``servers-root``)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.scope = Scope()
        self.list_scope = Scope()
        self.servers = ServerList()

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        """Draw the list and its controls; read the saved list."""
        root = by_testid("servers-root")
        self.listing = el("ul", cls="item-list servers-list", testid="servers-list", aria_label="Saved servers")
        self.name_box = el("input", type="text", testid="servers-name", spellcheck="false", placeholder="a name")
        add = el("button", "Save current", type="button", cls="small-btn", testid="servers-add")
        rename = el("button", "Rename", type="button", cls="small-btn", testid="servers-rename")
        delete = el("button", "Delete", type="button", cls="small-btn", testid="servers-delete")
        copy = el("button", "Copy as config", type="button", cls="small-btn", testid="servers-copy")
        self.import_input = el("input", type="file", testid="servers-import-file", accept="application/json,.json")
        self.era = el("select", testid="era-select")
        for key, (label, _version) in ERAS.items():
            self.era.appendChild(el("option", label, value=key))
        self.notice = el("p", "", cls="servers-notice small", testid="servers-notice", role="status", hidden=True)
        self.config_box = el(
            "textarea", cls="code", rows=7, readonly=True, testid="servers-config", spellcheck="false", hidden=True
        )
        self.config_label = el(
            "label",
            cls="small",
            hidden=True,
            children=[el("span", "mcpServers config (the clipboard was refused: copy it from here)"), self.config_box],
        )
        root.appendChild(
            el(
                "details",
                cls="servers",
                open=True,
                children=[
                    el("summary", "Saved servers", testid="servers-toggle"),
                    self.listing,
                    el("label", cls="small", children=[el("span", "Name"), self.name_box]),
                    el("div", cls="buttons servers-buttons", children=[add, rename, delete, copy]),
                    el(
                        "label",
                        cls="small",
                        children=[el("span", "Import an mcpServers file"), self.import_input],
                    ),
                    self.notice,
                    self.config_label,
                ],
            )
        )
        root.appendChild(el("label", children=[el("span", "Protocol era"), self.era]))
        self.scope.on(add, "click", lambda _e: self.add_current())
        self.scope.on(rename, "click", lambda _e: self.rename())
        self.scope.on(delete, "click", lambda _e: self.delete())
        self.scope.on(copy, "click", lambda _e: self.copy_config())
        self.scope.on(self.import_input, "change", lambda _e: self.import_file())
        self.scope.on(self.era, "change", lambda _e: self._era_changed())
        text: str | None = None
        try:
            stored = js.localStorage.getItem(STORAGE_KEY)
            text = stored if isinstance(stored, str) else None  # a missing key is JS null (not None)
        except Exception as exc:
            self.say(f"This browser refuses local storage ({exc}): saved servers last until the page closes.", True)
        self.servers, problem = load_servers(text)
        if problem:
            self.say(problem, True)
        chosen = self.servers.get(self.servers.selected)
        if chosen is not None:
            self.era.value = chosen.era
            self.name_box.value = chosen.name
        self.render()

    # ------------------------------------------------------------ state

    def say(self, text: str, error: bool = False) -> None:
        """Show a notice under the list."""
        set_text(self.notice, text)
        self.notice.dataset.state = "error" if error else "ok"
        self.notice.hidden = not text

    def put(self, servers: ServerList) -> bool:
        """Keep ``servers`` (and in ``localStorage``); a storage failure is reported, the list still changes."""
        self.servers = servers
        try:
            js.localStorage.setItem(STORAGE_KEY, dump_servers(servers))
        except Exception as exc:
            self.say(f"Could not store the server list ({exc}): it lasts until the page closes.", True)
            self.render()
            return False
        self.render()
        return True

    def render(self) -> None:
        """Redraw the list."""
        self.list_scope.clear()
        clear(self.listing)
        if not self.servers.servers:
            self.listing.appendChild(
                el("li", "No saved servers: fill in the panel and press Save current.", cls="empty")
            )
        for server in self.servers.servers:
            if server.available:
                where = f"{server.server} · {server.transport}"
                if server.gateway:
                    where = f"gateway {server.gateway} · {where}"
            else:
                where = "unavailable: stdio, not served by the gateway"
            button = el(
                "button",
                type="button",
                testid="server-item",
                data_name=server.name,
                data_available="true" if server.available else "false",
                cls="selected" if server.name == self.servers.selected else "",
                children=[el("span", server.name, cls="name"), el("span", where, cls="desc", title=where)],
            )
            item = el("li", children=[button])
            if server.note:
                item.appendChild(
                    el(
                        "details",
                        cls="server-note",
                        children=[
                            el("summary", "Why unavailable" if not server.available else "Note"),
                            el("pre", server.note, cls="small", testid="server-note"),
                        ],
                    )
                )
            self.list_scope.on(button, "click", functools.partial(_drop_event, self.pick, server.name))
            self.listing.appendChild(item)

    # ------------------------------------------------------------ actions

    def pick(self, name: str) -> None:
        """Fill the panel with a saved server's settings (no connection until Connect)."""
        server = self.servers.get(name)
        if server is None:
            return
        self.name_box.value = server.name
        if not server.available:
            self.put(self.servers.select(name))
            self.say(f"{name} cannot be used from this page: {server.note}", True)
            return
        if self.explorer.client is not None:
            self.say(f"Disconnect first to switch to {name}.", True)
            return
        self.put(self.servers.select(name))
        self.explorer.apply_settings(server.settings())
        self.era.value = server.era
        self.say(f"{name} is in the panel: press Connect." + (f" {server.note}" if server.note else ""))

    def add_current(self) -> None:
        """Save the panel's settings (and the era) under the name in the name box (replacing that name)."""
        settings = self.explorer.settings()
        name = str(self.name_box.value).strip() or default_name(settings)
        existing = self.servers.get(name)
        server = SavedServer(
            name=name,
            server=settings.server,
            transport=settings.transport,
            header_name=settings.header_name,
            header_value=settings.header_value,
            era=str(self.era.value),
            gateway=existing.gateway if existing is not None and existing.server == settings.server else None,
            source=existing.source if existing is not None and existing.server == settings.server else None,
        )
        try:
            servers = self.servers.add(server, replace_existing=True)
        except ValueError as exc:
            self.say(f"Not saved: {exc}.", True)
            return
        self.name_box.value = name
        if self.put(servers.select(name)):
            self.say(f"Saved {name}" + (" (replacing the one of that name)." if existing is not None else "."))

    def rename(self) -> None:
        """Rename the picked server to the name in the name box."""
        old = self.servers.selected
        if old is None:
            self.say("Pick a saved server to rename first.", True)
            return
        try:
            servers = self.servers.rename(old, str(self.name_box.value))
        except ValueError as exc:
            self.say(f"Not renamed: {exc}.", True)
            return
        if self.put(servers):
            self.say(f"Renamed {old} to {servers.selected}.")

    def delete(self) -> None:
        """Forget the picked server."""
        name = self.servers.selected
        if name is None:
            self.say("Pick a saved server to delete first.", True)
            return
        self.name_box.value = ""
        if self.put(self.servers.delete(name)):
            self.say(f"Deleted {name}.")

    def _era_changed(self) -> None:
        name = self.servers.selected
        chosen = self.servers.get(name)
        if name is not None and chosen is not None and chosen.server == self.explorer.settings().server:
            self.put(self.servers.with_era(name, str(self.era.value)))

    def client_options(self) -> dict[str, Any]:
        """``protocol_version`` from the era choice, unless the advanced select names a version."""
        return client_protocol(str(self.era.value), str(by_testid("protocol-select").value))

    # ------------------------------------------------------------ copy as config

    def copy_config(self) -> Any:
        """Put the connected (or picked) server's ``mcpServers`` entry on the clipboard."""
        settings = self.explorer.settings()
        chosen = self.servers.get(self.servers.selected)
        if chosen is not None and chosen.available and chosen.server != settings.server:
            chosen = None  # the panel holds another server now
        name = chosen.name if chosen is not None else default_name(settings)
        try:
            text = config_snippet(name, chosen, None if chosen is not None else settings)
        except ValueError as exc:
            self.say(f"Nothing copied: {exc}.", True)
            return None
        return spawn(self._copy(text, name))

    async def _copy(self, text: str, name: str) -> None:
        self.config_box.value = text
        try:
            await js.navigator.clipboard.writeText(text)
        except Exception as exc:
            self.config_label.hidden = self.config_box.hidden = False
            self.config_box.focus()
            self.config_box.select()
            self.say(f"The browser refused the clipboard ({exc}): the config of {name} is shown below.", True)
            return
        self.config_label.hidden = self.config_box.hidden = True
        self.say(f"Copied the mcpServers config of {name} to the clipboard.")

    # ------------------------------------------------------------ import

    def import_file(self) -> Any:
        """Import the chosen ``mcpServers`` file."""
        return spawn(self._import())

    async def _import(self) -> None:
        chosen = await import_chosen_file(self.import_input, parse_mcp_servers, ServersImportError, self.say)
        if chosen is None:
            return
        name, entries = chosen
        origin = str(js.location.origin)
        gateway = await self._has_gateway() if any(e.kind == "stdio" for e in entries) else False
        servers = self.servers
        unavailable: list[str] = []
        try:
            for entry in entries:
                if entry.kind == "remote":
                    saved = remote_server(entry)
                else:
                    match = await self._match(entry) if gateway else None
                    saved = resolve_stdio(entry, origin, match, gateway)
                    if not saved.available:
                        unavailable.append(entry.name)
                servers = servers.add(saved, replace_existing=True)
        except ValueError as exc:
            self.say(f"Import of {name} refused, nothing changed: {exc}.", True)
            return
        self.put(servers)
        text = f"Imported {len(entries)} servers from {name}."
        if unavailable:
            text += (
                f" Unavailable (stdio servers this page's gateway does not serve): {', '.join(unavailable)};"
                " open 'Why unavailable' in the list."
            )
        self.say(text, bool(unavailable))

    async def _has_gateway(self) -> bool:
        try:
            response = await js.fetch(
                f"{js.location.origin}/gateway", to_js({"headers": {"Accept": "application/json"}})
            )
            return bool(response.ok)
        except Exception:
            return False

    async def _match(self, entry: ImportedEntry) -> dict[str, Any] | None:
        """The gateway upstream with ``entry``'s command line (``GET /gateway/match``), if any."""
        try:
            response = await js.fetch(
                f"{js.location.origin}/gateway/match{match_query(entry)}",
                to_js({"headers": {"Accept": "application/json"}}),
            )
            if not response.ok:
                return None
            found = json.loads(str(await response.text()))
        except Exception:
            return None
        return found if isinstance(found, dict) else None

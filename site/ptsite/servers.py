"""The explorer's saved servers: the list, ``mcpServers`` import, "copy as config" and the protocol era.

Pure Python (no ``js``): :mod:`ptsite.servers_view` keeps the list in ``localStorage`` (key
:data:`STORAGE_KEY`) as :func:`dump_servers` writes it.

Import (:func:`parse_mcp_servers`) reads the ``mcpServers`` file of Claude Desktop and the MCP
Inspector (``{"mcpServers": {NAME: {"url": ..., "type": ..., "headers": {...}}}}`` or
``{NAME: {"command": ..., "args": [...], "env": {...}}}``) and VS Code's ``servers`` key. A remote
entry becomes a server the page connects to directly (its ``type`` mapped to a transport of
:data:`ptsite.settings.TRANSPORTS`, one header to the panel's header fields). A browser cannot
start a process: a stdio entry is usable only through this page's server's gateway, whose
upstreams come from its own ``--gateway FILE`` (never from the page). :func:`match_query` is the
question the page asks the gateway (``GET /gateway/match?name=&command=&args=``), and
:func:`resolve_stdio` turns the answer into a saved server that connects to that upstream's
endpoint, or into an unavailable one that says how to add it to the gateway's file.

:func:`config_snippet` writes a server back as an ``mcpServers`` entry ("copy as config"): the
original entry when it was imported, else one made from the panel's settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal
from urllib.parse import urlencode, urlsplit

from .settings import DEFAULT_TRANSPORT, IN_BROWSER, TRANSPORTS, Settings, endpoint_url

__all__ = [
    "ERAS",
    "MAX_IMPORT_BYTES",
    "MAX_SERVERS",
    "STORAGE_KEY",
    "ImportedEntry",
    "SavedServer",
    "ServerList",
    "ServersImportError",
    "check_name",
    "client_protocol",
    "config_snippet",
    "default_name",
    "dump_servers",
    "load_servers",
    "match_query",
    "parse_mcp_servers",
    "remote_server",
    "resolve_stdio",
]

STORAGE_KEY: Final = "ptsite.servers"
MAX_SERVERS: Final = 100
MAX_IMPORT_BYTES: Final = 1_000_000
MAX_NAME: Final = 100

ERAS: Final[dict[str, tuple[str, str | None]]] = {
    "auto": ("auto (negotiate)", None),
    "2026-07-28": ("2026-07-28 (modern)", "2026-07-28"),
    "handshake": ("handshake (2025-11-25)", "2025-11-25"),
}
"""The protocol era choices: key -> (label, the protocol version the client is asked for, None to negotiate)."""

_TYPES: Final[dict[str, str]] = {
    "streamable-http": "http-sse",
    "streamablehttp": "http-sse",
    "streamable_http": "http-sse",
    "http": "http-sse",
    "sse": "http-sse",
    "websocket": "websocket",
    "ws": "websocket",
}


class ServersImportError(ValueError):
    """An ``mcpServers`` file (or stored list) that cannot be used; the message names the field at fault."""


@dataclass(frozen=True)
class SavedServer:
    """A named connection: the panel's settings, the era, and where it came from.

    Attributes:
        name: Unique in the list.
        server: The server URL (as the panel's "Server URL").
        transport: A key of :data:`~ptsite.settings.TRANSPORTS`.
        header_name: The panel's extra header (HTTP transports).
        header_value: Its value.
        era: A key of :data:`ERAS`.
        gateway: The gateway upstream this server is reached through, if any.
        source: The imported ``mcpServers`` entry (for "copy as config"), if any.
        available: False for a stdio entry no gateway upstream serves.
        note: What the user should know (an unavailable entry's explanation, a dropped header).
    """

    name: str
    server: str = ""
    transport: str = DEFAULT_TRANSPORT
    header_name: str = ""
    header_value: str = ""
    era: str = "auto"
    gateway: str | None = None
    source: dict[str, Any] | None = None
    available: bool = True
    note: str = ""

    def settings(self) -> Settings:
        """The connection panel's settings for this server."""
        return Settings(
            server=self.server,
            transport=self.transport,
            header_name=self.header_name,
            header_value=self.header_value,
        )

    def to_json(self) -> dict[str, Any]:
        """The server as :func:`dump_servers` writes it."""
        return {
            "name": self.name,
            "server": self.server,
            "transport": self.transport,
            "headerName": self.header_name,
            "headerValue": self.header_value,
            "era": self.era,
            "gateway": self.gateway,
            "source": self.source,
            "available": self.available,
            "note": self.note,
        }


@dataclass(frozen=True)
class ServerList:
    """The saved servers, in the order added, and the one picked last."""

    servers: tuple[SavedServer, ...] = ()
    selected: str | None = None

    def get(self, name: str | None) -> SavedServer | None:
        """The server called ``name``."""
        return next((s for s in self.servers if s.name == name), None)

    def add(self, server: SavedServer, *, replace_existing: bool = False) -> ServerList:
        """With ``server`` added (or, with ``replace_existing``, replacing the one of that name).

        Raises:
            ValueError: The name is empty, too long or taken, or the list is full.
        """
        name = check_name(server.name)
        server = replace(server, name=name)
        if self.get(name) is not None:
            if not replace_existing:
                raise ValueError(f"a server named {name!r} is saved already: choose another name")
            return replace(self, servers=tuple(server if s.name == name else s for s in self.servers))
        if len(self.servers) >= MAX_SERVERS:
            raise ValueError(f"at most {MAX_SERVERS} saved servers: delete some first")
        return replace(self, servers=(*self.servers, server))

    def rename(self, old: str, new: str) -> ServerList:
        """With ``old`` called ``new``.

        Raises:
            ValueError: No server is called ``old``, or ``new`` is empty, too long or taken.
        """
        name = check_name(new)
        if self.get(old) is None:
            raise ValueError(f"no saved server is named {old!r}")
        if name != old and self.get(name) is not None:
            raise ValueError(f"a server named {name!r} is saved already: choose another name")
        servers = tuple(replace(s, name=name) if s.name == old else s for s in self.servers)
        return ServerList(servers, name if self.selected == old else self.selected)

    def delete(self, name: str) -> ServerList:
        """Without ``name``."""
        servers = tuple(s for s in self.servers if s.name != name)
        return ServerList(servers, None if self.selected == name else self.selected)

    def select(self, name: str | None) -> ServerList:
        """With ``name`` picked (None: none)."""
        return replace(self, selected=name if self.get(name) is not None else None)

    def with_era(self, name: str, era: str) -> ServerList:
        """With ``name``'s era set to ``era`` (a key of :data:`ERAS`)."""
        if era not in ERAS:
            raise ValueError(f"unknown protocol era {era!r}; choose one of {', '.join(ERAS)}")
        return replace(self, servers=tuple(replace(s, era=era) if s.name == name else s for s in self.servers))


def check_name(name: str) -> str:
    """``name`` stripped.

    Raises:
        ValueError: It is empty or too long.
    """
    name = name.strip()
    if not name:
        raise ValueError("a server needs a name")
    if len(name) > MAX_NAME:
        raise ValueError(f"a name is at most {MAX_NAME} characters")
    return name


def client_protocol(era: str, explicit: str) -> dict[str, Any]:
    """The ``Client`` options of an era choice: ``{"protocol_version": ...}`` unless "auto" or ``explicit`` is set.

    ``explicit`` is the advanced "Protocol version" select: a version chosen there wins.
    """
    version = ERAS.get(era, ("", None))[1]
    if explicit or version is None:
        return {}
    return {"protocol_version": version}


# ----------------------------------------------------------------- storage


def dump_servers(servers: ServerList) -> str:
    """What ``localStorage`` holds."""
    return json.dumps(
        {"version": 1, "selected": servers.selected, "servers": [s.to_json() for s in servers.servers]},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def load_servers(text: str | None) -> tuple[ServerList, str]:
    """``(list, problem)`` from what :func:`dump_servers` wrote; unreadable data is an empty list and a problem."""
    if not text:
        return ServerList(), ""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("servers"), list):
            raise ServersImportError("not a version 1 server list")
        servers: list[SavedServer] = []
        for i, raw in enumerate(data["servers"]):
            servers.append(_stored(raw, f"servers[{i}]"))
        selected = data.get("selected")
        result = ServerList(tuple(servers)).select(selected if isinstance(selected, str) else None)
    except (ValueError, RecursionError) as exc:
        return ServerList(), f"The saved servers could not be read ({exc}); the list starts empty."
    return result, ""


def _stored(raw: Any, where: str) -> SavedServer:
    if not isinstance(raw, dict):
        raise ServersImportError(f"{where}: must be an object")
    strings = {k: raw.get(k, "") for k in ("name", "server", "transport", "headerName", "headerValue", "era", "note")}
    for key, value in strings.items():
        if not isinstance(value, str):
            raise ServersImportError(f"{where}.{key}: must be a string")
    if strings["transport"] not in TRANSPORTS:
        raise ServersImportError(f"{where}.transport: unknown transport")
    gateway, source = raw.get("gateway"), raw.get("source")
    if gateway is not None and not isinstance(gateway, str):
        raise ServersImportError(f"{where}.gateway: must be a string or null")
    if source is not None and not isinstance(source, dict):
        raise ServersImportError(f"{where}.source: must be an object or null")
    return SavedServer(
        name=check_name(strings["name"]),
        server=strings["server"],
        transport=strings["transport"],
        header_name=strings["headerName"],
        header_value=strings["headerValue"],
        era=strings["era"] if strings["era"] in ERAS else "auto",
        gateway=gateway,
        source=source,
        available=raw.get("available", True) is not False,
        note=strings["note"],
    )


# ------------------------------------------------------------------ import


@dataclass(frozen=True)
class ImportedEntry:
    """One entry of an ``mcpServers`` file, checked.

    ``kind`` is ``remote`` (``url``, ``transport``, ``headers``) or ``stdio`` (``command``, ``args``,
    ``env``); ``raw`` is the entry as given.
    """

    name: str
    kind: Literal["remote", "stdio"]
    raw: dict[str, Any]
    url: str = ""
    transport: str = DEFAULT_TRANSPORT
    headers: dict[str, str] = field(default_factory=dict)
    command: str = ""
    args: tuple[str, ...] = ()
    note: str = ""


def _fail(where: str, problem: str) -> ServersImportError:
    return ServersImportError(f"{where}: {problem}")


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(where, "must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _fail(f"{where}.{key}", "must be a string")
    return dict(value)


def parse_mcp_servers(text: str) -> list[ImportedEntry]:
    """The entries of an ``mcpServers`` (or VS Code ``servers``) JSON file.

    Raises:
        ServersImportError: The file is not JSON, has neither key, or an entry is wrong; the
            message names the field (``mcpServers.files.args[1]``). Nothing is imported then.
    """
    if len(text) > MAX_IMPORT_BYTES:
        raise ServersImportError(f"the file is larger than {MAX_IMPORT_BYTES // 1000} kB")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ServersImportError(f"the file is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _fail("(top level)", "must be an object")
    key = "mcpServers" if "mcpServers" in data else "servers" if "servers" in data else None
    if key is None:
        raise _fail(
            "(top level)",
            'has no "mcpServers" (or VS Code "servers") key: the file must look like '
            '{"mcpServers": {"name": {"url": ...} or {"command": ...}}}',
        )
    servers = data[key]
    if not isinstance(servers, dict):
        raise _fail(key, "must be an object of server name to entry")
    if not servers:
        raise _fail(key, "names no server")
    if len(servers) > MAX_SERVERS:
        raise _fail(key, f"names more than {MAX_SERVERS} servers")
    return [_entry(name, value, f"{key}.{name}") for name, value in servers.items()]


def _entry(name: str, value: Any, where: str) -> ImportedEntry:
    try:
        name = check_name(name)
    except ValueError as exc:
        raise _fail(where, str(exc)) from None
    if not isinstance(value, dict):
        raise _fail(where, "must be an object")
    has_url, has_command = "url" in value, "command" in value
    if has_url == has_command:
        raise _fail(where, "needs exactly one of 'url' (a remote server) or 'command' (a stdio server)")
    kind = value.get("type", value.get("transport"))
    if kind is not None and not isinstance(kind, str):
        raise _fail(f"{where}.type", "must be a string")
    if has_command:
        if kind is not None and kind.lower() != "stdio":
            raise _fail(f"{where}.type", f"a 'command' entry is a stdio server, got type {kind!r}")
        command = value["command"]
        if not isinstance(command, str) or not command.strip():
            raise _fail(f"{where}.command", "must be a non-empty string")
        args = value.get("args", [])
        if not isinstance(args, list):
            raise _fail(f"{where}.args", "must be a list of strings")
        for i, arg in enumerate(args):
            if not isinstance(arg, str):
                raise _fail(f"{where}.args[{i}]", "must be a string")
        _str_map(value.get("env", {}), f"{where}.env")
        return ImportedEntry(name, "stdio", dict(value), command=command, args=tuple(args))
    url = value["url"]
    if not isinstance(url, str):
        raise _fail(f"{where}.url", "must be a string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise _fail(f"{where}.url", f"must be an http(s):// or ws(s):// URL, got {url[:80]!r}")
    if kind is None:
        transport = "websocket" if parts.scheme in ("ws", "wss") else "http-sse"
    else:
        transport = _TYPES.get(kind.lower().replace(" ", ""), "")
        if not transport:
            raise _fail(f"{where}.type", f"unknown type {kind!r} (known: streamable-http, http, sse, websocket)")
    headers = _str_map(value.get("headers", {}), f"{where}.headers")
    notes = []
    if kind is not None and kind.lower() == "sse":
        notes.append(
            "Its type is the legacy SSE transport (2024-11-05), which the explorer does not speak: it connects "
            "with Streamable HTTP."
        )
    if len(headers) > 1:
        dropped = ", ".join(list(headers)[1:])
        notes.append(f"The panel takes one header: {dropped} not kept.")
    if headers and transport == "websocket":
        notes.append("Browsers send no custom headers on a WebSocket: the header is not sent.")
    return ImportedEntry(
        name, "remote", dict(value), url=url.strip(), transport=transport, headers=headers, note=" ".join(notes)
    )


def remote_server(entry: ImportedEntry) -> SavedServer:
    """A saved server for a remote entry: the page connects to its URL directly."""
    header_name, header_value = next(iter(entry.headers.items()), ("", ""))
    return SavedServer(
        name=entry.name,
        server=entry.url,
        transport=entry.transport,
        header_name=header_name,
        header_value=header_value,
        source=entry.raw,
        note=entry.note,
    )


def match_query(entry: ImportedEntry) -> str:
    """The query string of ``GET /gateway/match`` for a stdio entry (name, command and args; never env)."""
    return "?" + urlencode({"name": entry.name, "command": entry.command, "args": json.dumps(list(entry.args))})


def resolve_stdio(entry: ImportedEntry, origin: str, match: dict[str, Any] | None, gateway: bool) -> SavedServer:
    """The saved server of a stdio entry, given the gateway's answer.

    Args:
        entry: The stdio entry.
        origin: This page's origin (the gateway's).
        match: ``GET /gateway/match``'s answer (an upstream's name and endpoints), or None.
        gateway: Whether this page's server has a gateway at all.
    """
    endpoints = (match or {}).get("endpoints")
    if match is not None and isinstance(endpoints, dict) and isinstance(endpoints.get("mcp"), str):
        upstream = str(match.get("name", entry.name))
        via = f"Runs through this page's server's gateway (upstream {upstream!r})."
        return SavedServer(
            name=entry.name,
            server=origin + endpoints["mcp"],
            transport="http-sse",
            gateway=upstream,
            source=entry.raw,
            note=via,
        )
    snippet = json.dumps({"mcpServers": {entry.name: _without_env_values(entry.raw)}}, indent=2)
    if gateway:
        why = (
            f"A browser cannot start {entry.command!r}: stdio servers run through this page's server's gateway, "
            "and none of its upstreams has this command and these arguments. Add the entry to the gateway's "
            "config file and restart the server with --gateway FILE (python -m server_demo --gateway FILE), "
            f"FILE holding:\n{snippet}"
        )
    else:
        why = (
            f"A browser cannot start {entry.command!r}, and this page's server has no gateway (a static host, or "
            "started with --no-gateway). Serve the explorer with python -m server_demo --gateway FILE, "
            f"FILE holding:\n{snippet}"
        )
    return SavedServer(name=entry.name, transport=DEFAULT_TRANSPORT, source=entry.raw, available=False, note=why)


def _without_env_values(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    if isinstance(out.get("env"), dict):
        out["env"] = {key: "…" for key in out["env"]}
    return out


# ------------------------------------------------------------ copy as config


def config_snippet(name: str, server: SavedServer | None, settings: Settings | None = None) -> str:
    """An ``mcpServers`` JSON document for one server ("copy as config").

    The imported entry when known (a gateway route gives back the original stdio or remote entry);
    else an entry made of ``settings`` (or the server's own): ``type`` and the endpoint URL, and the
    header when there is one.

    Raises:
        ValueError: The settings name no URL (the in-browser demo server has none).
    """
    if server is not None and server.source is not None:
        return json.dumps({"mcpServers": {name: server.source}}, indent=2, ensure_ascii=False)
    chosen = settings if settings is not None else server.settings() if server is not None else None
    if chosen is None:
        raise ValueError("no server to copy: pick a saved server or fill in the URL")
    if chosen.transport == IN_BROWSER:
        raise ValueError("the in-browser demo server runs in this page: it has no URL another client could use")
    url = endpoint_url(chosen.server, chosen.transport)
    entry: dict[str, Any] = {"type": "websocket" if TRANSPORTS[chosen.transport].websocket else "streamable-http"}
    entry["url"] = url
    if chosen.header_name:
        entry["headers"] = {chosen.header_name: chosen.header_value}
    return json.dumps({"mcpServers": {name: entry}}, indent=2, ensure_ascii=False)


def default_name(settings: Settings) -> str:
    """A name for the panel's server: its host and port (``127.0.0.1:8000``), or the transport's label."""
    if settings.transport == IN_BROWSER:
        return "in-browser demo"
    netloc = urlsplit(settings.server).netloc
    return netloc or "server"

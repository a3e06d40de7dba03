from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from ptsite.servers import (
    ERAS,
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
from ptsite.settings import TRANSPORTS, Settings

ORIGIN = "http://127.0.0.1:8000"


def doc(servers: Any, key: str = "mcpServers") -> str:
    return json.dumps({key: servers})


def test_list_add_rename_delete_select_era() -> None:
    servers = ServerList().add(SavedServer(" a ", "http://127.0.0.1:1"))
    assert [s.name for s in servers.servers] == ["a"]
    with pytest.raises(ValueError, match="saved already"):
        servers.add(SavedServer("a"))
    replaced = servers.add(SavedServer("a", "http://127.0.0.1:2"), replace_existing=True)
    assert replaced.get("a") == SavedServer("a", "http://127.0.0.1:2")
    servers = servers.add(SavedServer("b")).select("a")
    assert servers.selected == "a" and servers.select("nope").selected is None
    renamed = servers.rename("a", "c")
    assert [s.name for s in renamed.servers] == ["c", "b"] and renamed.selected == "c"
    with pytest.raises(ValueError, match="saved already"):
        renamed.rename("c", "b")
    with pytest.raises(ValueError, match="no saved server"):
        renamed.rename("zz", "y")
    with pytest.raises(ValueError, match="needs a name"):
        renamed.rename("c", "  ")
    deleted = renamed.delete("c")
    assert [s.name for s in deleted.servers] == ["b"] and deleted.selected is None
    assert renamed.with_era("c", "handshake").get("c").era == "handshake"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown protocol era"):
        renamed.with_era("c", "1999")


def test_storage_round_trip_and_bad_storage() -> None:
    servers = ServerList(
        (
            SavedServer("a", "http://127.0.0.1:1/mcp", "websocket", "X-Key", "v", "handshake"),
            SavedServer("b", gateway="up", source={"command": "x"}, available=False, note="why"),
        ),
        "a",
    )
    loaded, problem = load_servers(dump_servers(servers))
    assert loaded == servers and problem == ""
    assert load_servers(None) == (ServerList(), "")
    bad_servers = [
        "{",
        "[]",
        '{"version": 2, "servers": []}',
        '{"version": 1, "servers": [1]}',
        '{"version": 1, "servers": [{"name": "a", "transport": "carrier-pigeon"}]}',
    ]
    for bad in bad_servers:
        empty, problem = load_servers(bad)
        assert empty == ServerList() and "could not be read" in problem


def test_era_options_only_when_chosen_and_no_explicit_version() -> None:
    assert set(ERAS) == {"auto", "2026-07-28", "handshake"}
    assert client_protocol("auto", "") == {}
    assert client_protocol("2026-07-28", "") == {"protocol_version": "2026-07-28"}
    assert client_protocol("handshake", "") == {"protocol_version": "2025-11-25"}
    assert client_protocol("handshake", "2025-06-18") == {}  # the advanced select wins
    assert client_protocol("nonsense", "") == {}


def test_remote_entries_map_types_and_headers() -> None:
    entries = parse_mcp_servers(
        doc(
            {
                "plain": {"url": "http://127.0.0.1:9000/mcp"},
                "typed": {"type": "streamable-http", "url": "https://h.test/mcp", "headers": {"Authorization": "B x"}},
                "http": {"type": "http", "url": "http://127.0.0.1:1/mcp"},
                "old": {"type": "sse", "url": "http://127.0.0.1:1/sse"},
                "sock": {"url": "ws://127.0.0.1:1/ws"},
                "two": {"url": "http://127.0.0.1:1/mcp", "headers": {"A": "1", "B": "2"}},
            }
        )
    )
    by_name = {e.name: e for e in entries}
    assert [e.kind for e in entries] == ["remote"] * 6
    assert {n: e.transport for n, e in by_name.items()} == {
        "plain": "http-sse",
        "typed": "http-sse",
        "http": "http-sse",
        "old": "http-sse",
        "sock": "websocket",
        "two": "http-sse",
    }
    assert all(e.transport in TRANSPORTS for e in entries)
    assert "legacy SSE" in by_name["old"].note
    assert "B not kept" in by_name["two"].note
    saved = remote_server(by_name["typed"])
    assert (saved.server, saved.header_name, saved.header_value, saved.available) == (
        "https://h.test/mcp",
        "Authorization",
        "B x",
        True,
    )
    assert saved.source == {"type": "streamable-http", "url": "https://h.test/mcp", "headers": {"Authorization": "B x"}}
    assert saved.settings() == Settings("https://h.test/mcp", "http-sse", "Authorization", "B x")


def test_vscode_servers_key_and_stdio_type() -> None:
    entries = parse_mcp_servers(doc({"a": {"type": "stdio", "command": "npx", "args": ["-y", "x"]}}, key="servers"))
    assert entries[0].kind == "stdio" and entries[0].command == "npx" and entries[0].args == ("-y", "x")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{nope", "not JSON"),
        ("[]", r"\(top level\): must be an object"),
        ('{"other": {}}', 'has no "mcpServers"'),
        (doc([]), "mcpServers: must be an object"),
        (doc({}), "mcpServers: names no server"),
        (doc({"a": 1}), "mcpServers.a: must be an object"),
        (doc({"a": {}}), "mcpServers.a: needs exactly one of 'url'"),
        (doc({"a": {"url": "http://h", "command": "x"}}), "needs exactly one"),
        (doc({"a": {"url": "file:///etc/passwd"}}), r"mcpServers.a.url: must be an http\(s\)://"),
        (doc({"a": {"url": 5}}), "mcpServers.a.url: must be a string"),
        (doc({"a": {"url": "http://h/", "type": "carrier"}}), "mcpServers.a.type: unknown type 'carrier'"),
        (doc({"a": {"url": "http://h/", "type": 3}}), "mcpServers.a.type: must be a string"),
        (doc({"a": {"url": "http://h/", "headers": {"X": 1}}}), "mcpServers.a.headers.X: must be a string"),
        (doc({"a": {"url": "http://h/", "headers": []}}), "mcpServers.a.headers: must be an object"),
        (doc({"a": {"command": ""}}), "mcpServers.a.command: must be a non-empty string"),
        (doc({"a": {"command": "x", "args": "y"}}), "mcpServers.a.args: must be a list"),
        (doc({"a": {"command": "x", "args": ["ok", 3]}}), r"mcpServers.a.args\[1\]: must be a string"),
        (doc({"a": {"command": "x", "env": {"K": 1}}}), "mcpServers.a.env.K: must be a string"),
        (doc({"a": {"command": "x", "type": "http"}}), "mcpServers.a.type: a 'command' entry is a stdio server"),
        (doc({" ": {"command": "x"}}), "needs a name"),
        (doc({"a": {"url": "http://h/"}, "b": {"url": "nope"}}), "mcpServers.b.url"),
        (doc({"a": {"url": "http://h/"}}, key="servers").replace("servers", "servers", 1)[:-2], "not JSON"),
    ],
)
def test_bad_mcp_servers_files_name_the_field(text: str, problem: str) -> None:
    with pytest.raises(ServersImportError, match=problem):
        parse_mcp_servers(text)


def test_an_oversized_file_is_refused() -> None:
    with pytest.raises(ServersImportError, match="larger than"):
        parse_mcp_servers(" " * 1_000_001)


def test_stdio_match_query_has_name_command_args_never_env() -> None:
    (entry,) = parse_mcp_servers(doc({"files": {"command": "python", "args": ["-m", "f"], "env": {"TOKEN": "s3"}}}))
    query = match_query(entry)
    params = parse_qs(query.lstrip("?"))
    assert params == {"name": ["files"], "command": ["python"], "args": ['["-m", "f"]']}
    assert "s3" not in query and "TOKEN" not in query


def test_resolve_stdio_matched_unmatched_and_no_gateway() -> None:
    (entry,) = parse_mcp_servers(doc({"files": {"command": "python", "args": ["-m", "f"], "env": {"TOKEN": "s3"}}}))
    match = {"name": "files-up", "kind": "stdio", "endpoints": {"mcp": "/gateway/files-up/mcp", "ws": "/gateway/x/ws"}}
    saved = resolve_stdio(entry, ORIGIN, match, True)
    assert (saved.server, saved.transport, saved.gateway, saved.available) == (
        f"{ORIGIN}/gateway/files-up/mcp",
        "http-sse",
        "files-up",
        True,
    )
    assert saved.source == {"command": "python", "args": ["-m", "f"], "env": {"TOKEN": "s3"}}
    missing = resolve_stdio(entry, ORIGIN, None, True)
    assert not missing.available and missing.server == ""
    assert "--gateway FILE" in missing.note and '"files"' in missing.note and "s3" not in missing.note
    assert "TOKEN" in missing.note  # the variable's name is shown, its value is not
    nowhere = resolve_stdio(entry, ORIGIN, None, False)
    assert not nowhere.available and "no gateway" in nowhere.note and "--no-gateway" in nowhere.note
    assert not resolve_stdio(entry, ORIGIN, {"name": "x"}, True).available  # an answer without endpoints


def test_config_snippet_original_entry_or_from_settings() -> None:
    source = {"command": "python", "args": ["-m", "f"]}
    routed = SavedServer("files", f"{ORIGIN}/gateway/files/mcp", gateway="files", source=source)
    assert json.loads(config_snippet("files", routed)) == {"mcpServers": {"files": source}}
    plain = SavedServer("mine", "http://127.0.0.1:9", "http-json", "Authorization", "Bearer t")
    assert json.loads(config_snippet("mine", plain)) == {
        "mcpServers": {
            "mine": {
                "type": "streamable-http",
                "url": "http://127.0.0.1:9/mcp/json",
                "headers": {"Authorization": "Bearer t"},
            }
        }
    }
    ws = Settings("http://127.0.0.1:9", "websocket")
    assert json.loads(config_snippet("w", None, ws)) == {
        "mcpServers": {"w": {"type": "websocket", "url": "ws://127.0.0.1:9/ws"}}
    }
    with pytest.raises(ValueError, match="in-browser"):
        config_snippet("x", None, Settings("", "in-browser"))
    with pytest.raises(ValueError, match="no server to copy"):
        config_snippet("x", None)
    with pytest.raises(ValueError, match="server URL"):
        config_snippet("x", None, Settings("not a url"))


def test_default_name() -> None:
    assert default_name(Settings("http://127.0.0.1:8000/mcp")) == "127.0.0.1:8000"
    assert default_name(Settings("", "in-browser")) == "in-browser demo"
    assert default_name(Settings("")) == "server"

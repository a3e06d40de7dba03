"""``/ws/encrypted``: the demo core over WebSocket with every frame an envelope, on a real uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devtools.servers import LiveServer
from pyodide_transport import Client, EncryptedTransport, WebSocketTransport
from pyodide_transport.cpython import websockets_connect
from pyodide_transport.encrypted import EnvelopeCodec
from pyodide_transport.envelope import derive_key
from server_demo.__main__ import PASSPHRASE_ENV, encryption_config, parse_args
from server_demo.app import AppConfig, create_app
from server_demo.config import DEMO_PASSPHRASE, EncryptionConfig
from server_demo.demo import build_demo_server

PASSPHRASE = "unit-test passphrase"
SECRET = "the eagle lands at noon"


class Wire:
    """What the server's wire tap saw."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, str]] = []

    def __call__(self, direction: str, frame: str) -> None:
        self.frames.append((direction, frame))


@pytest.fixture
async def live() -> AsyncIterator[tuple[LiveServer, Wire]]:
    wire = Wire()
    config = AppConfig(oauth=None, encryption=EncryptionConfig(passphrase=PASSPHRASE, on_wire=wire))
    server = LiveServer(create_app(build_demo_server(), config))
    await server.start()
    try:
        yield server, wire
    finally:
        await server.stop()


def url(server: LiveServer, path: str = "/ws/encrypted") -> str:
    return server.base.replace("http://", "ws://") + path


def encrypted_client(server: LiveServer, passphrase: str = PASSPHRASE, **options: Any) -> Client:
    inner = WebSocketTransport(
        url(server), connector=websockets_connect, ping_interval=None, auto_reconnect=False, request_timeout=10
    )
    return Client(EncryptedTransport(inner, passphrase=passphrase), request_timeout=10, **options)


async def close_of(ws: ClientConnection) -> tuple[int | None, str]:
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    frame = info.value.rcvd
    return (frame.code, frame.reason) if frame is not None else (None, "")


@pytest.mark.parametrize("version", [None, "2025-11-25"])
async def test_an_encrypted_session_works_with_no_plaintext_on_the_wire(
    live: tuple[LiveServer, Wire], version: str | None
) -> None:
    server, wire = live
    async with encrypted_client(server, protocol_version=version) as client:
        assert client.transport.transport_type == "encrypted+websocket"
        tools = await client.list_tools()
        assert "echo" in {t.name for t in tools.tools}
        result = await client.call_tool("echo", {"message": SECRET})
        assert result.content[0].text == SECRET  # type: ignore[union-attr]
    directions = {d for d, _ in wire.frames}
    assert directions == {"in", "out"} and len(wire.frames) >= 4
    for _, frame in wire.frames:
        obj = json.loads(frame)
        assert obj["method"] == "encrypted" and list(obj["params"]) == ["data"]
        for word in (SECRET, "echo", "tools/list", "tools/call", "initialize", "server/discover", "protocolVersion"):
            assert word not in frame


async def test_a_plaintext_frame_is_refused_clearly_and_other_sessions_go_on(live: tuple[LiveServer, Wire]) -> None:
    server, _ = live
    async with encrypted_client(server) as client:
        await client.call_tool("echo", {"message": "before"})
        async with connect(url(server), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            code, reason = await close_of(ws)
        assert code == 1008
        assert reason.startswith("encrypted endpoint: expected an encrypted envelope")
        assert len(reason.encode()) <= 123
        result = await client.call_tool("echo", {"message": "after"})
        assert result.content[0].text == "after"  # type: ignore[union-attr]


async def test_the_wrong_key_is_refused(live: tuple[LiveServer, Wire]) -> None:
    server, _ = live
    codec = EnvelopeCodec("client", passphrase="another passphrase")
    async with connect(url(server), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        await ws.send(await codec.seal_text('{"jsonrpc":"2.0","id":1,"method":"ping"}'))
        code, reason = await close_of(ws)
    assert code == 1008 and "does not authenticate" in reason


async def test_a_replayed_frame_closes_the_connection(live: tuple[LiveServer, Wire]) -> None:
    server, _ = live
    codec = EnvelopeCodec("client", key=derive_key(PASSPHRASE))
    async with connect(url(server), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        frame = await codec.seal_text('{"jsonrpc":"2.0","id":1,"method":"ping"}')
        await ws.send(frame)
        async with asyncio.timeout(10):
            answer = json.loads(await codec.open_text(await ws.recv()))
        assert answer == {"jsonrpc": "2.0", "id": 1, "result": {}}
        await ws.send(frame)
        code, reason = await close_of(ws)
    assert code == 1008 and "replayed or reordered" in reason


async def test_invalid_json_inside_an_envelope_gets_a_sealed_parse_error(live: tuple[LiveServer, Wire]) -> None:
    server, wire = live
    codec = EnvelopeCodec("client", key=derive_key(PASSPHRASE))
    async with connect(url(server), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        await ws.send(await codec.seal_text("{not json"))
        async with asyncio.timeout(10):
            frame = await ws.recv()
        assert "Parse error" not in frame
        error = json.loads(await codec.open_text(frame))
        assert error["error"]["code"] == -32700 and error["id"] is None
    assert all(json.loads(f)["method"] == "encrypted" for _, f in wire.frames)


async def test_binary_frames_and_the_plain_endpoint_are_unchanged(live: tuple[LiveServer, Wire]) -> None:
    server, _ = live
    async with connect(url(server), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        await ws.send(b"\x00\x01")
        code, _ = await close_of(ws)
    assert code == 1003
    async with connect(url(server, "/ws"), subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        async with asyncio.timeout(10):
            assert json.loads(await ws.recv()) == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_no_encrypted_endpoint_unless_configured() -> None:
    server = LiveServer(create_app(build_demo_server(), AppConfig(oauth=None)))
    await server.start()
    try:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(server), subprotocols=["mcp"]):  # type: ignore[list-item]
                pass
        assert info.value.response.status_code == 403
    finally:
        await server.stop()


def test_the_encryption_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    config = encryption_config(parse_args([]))
    assert config is not None and config.passphrase == DEMO_PASSPHRASE and config.key is None
    assert encryption_config(parse_args(["--no-encryption"])) is None
    config = encryption_config(parse_args(["--encryption-passphrase", "flag"]))
    assert config is not None and config.passphrase == "flag"
    monkeypatch.setenv(PASSPHRASE_ENV, "from env")
    config = encryption_config(parse_args([]))
    assert config is not None and config.passphrase == "from env"
    config = encryption_config(parse_args(["--encryption-key", "ab" * 32]))
    assert config is not None and config.derived_key() == bytes([0xAB]) * 32
    for bad in ("ab" * 31, "zz" * 32):
        with pytest.raises(SystemExit):
            parse_args(["--encryption-key", bad])
    record = tmp_path / "wire.jsonl"
    config = encryption_config(parse_args(["--record-wire", str(record)]))
    assert config is not None and config.on_wire is not None
    config.on_wire("in", "frame 1")
    config.on_wire("out", "frame 2")
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [{"direction": "in", "frame": "frame 1"}, {"direction": "out", "frame": "frame 2"}]
    assert isinstance(parse_args([]), argparse.Namespace)


def test_the_key_is_derived_once() -> None:
    config = EncryptionConfig(passphrase="pw")
    assert config.derived_key() is config.derived_key()
    assert config.derived_key() == derive_key("pw")
    with pytest.raises(ValueError, match="32 bytes"):
        EncryptionConfig(key=b"short").derived_key()

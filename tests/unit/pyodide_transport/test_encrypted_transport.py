"""``EncryptedTransport``: a real ``Client`` and the demo server core over an encrypted in-memory link."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

import pyodide_transport
from pyodide_transport import Client, EncryptedTransport, EnvelopeError, InMemoryTransport
from pyodide_transport import encrypted as encrypted_module
from pyodide_transport.encrypted import EnvelopeCodec, derive_key_async
from pyodide_transport.envelope import derive_key
from pyodide_transport.messages import (
    JSONRPCNotification,
    TransportMessage,
    encode_message,
    make_notification,
    make_request,
)
from server_demo.core import serve_transport
from server_demo.demo import build_demo_server

KEY = bytes(range(32))
HANDSHAKE = "2025-11-25"


@dataclass
class Tap:
    """A transport between the encryption and the in-memory link that records what crosses it."""

    inner: InMemoryTransport
    frames: list[str] = field(default_factory=list)
    transport_type: str = "memory"

    async def send(self, message: TransportMessage) -> None:
        self.frames.append(encode_message(message))
        await self.inner.send(message)

    async def receive(self) -> TransportMessage:
        message = await self.inner.receive()
        self.frames.append(encode_message(message))
        return message

    async def close(self) -> None:
        await self.inner.close()

    def is_connected(self) -> bool:
        return self.inner.is_connected()


@dataclass
class Link:
    client: Client
    tap: Tap
    server_end: InMemoryTransport
    errors: list[Exception]


@asynccontextmanager
async def encrypted_link(
    *, client_options: dict[str, Any] | None = None, server_options: dict[str, Any] | None = None, **client: Any
) -> AsyncIterator[Link]:
    client_end, server_end = InMemoryTransport.create_pair()
    tap = Tap(client_end)
    server = EncryptedTransport(server_end, role="server", **(server_options or {"key": KEY}))
    task = asyncio.create_task(serve_transport(build_demo_server(), server))
    errors: list[Exception] = []
    transport = EncryptedTransport(tap, **(client_options or {"key": KEY}))
    try:
        async with Client(transport, on_error=errors.append, request_timeout=5, **client) as session:
            yield Link(session, tap, server_end, errors)
    finally:
        await client_end.close()
        async with asyncio.timeout(10):
            await task


@pytest.mark.parametrize("version", [None, HANDSHAKE])
async def test_a_session_works_and_the_wire_carries_only_envelopes(version: str | None) -> None:
    async with encrypted_link(protocol_version=version) as link:
        tools = await link.client.list_tools()
        assert "echo" in {t.name for t in tools.tools}
        result = await link.client.call_tool("echo", {"message": "attack at dawn"})
        assert result.content[0].text == "attack at dawn"  # type: ignore[union-attr]
        assert link.client.transport.transport_type == "encrypted+memory"
    assert len(link.tap.frames) >= 4
    for frame in link.tap.frames:
        obj = json.loads(frame)
        assert obj["method"] == "encrypted" and set(obj["params"]) == {"data"} and "id" not in obj
        for word in ("attack at dawn", "echo", "tools/list", "tools/call", "initialize", "server/discover"):
            assert word not in frame
    assert link.errors == []


async def test_passphrase_on_both_ends() -> None:
    options = {"passphrase": "correct horse", "salt": b"test salt", "iterations": 1000}
    async with encrypted_link(client_options=options, server_options=options) as link:
        assert (await link.client.call_tool("echo", {"message": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]


async def test_concurrent_calls_stay_in_counter_order() -> None:
    async with encrypted_link() as link:
        results = await asyncio.gather(*(link.client.call_tool("echo", {"message": f"m{i}"}) for i in range(40)))
        assert [r.content[0].text for r in results] == [f"m{i}" for i in range(40)]  # type: ignore[union-attr]
        assert link.errors == []


async def test_bad_envelopes_are_reported_and_the_session_goes_on() -> None:
    """Plaintext, a replay, a tampered envelope, a reflected one: each one EnvelopeError, then reading goes on."""
    async with encrypted_link() as link:
        await link.client.call_tool("echo", {"message": "one"})
        incoming = [json.loads(f) for f in link.tap.frames]
        old_server_envelope = incoming[-1]  # the last frame the client received: a server->client envelope
        own_envelope = incoming[-2]  # the client's last request, as sealed by the client
        tampered = dict(old_server_envelope)
        data = old_server_envelope["params"]["data"]
        tampered["params"] = {"data": data[:20] + ("A" if data[20] != "A" else "B") + data[21:]}
        for obj in (
            {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "forged"}},
            old_server_envelope,
            tampered,
            own_envelope,
        ):
            await link.server_end.send(make_notification(obj["method"], obj["params"]))
        result = await link.client.call_tool("echo", {"message": "two"})
        assert result.content[0].text == "two"  # type: ignore[union-attr]
        for _ in range(100):
            if len(link.errors) >= 4:
                break
            await asyncio.sleep(0.01)
        messages = [str(e) for e in link.errors]
        assert all(isinstance(e, EnvelopeError) for e in link.errors), messages
        assert "expected an encrypted envelope" in messages[0] and "'notifications/message'" in messages[0]
        assert "replayed or reordered" in messages[1]
        assert "does not authenticate" in messages[2]
        assert "does not authenticate" in messages[3]  # reflected: sealed for the other direction


async def test_wrong_key_and_reflection_at_the_transport_level() -> None:
    a, b = InMemoryTransport.create_pair()
    client = EncryptedTransport(a, key=KEY)
    server = EncryptedTransport(b, role="server", key=bytes(32))
    await client.send(make_request(1, "tools/list"))
    with pytest.raises(EnvelopeError, match="another key"):
        await server.receive()
    # reflection: the client's own envelope, sent back to it
    raw_a, raw_b = InMemoryTransport.create_pair()
    sender = EncryptedTransport(raw_a, key=KEY)
    await sender.send(make_request(1, "tools/list"))
    envelope = await raw_b.receive()
    await raw_b.send(envelope)
    with pytest.raises(EnvelopeError, match="other direction"):
        await sender.receive()


async def test_an_envelope_holding_no_message_is_a_remote_protocol_error() -> None:
    a, b = InMemoryTransport.create_pair()
    server_codec = EnvelopeCodec("server", key=KEY)
    client = EncryptedTransport(a, key=KEY)
    envelope = await server_codec.seal_payload(b'{"not": "json-rpc"}')
    await b.send(envelope)
    with pytest.raises(pyodide_transport.RemoteProtocolError, match="opened but holds no valid message") as info:
        await client.receive()
    assert not isinstance(info.value, EnvelopeError)


async def test_text_codec_round_trip() -> None:
    client, server = EnvelopeCodec("client", key=KEY), EnvelopeCodec("server", key=KEY)
    frame = await client.seal_text('{"jsonrpc":"2.0","id":1,"method":"ping"}')
    assert json.loads(frame)["method"] == "encrypted" and "ping" not in frame
    assert await server.open_text(frame) == b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    with pytest.raises(EnvelopeError, match="replayed"):
        await server.open_text(frame)
    with pytest.raises(EnvelopeError, match="'ping'"):
        await server.open_text('{"jsonrpc":"2.0","id":1,"method":"ping"}')


async def test_passthrough_and_close() -> None:
    a, b = InMemoryTransport.create_pair()
    transport = EncryptedTransport(a, key=KEY)
    assert isinstance(transport, pyodide_transport.Transport)
    assert transport.is_connected() and transport.transport_type == "encrypted+memory"
    await transport.close()
    assert not transport.is_connected() and not b.is_connected()
    with pytest.raises(pyodide_transport.ConnectionClosedError):
        await transport.receive()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "exactly one"),
        ({"key": KEY, "passphrase": "x"}, "exactly one"),
        ({"key": b"short"}, "32 bytes"),
        ({"passphrase": ""}, "empty"),
        ({"role": "peer", "key": KEY}, "role"),
        ({"aead": object(), "key": KEY}, "not both"),
    ],
)
def test_constructor_refuses_bad_keys(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EncryptedTransport(InMemoryTransport(), **options)


async def test_a_passphrase_is_derived_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = encrypted_module.derive_key_async

    async def counting(passphrase: str, salt: bytes, iterations: int) -> bytes:
        calls.append(passphrase)
        await asyncio.sleep(0.01)
        return await original(passphrase, salt, iterations)

    monkeypatch.setattr(encrypted_module, "derive_key_async", counting)
    codec = EnvelopeCodec("client", passphrase="pw", iterations=10)
    first, second = await asyncio.gather(codec.cipher(), codec.cipher())
    assert first is second and calls == ["pw"]


async def test_derive_key_async_matches_derive_key() -> None:
    assert await derive_key_async("pw", b"salt", 1000) == derive_key("pw", b"salt", 1000)
    with pytest.raises(ValueError, match="empty"):
        await derive_key_async("")


def test_exported_lazily() -> None:
    assert "EncryptedTransport" in pyodide_transport.__all__
    assert pyodide_transport.EncryptedTransport is EncryptedTransport
    assert isinstance(make_notification("x"), JSONRPCNotification)

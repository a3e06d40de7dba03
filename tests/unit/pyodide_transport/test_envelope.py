"""The envelope wire format (``pyodide_transport.envelope``): framing, direction, counters, refusals, keys."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from pyodide_transport.cpython import CryptographyAEAD
from pyodide_transport.envelope import (
    AUTHENTICATION_FAILED,
    COUNTER_SIZE,
    DEFAULT_SALT,
    NONCE_SIZE,
    PBKDF2_ITERATIONS,
    TAG_SIZE,
    EnvelopeCore,
    Role,
    derive_key,
    direction_aad,
    envelope_obj,
    is_envelope,
    pbkdf2_sha256,
    resolve_key,
)
from pyodide_transport.errors import EnvelopeError, LocalProtocolError, RemoteProtocolError

KEY = bytes(range(32))
OTHER_KEY = bytes(32)
MESSAGE = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"secret"}}}'


async def seal(core: EnvelopeCore, payload: bytes = MESSAGE, key: bytes = KEY) -> dict[str, Any]:
    sealing = core.sealing(payload)
    sealed = await CryptographyAEAD(key).seal(sealing.nonce, sealing.plaintext, sealing.aad)
    return core.envelope(sealing, sealed)


async def open_(core: EnvelopeCore, envelope: object, key: bytes = KEY) -> bytes:
    opening = core.opening(envelope)
    plaintext = await CryptographyAEAD(key).open(opening.nonce, opening.ciphertext, opening.aad)
    return core.accept(plaintext)


def pair() -> tuple[EnvelopeCore, EnvelopeCore]:
    return EnvelopeCore("client"), EnvelopeCore("server")


def raw_data(envelope: dict[str, Any]) -> bytes:
    return base64.b64decode(envelope["params"]["data"])


def with_data(envelope: dict[str, Any], raw: bytes) -> dict[str, Any]:
    return {**envelope, "params": {"data": base64.b64encode(raw).decode()}}


async def test_round_trip_both_directions() -> None:
    client, server = pair()
    for _ in range(3):
        assert await open_(server, await seal(client)) == MESSAGE
        assert await open_(client, await seal(server, b'{"jsonrpc":"2.0","id":1,"result":{}}')) == (
            b'{"jsonrpc":"2.0","id":1,"result":{}}'
        )
    assert (client.sent, client.accepted, server.sent, server.accepted) == (3, 3, 3, 3)


async def test_envelope_shape_hides_the_message() -> None:
    client, _ = pair()
    envelope = await seal(client)
    assert set(envelope) == {"jsonrpc", "method", "params"} and envelope["method"] == "encrypted"
    assert set(envelope["params"]) == {"data"} and is_envelope(envelope)
    raw = raw_data(envelope)
    assert len(raw) == NONCE_SIZE + COUNTER_SIZE + len(MESSAGE) + TAG_SIZE
    text = json.dumps(envelope)
    for word in ("tools/call", "echo", "secret", "arguments"):
        assert word not in text


async def test_nonces_are_fresh() -> None:
    client, _ = pair()
    nonces = {raw_data(await seal(client))[:NONCE_SIZE] for _ in range(200)}
    assert len(nonces) == 200


async def test_injected_randomness_and_the_plaintext_layout() -> None:
    core = EnvelopeCore("client", randbytes=lambda n: b"\x07" * n)
    sealing = core.sealing(b"{}")
    assert sealing.nonce == b"\x07" * 12
    assert sealing.plaintext == (1).to_bytes(8, "big") + b"{}"
    assert sealing.aad == b"pyodide-transport/v1 client->server" == direction_aad("client")
    assert direction_aad("server") == b"pyodide-transport/v1 server->client"
    with pytest.raises(LocalProtocolError, match="randbytes"):
        EnvelopeCore("client", randbytes=lambda n: b"x").sealing(b"{}")


async def test_reflection_is_refused() -> None:
    """A client's envelope sent back to the client does not open: the direction is in the AAD."""
    client, _ = pair()
    envelope = await seal(client)
    with pytest.raises(EnvelopeError, match="does not authenticate"):
        await open_(client, envelope)
    assert client.accepted == 0


@pytest.mark.parametrize("role", ["client", "server"])
async def test_replay_is_refused(role: Role) -> None:
    sender, receiver = EnvelopeCore(role), EnvelopeCore("server" if role == "client" else "client")
    first = await seal(sender)
    assert await open_(receiver, first) == MESSAGE
    with pytest.raises(EnvelopeError, match=r"envelope 1 refused: 1 was accepted already \(replayed or reordered\)"):
        await open_(receiver, first)
    assert await open_(receiver, await seal(sender)) == MESSAGE  # the stream goes on


async def test_reordering_is_refused_and_gaps_are_not() -> None:
    client, server = pair()
    one, two, three = [await seal(client) for _ in range(3)]
    assert await open_(server, two) == MESSAGE
    with pytest.raises(EnvelopeError, match="replayed or reordered"):
        await open_(server, one)
    assert await open_(server, three) == MESSAGE
    assert server.accepted == 3


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
async def test_a_flipped_byte_is_refused(where: str) -> None:
    client, server = pair()
    envelope = await seal(client)
    raw = bytearray(raw_data(envelope))
    index = {"nonce": 0, "ciphertext": NONCE_SIZE + 3, "tag": len(raw) - 1}[where]
    raw[index] ^= 0x01
    with pytest.raises(EnvelopeError) as info:
        await open_(server, with_data(envelope, bytes(raw)))
    assert str(info.value) == AUTHENTICATION_FAILED
    assert server.accepted == 0  # a forgery does not move the counter
    assert await open_(server, envelope) == MESSAGE


async def test_truncated_envelopes_are_refused() -> None:
    client, server = pair()
    envelope = await seal(client)
    raw = raw_data(envelope)
    with pytest.raises(EnvelopeError, match="does not authenticate"):
        await open_(server, with_data(envelope, raw[:-1]))
    with pytest.raises(EnvelopeError, match=r"truncated: 27 bytes, at least 28 expected"):
        await open_(server, with_data(envelope, raw[: NONCE_SIZE + TAG_SIZE - 1]))
    with pytest.raises(EnvelopeError, match="truncated"):
        await open_(server, with_data(envelope, b""))


async def test_a_sealed_plaintext_without_counter_is_refused() -> None:
    _, server = pair()
    with pytest.raises(EnvelopeError, match="no counter"):
        server.accept(b"1234567")


async def test_wrong_key_is_refused() -> None:
    client, server = pair()
    with pytest.raises(EnvelopeError, match="another key"):
        await open_(server, await seal(client), key=OTHER_KEY)


@pytest.mark.parametrize("data", ["not base64!", "QUJ", "QQ", "é", "QU JD"])
async def test_bad_base64_is_refused(data: str) -> None:
    _, server = pair()
    envelope = {"jsonrpc": "2.0", "method": "encrypted", "params": {"data": data}}
    with pytest.raises(EnvelopeError, match="not valid base64"):
        server.opening(envelope)


@pytest.mark.parametrize(
    "obj",
    [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "encrypted"},
        {"jsonrpc": "2.0", "method": "encrypted", "params": {"data": 5}},
        {"jsonrpc": "2.0", "id": 3, "method": "encrypted", "params": {"data": "AAAA"}},
        {"jsonrpc": "1.0", "method": "encrypted", "params": {"data": "AAAA"}},
        {"jsonrpc": "2.0", "id": 1, "result": {}},
        [1, 2],
        "text",
        None,
    ],
)
def test_non_envelopes_are_refused_clearly(obj: object) -> None:
    _, server = pair()
    assert not is_envelope(obj)
    with pytest.raises(EnvelopeError, match="expected an encrypted envelope") as info:
        server.opening(obj)
    assert "plaintext" in str(info.value)
    assert isinstance(info.value, RemoteProtocolError)


def test_opening_text() -> None:
    _, server = pair()
    with pytest.raises(EnvelopeError, match="not JSON"):
        server.opening_text("{nope")
    with pytest.raises(EnvelopeError, match="'tools/list'"):
        server.opening_text('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    envelope = envelope_obj(bytes(12), bytes(16))
    assert server.opening_text(json.dumps(envelope)).nonce == bytes(12)


def test_counter_exhaustion_refuses_to_seal() -> None:
    core = EnvelopeCore("client")
    core.sent = 2**64 - 1
    with pytest.raises(LocalProtocolError, match="exhausted"):
        core.sealing(b"{}")


def test_role_is_checked() -> None:
    with pytest.raises(ValueError, match="role"):
        EnvelopeCore("peer")  # type: ignore[arg-type]


def test_passphrase_kdf_is_deterministic_and_salted() -> None:
    key = derive_key("correct horse", b"salt-1")
    assert len(key) == 32
    assert key == derive_key("correct horse", b"salt-1")
    assert key != derive_key("correct horse", b"salt-2")
    assert key != derive_key("correct horsf", b"salt-1")
    assert key == hashlib.pbkdf2_hmac("sha256", b"correct horse", b"salt-1", PBKDF2_ITERATIONS)
    assert derive_key("correct horse") == derive_key("correct horse", DEFAULT_SALT)
    with pytest.raises(ValueError, match="empty"):
        derive_key("")


@pytest.mark.parametrize(
    ("password", "salt", "iterations", "length"),
    [(b"password", b"salt", 1, 32), (b"password", b"salt", 4096, 32), (b"x" * 100, b"s", 3, 40), (b"", b"", 2, 20)],
)
def test_the_pure_python_pbkdf2_matches_hashlib(
    monkeypatch: pytest.MonkeyPatch, password: bytes, salt: bytes, iterations: int, length: int
) -> None:
    """Pyodide's hashlib has no pbkdf2_hmac: the fallback gives the same bytes."""
    expected = hashlib.pbkdf2_hmac("sha256", password, salt, iterations, length)
    monkeypatch.delattr(hashlib, "pbkdf2_hmac")
    assert pbkdf2_sha256(password, salt, iterations, length) == expected
    with pytest.raises(ValueError, match="iterations"):
        pbkdf2_sha256(password, salt, 0)


def test_rfc_7914_pbkdf2_sha256_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(hashlib, "pbkdf2_hmac")
    got = pbkdf2_sha256(b"passwd", b"salt", 1, 64)
    assert got.hex().startswith("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")


def test_resolve_key() -> None:
    assert resolve_key(KEY, None) == KEY
    assert resolve_key(None, "pw") is None
    for key, passphrase in [(None, None), (KEY, "pw")]:
        with pytest.raises(ValueError, match="exactly one"):
            resolve_key(key, passphrase)
    with pytest.raises(ValueError, match="32 bytes, got 16"):
        resolve_key(bytes(16), None)
    with pytest.raises(ValueError, match="empty"):
        resolve_key(None, "")

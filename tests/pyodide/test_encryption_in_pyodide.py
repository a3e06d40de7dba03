"""Encrypted envelopes across runtimes: WebCrypto in Pyodide (Node) against ``cryptography`` in CPython.

Sealed in Pyodide, opened in CPython and the other way round; PBKDF2 gives the same key in both;
and an encrypted WebSocket session from Pyodide to the demo server's ``/ws/encrypted``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from node_runtime import NodePyodide, PyodideError

from pyodide_transport.encrypted import EnvelopeCodec
from pyodide_transport.envelope import derive_key
from server_demo.config import DEMO_PASSPHRASE

pytestmark = pytest.mark.pyodide

KEY = bytes(range(32))
MESSAGES = [
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"ünïcode ✓"}}}',
    '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    '{"jsonrpc":"2.0","id":2,"result":{"big":"' + "x" * 70_000 + '"}}',
]
PRELUDE = f"""
import json, sys
import pyodide_transport
from pyodide_transport.encrypted import EnvelopeCodec, default_aead
from pyodide_transport.envelope import derive_key
KEY = bytes({list(KEY)!r})
"""


def run(pyodide: NodePyodide, code: str) -> Any:
    return pyodide.run_json(PRELUDE + code, timeout=60)


def test_sealed_in_pyodide_opens_in_cpython(pyodide: NodePyodide) -> None:
    code = f"""
codec = EnvelopeCodec("client", key=KEY)
frames = [await codec.seal_text(m) for m in {MESSAGES!r}]
json.dumps([type(await codec.cipher()).__name__, sys.platform, frames])
"""
    kind, platform, frames = run(pyodide, code)
    assert (kind, platform) == ("WebCryptoAEAD", "emscripten")
    server = EnvelopeCodec("server", key=KEY)
    opened = [asyncio.run(server.open_text(frame)).decode() for frame in frames]
    assert opened == MESSAGES
    assert len({json.loads(f)["params"]["data"][:16] for f in frames}) == 3  # fresh nonces from getRandomValues


def test_sealed_in_cpython_opens_in_pyodide_and_forgeries_are_refused(pyodide: NodePyodide) -> None:
    async def seal() -> list[str]:
        codec = EnvelopeCodec("server", key=KEY)
        return [await codec.seal_text(m) for m in MESSAGES]

    frames = asyncio.run(seal())
    data = json.loads(frames[1])["params"]["data"]
    tampered = json.dumps({**json.loads(frames[1]), "params": {"data": ("B" if data[0] == "A" else "A") + data[1:]}})
    code = f"""
from pyodide_transport import EnvelopeError
frames = {frames!r}
codec = EnvelopeCodec("client", key=KEY)
out = {{"opened": [], "errors": []}}
for frame in [frames[0], {tampered!r}, frames[1], frames[1], frames[2]]:
    try:
        out["opened"].append((await codec.open_text(frame)).decode())
    except EnvelopeError as exc:
        out["errors"].append(str(exc))
try:
    await EnvelopeCodec("client", key=bytes(32)).open_text(frames[0])
except EnvelopeError as exc:
    out["errors"].append(str(exc))
try:
    await EnvelopeCodec("server", key=KEY).open_text(frames[0])  # reflected: the server's own direction
except EnvelopeError as exc:
    out["errors"].append(str(exc))
json.dumps(out)
"""
    out = run(pyodide, code)
    assert out["opened"] == MESSAGES
    tamper, replay, wrong_key, reflected = out["errors"]
    assert "does not authenticate" in tamper and "does not authenticate" in wrong_key
    assert "does not authenticate" in reflected
    assert "replayed or reordered" in replay


def test_pbkdf2_gives_the_same_key_in_both_runtimes(pyodide: NodePyodide) -> None:
    code = """
from pyodide_transport._browser import webcrypto_pbkdf2
from pyodide_transport.encrypted import derive_key_async
from pyodide_transport.envelope import pbkdf2_sha256
import hashlib
json.dumps([
    (await derive_key_async("correct horse", b"salt")).hex(),
    derive_key("correct horse", b"salt", 2000).hex(),
    (await webcrypto_pbkdf2(b"correct horse", b"salt", 2000)).hex(),
    hasattr(hashlib, "pbkdf2_hmac"),
])
"""
    webcrypto, pure, webcrypto_2000, has_native = run(pyodide, code)
    assert webcrypto == derive_key("correct horse", b"salt").hex()
    assert pure == webcrypto_2000 == derive_key("correct horse", b"salt", 2000).hex()
    assert has_native is False  # why the pure fallback and WebCrypto's PBKDF2 exist


def test_an_encrypted_websocket_session_from_pyodide(pyodide: NodePyodide, demo_server: Any) -> None:
    url = demo_server.url.replace("http://", "ws://") + "/ws/encrypted"
    code = f"""
from pyodide_transport import Client, EncryptedTransport, WebSocketTransport
inner = WebSocketTransport({url!r}, ping_interval=None, auto_reconnect=False)
async with Client(EncryptedTransport(inner, passphrase={DEMO_PASSPHRASE!r})) as client:
    tools = await client.list_tools()
    result = await client.call_tool("echo", {{"message": "sealed in WebCrypto"}})
    kind = client.transport.transport_type
json.dumps([kind, sorted(t.name for t in tools.tools)[:50], result.content[0].text])
"""
    kind, tools, text = run(pyodide, code)
    assert kind == "encrypted+websocket"
    assert "echo" in tools and text == "sealed in WebCrypto"


def test_the_wrong_passphrase_from_pyodide_is_refused_by_the_server(pyodide: NodePyodide, demo_server: Any) -> None:
    url = demo_server.url.replace("http://", "ws://") + "/ws/encrypted"
    code = f"""
from pyodide_transport import Client, ConnectionClosedError, EncryptedTransport, WebSocketTransport
inner = WebSocketTransport({url!r}, ping_interval=None, auto_reconnect=False)
client = Client(EncryptedTransport(inner, passphrase="not the demo one"), request_timeout=10)
try:
    await client.connect()
    outcome = ["connected"]
except ConnectionClosedError as exc:
    outcome = [exc.code, exc.reason]
finally:
    await client.close()
json.dumps(outcome)
"""
    try:
        code_, reason = run(pyodide, code)
    except PyodideError as exc:  # the session may report the loss as its own error type
        pytest.fail(f"unexpected error in Pyodide: {exc}")
    assert code_ == 1008 and "does not authenticate" in reason

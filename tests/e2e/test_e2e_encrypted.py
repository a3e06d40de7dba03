"""``EncryptedTransport`` in Chromium: WebCrypto AES-256-GCM over the browser WebSocket to ``/ws/encrypted``.

The demo server records every raw frame of ``/ws/encrypted`` (``--record-wire``) and Playwright
records every frame the page's WebSocket sent and received: the two records agree, the session
worked (tools listed, a tool called), and no method name, argument or result is on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocket

from devtools.chromium import LoopbackGuard
from devtools.servers import DemoServer

pytestmark = pytest.mark.e2e

PASSPHRASE = "e2e passphrase, not the demo one"
SECRET = "meet me under the old clock tower"
PLAINTEXT_WORDS = [
    SECRET,
    "echo",
    "tools/list",
    "tools/call",
    "initialize",
    "server/discover",
    "arguments",
    "protocolVersion",
    "pyodide-transport",
]


class Frames:
    """The page's WebSocket frames, as Playwright saw them."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.received: list[str] = []
        self.urls: list[str] = []

    def attach(self, ws: WebSocket) -> None:
        self.urls.append(ws.url)
        ws.on("framesent", lambda payload: self.sent.append(_text(payload)))
        ws.on("framereceived", lambda payload: self.received.append(_text(payload)))


def _text(payload: str | bytes) -> str:
    return payload if isinstance(payload, str) else payload.decode("latin-1")


@pytest.fixture(scope="module")
def wire_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wire") / "frames.jsonl"


@pytest.fixture(scope="module")
def encrypted_server(wire_file: Path) -> Iterator[DemoServer]:
    """A demo server (serving the site) with its own passphrase, recording /ws/encrypted's frames."""
    with DemoServer("--encryption-passphrase", PASSPHRASE, "--record-wire", str(wire_file)) as server:
        yield server


@pytest.fixture(scope="module")
def encrypted_page(browser: Browser, encrypted_server: DemoServer) -> Iterator[tuple[Page, Frames]]:
    guard = LoopbackGuard()
    context = browser.new_context()
    guard.attach(context)
    page = context.new_page()
    frames = Frames()
    page.on("websocket", frames.attach)
    page.goto(f"{encrypted_server.url}/transport-test.html")
    page.wait_for_function("document.getElementById('status').textContent !== 'booting Python…'", timeout=90_000)
    assert page.text_content("#status") == "ready"
    yield page, frames
    guard.check()
    context.close()


def run(page: Page, code: str) -> Any:
    text = page.evaluate("code => window.runPython(code)", code)
    return json.loads(text)


def session_code(url: str, passphrase: str = PASSPHRASE) -> str:
    return f"""
import json
from pyodide_transport import Client, EncryptedTransport, WebSocketTransport
inner = WebSocketTransport({url!r}, ping_interval=None, auto_reconnect=False)
transport = EncryptedTransport(inner, passphrase={passphrase!r})
async with Client(transport, request_timeout=20) as client:
    tools = await client.list_tools()
    result = await client.call_tool("echo", {{"message": {SECRET!r}}})
    outcome = {{
        "tools": sorted(t.name for t in tools.tools),
        "echo": result.content[0].text,
        "transport": client.transport.transport_type,
        "aead": type(await transport.codec.cipher()).__name__,
    }}
json.dumps(outcome)
"""


def recorded(wire_file: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in wire_file.read_text().splitlines()] if wire_file.exists() else []


def test_an_encrypted_session_leaves_no_plaintext_on_the_wire(
    encrypted_page: tuple[Page, Frames], encrypted_server: DemoServer, wire_file: Path
) -> None:
    page, frames = encrypted_page
    url = encrypted_server.url.replace("http://", "ws://") + "/ws/encrypted"
    before = len(recorded(wire_file))
    outcome = run(page, session_code(url))
    assert outcome["echo"] == SECRET
    assert "echo" in outcome["tools"] and len(outcome["tools"]) > 3
    assert outcome["transport"] == "encrypted+websocket" and outcome["aead"] == "WebCryptoAEAD"
    assert url in frames.urls

    # the browser's view of the wire
    browser_frames = frames.sent + frames.received
    assert len(frames.sent) >= 3 and len(frames.received) >= 3  # discover/initialize, list, call (+ answers)
    for frame in browser_frames:
        obj = json.loads(frame)
        assert obj == {"jsonrpc": "2.0", "method": "encrypted", "params": {"data": obj["params"]["data"]}}
        for word in PLAINTEXT_WORDS:
            assert word not in frame, (word, frame[:200])

    # the server's view: exactly the same frames, in the same order per direction
    server_frames = recorded(wire_file)[before:]
    assert [r["frame"] for r in server_frames if r["direction"] == "in"] == frames.sent
    assert [r["frame"] for r in server_frames if r["direction"] == "out"] == frames.received


def test_plaintext_and_a_wrong_passphrase_are_refused_and_the_endpoint_serves_on(
    encrypted_page: tuple[Page, Frames], encrypted_server: DemoServer
) -> None:
    page, _ = encrypted_page
    url = encrypted_server.url.replace("http://", "ws://") + "/ws/encrypted"
    code = f"""
import json
from pyodide_transport import Client, ConnectionClosedError, EncryptedTransport, WebSocketTransport
out = []
for make in (
    lambda: WebSocketTransport({url!r}, ping_interval=None, auto_reconnect=False),
    lambda: EncryptedTransport(
        WebSocketTransport({url!r}, ping_interval=None, auto_reconnect=False), passphrase="wrong passphrase"
    ),
):
    client = Client(make(), request_timeout=20)
    try:
        await client.connect()
        out.append(["connected"])
    except ConnectionClosedError as exc:
        out.append([exc.code, exc.reason])
    finally:
        await client.close()
json.dumps(out)
"""
    (plain_code, plain_reason), (wrong_code, wrong_reason) = run(page, code)
    assert plain_code == 1008 and "expected an encrypted envelope" in plain_reason
    assert wrong_code == 1008 and "does not authenticate" in wrong_reason
    assert run(page, session_code(url))["echo"] == SECRET

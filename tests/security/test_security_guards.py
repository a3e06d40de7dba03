"""What the demo server protects, checked from the outside.

Origin allow-list and Host check (DNS rebinding) on HTTP and WebSocket, loopback bind by
default, ``--allow-origin``, session id entropy, body and frame limits at the boundary, no
token or session id in any log line (server and client), and the CSP on every page.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from devtools.mcp_http import ACCEPT_BOTH, INIT
from devtools.reliability import HANDSHAKE, ROOT, HttpxHTTPClient, ServerProcess, cpython_connect, live_app
from devtools.servers import FakeClock
from server_demo import config as server_config
from server_demo.app import AppConfig, create_app

LIMIT = 64 * 1024
PATHS = ("/mcp", "/mcp/json", "/mcp/stateless")
POST_HEADERS = {"content-type": "application/json", "accept": ACCEPT_BOTH}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


# --- Origin and Host ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("extra", "allowed"),
    [
        ({"origin": "http://localhost:5173"}, True),
        ({"origin": "http://127.0.0.1:9"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "http://localhost.evil.example:80"}, False),
        ({"origin": "null"}, False),
        ({"host": "evil.example:8000"}, False),  # DNS rebinding: a foreign name resolving to 127.0.0.1
        ({"host": "127.0.0.1.rebind.example"}, False),
        ({"host": "localhost:1234"}, True),
    ],
)
async def test_origin_and_host_guard_on_http(path: str, extra: dict[str, str], allowed: bool) -> None:
    async with live_app() as live, httpx.AsyncClient(base_url=live.base) as http:
        body = INIT if path != "/mcp/stateless" else PING
        response = await http.post(path, json=body, headers={**POST_HEADERS, **extra})
        preflight = await http.options(
            path, headers={**extra, "access-control-request-method": "POST", "origin": extra.get("origin", "")}
        )
    if allowed:
        assert response.status_code == 200
        if "origin" in extra:
            assert response.headers["access-control-allow-origin"] == extra["origin"]
            assert preflight.status_code == 204
    else:
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
        assert preflight.status_code == 403


@pytest.mark.parametrize(
    ("origin", "allowed"), [("http://localhost:5173", True), ("https://evil.example", False), (None, True)]
)
async def test_origin_guard_on_websocket(origin: str | None, allowed: bool) -> None:
    async with live_app() as live:
        url = f"ws://127.0.0.1:{live.port}/ws"
        opening = ws_connect(url, subprotocols=[Subprotocol("mcp")], origin=Origin(origin) if origin else None)
        if allowed:
            async with opening as ws:
                await ws.send(json.dumps(PING))
                assert json.loads(await ws.recv())["id"] == 1
        else:
            with pytest.raises(InvalidStatus) as refused:
                async with opening:
                    pass
            assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("host", "status"), [("evil.example:80", 403), ("127.0.0.1.rebind.example", 403), ("localhost:9", 101)]
)
async def test_host_guard_on_websocket_upgrade(host: str, status: int) -> None:
    """A hand-written upgrade, so the Host header is exactly the one a rebinding page would send."""
    async with live_app() as live:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n\r\n"
            ).encode()
        )
        status_line = await reader.readline()
        writer.transport.abort()
    assert int(status_line.split()[1]) == status


async def test_allow_origin_option_adds_exactly_that_origin() -> None:
    server = await asyncio.to_thread(ServerProcess, "--allow-origin", "https://docs.example.org")
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            ok = await http.post(
                "/mcp/stateless", json=PING, headers={**POST_HEADERS, "origin": "https://docs.example.org"}
            )
            other = await http.post(
                "/mcp/stateless", json=PING, headers={**POST_HEADERS, "origin": "https://docs.example.com"}
            )
    finally:
        server.stop()
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://docs.example.org"
    assert other.status_code == 403


def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
async def test_binds_loopback_only_by_default() -> None:
    server = await asyncio.to_thread(ServerProcess)  # no --host
    try:
        listeners = _listeners(server.port)
    finally:
        server.stop()
    assert listeners == {"0100007F"}, listeners  # 127.0.0.1, and nothing on 0.0.0.0 or ::


# --- session ids ----------------------------------------------------------------------------------


async def test_session_ids_are_unique_unguessable_and_from_secrets(
    monkeypatch: pytest.MonkeyPatch, record_figure: Callable[[str, object], None]
) -> None:
    count = 1000
    async with live_app(max_sessions=count + 10) as live, httpx.AsyncClient(base_url=live.base) as http:
        ids = []
        for _ in range(count):
            response = await http.post("/mcp/json", json=INIT, headers=POST_HEADERS)
            assert response.status_code == 200
            ids.append(response.headers["mcp-session-id"])
    assert len(set(ids)) == count
    raw = [base64.urlsafe_b64decode(i + "=" * (-len(i) % 4)) for i in ids]
    assert all(len(r) * 8 >= 128 for r in raw) and all(i.isascii() and i.isprintable() for i in ids)
    ones = sum(bin(b).count("1") for r in raw for b in r)
    bits = sum(len(r) * 8 for r in raw)
    assert abs(ones / bits - 0.5) < 0.01, ones / bits  # no stuck bits
    monkeypatch.setattr("server_demo.config.secrets.token_urlsafe", lambda n: f"from-secrets-{n}")
    assert server_config.new_session_id() == "from-secrets-32"  # drawn from the secrets module
    record_figure("security: session ids checked (unique, bits each)", f"{count}, {len(raw[0]) * 8}")


# --- limits ---------------------------------------------------------------------------------------


def _body_of_size(size: int) -> bytes:
    head = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"'
    tail = b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("path", PATHS)
async def test_body_limit_at_the_boundary(path: str) -> None:
    async with live_app(max_body_bytes=LIMIT) as live, httpx.AsyncClient(base_url=live.base) as http:
        headers = dict(POST_HEADERS)
        if path != "/mcp/stateless":
            init = await http.post(path, json=INIT, headers=POST_HEADERS)
            headers |= {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": HANDSHAKE}
        at_limit = await http.post(path, content=_body_of_size(LIMIT), headers=headers)
        over = await http.post(path, content=_body_of_size(LIMIT + 1), headers=headers)

        async def chunked() -> Any:  # no Content-Length: the limit is counted while reading
            for _ in range(LIMIT // 1024 + 2):
                yield b" " * 1024

        streamed = await http.post(path, content=chunked(), headers=headers)
    assert at_limit.status_code == 200
    assert over.status_code == 413 and streamed.status_code == 413


async def test_websocket_frame_limit_at_the_boundary() -> None:
    async with live_app(max_body_bytes=LIMIT) as live:
        url = f"ws://127.0.0.1:{live.port}/ws"
        async with ws_connect(url, subprotocols=[Subprotocol("mcp")], max_size=None) as ws:
            await ws.send(_body_of_size(LIMIT).decode())
            assert json.loads(await ws.recv())["id"] == 1
            await ws.send(_body_of_size(LIMIT + 1).decode())
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# --- logs -----------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("server_demo", "uvicorn", "starlette", "pyodide_transport")):
            return  # the test's own HTTP library (httpcore traces headers at DEBUG) is not the product
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


@contextlib.contextmanager
def _capture_all_logs() -> Iterator[_Capture]:
    capture = _Capture()
    names = ["", "server_demo", "server_demo.http", "pyodide_transport", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = {name: logging.getLogger(name).level for name in names}
    root = logging.getLogger()
    root.addHandler(capture)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


async def _exercise(base: str, token: str, errors: list[Exception]) -> list[str]:
    """Use the server the way clients do, including failures, always with the bearer token."""
    session_ids = []
    for path in ("/mcp", "/mcp/json"):
        http = HttpxHTTPClient()
        client = await cpython_connect(
            base + path, fetch=http, headers={"Authorization": f"Bearer {token}"}, protocol_version=HANDSHAKE,
            on_error=errors.append,
        )  # fmt: skip
        transport: Any = client.transport
        session_ids.append(transport.session_id)
        await client.call_tool("echo", {"message": "hi"})
        await client.call_tool("test_error_handling", {})
        await client.close()
    auth = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base) as raw:
        for sid in session_ids:  # closed sessions: 404, bad input, foreign origin, all with the token
            await raw.post("/mcp", json=PING, headers={**POST_HEADERS, **auth, "mcp-session-id": sid})
            await raw.get("/mcp", headers={**auth, "accept": "text/event-stream", "mcp-session-id": sid})
            await raw.post("/mcp", content=b"{bad", headers={**POST_HEADERS, **auth, "mcp-session-id": sid})
            await raw.post("/mcp", json=PING, headers={**POST_HEADERS, **auth, "origin": "https://evil.example"})
        init = await raw.post("/mcp", json=INIT, headers={**POST_HEADERS, **auth})
        session_ids.append(init.headers["mcp-session-id"])  # left to expire
    return session_ids


async def test_no_token_or_session_id_in_any_log(tmp_path: Path) -> None:
    token = "tok-" + secrets.token_hex(16)
    errors: list[Exception] = []
    clock = FakeClock()
    with _capture_all_logs() as capture:
        async with live_app(clock=clock, session_idle_timeout=10) as live:
            session_ids = await _exercise(live.base, token, errors)
            clock.now += 60  # expire the last session (logged at INFO)
            async with httpx.AsyncClient(base_url=live.base) as raw:
                await raw.post("/mcp", json=PING, headers=POST_HEADERS)
        # the same against the real CLI server at debug level (uvicorn's own log format, access log)
        log_path = tmp_path / "server.log"
        server = await asyncio.to_thread(ServerProcess, "--log-level", "debug", log_path=log_path)
        try:
            session_ids += await _exercise(server.url, token, errors)
        finally:
            server.stop()
    lines = [*capture.lines, *log_path.read_text(errors="replace").splitlines()]
    assert any("session" in line for line in lines), "logging was captured"
    assert len(lines) > 20
    leaked = [line for line in lines if token in line or any(sid and sid in line for sid in session_ids)]
    assert leaked == []
    assert all("Bearer" not in line for line in lines)


# --- CSP ------------------------------------------------------------------------------------------


def _site(tmp_path: Path) -> Path:
    dist = ROOT / "site" / "dist"
    if (dist / "index.html").exists():
        return dist
    (tmp_path / "docs").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "docs" / "page.html").write_text("<!doctype html><title>y</title>")
    return tmp_path


async def test_every_page_carries_the_csp(tmp_path: Path, record_figure: Callable[[str, object], None]) -> None:
    site = _site(tmp_path)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert pages
    app = create_app(config=AppConfig(site_dir=site))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http:
        checked = 0
        for path in ["", *pages]:
            response = await http.get("/" + path)
            assert response.status_code == 200, path
            csp = response.headers.get("content-security-policy", "")
            directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ") if d}
            assert directives.get("default-src") == ["'self'"], (path, csp)
            assert directives.get("object-src") == ["'none'"], (path, csp)
            assert directives.get("frame-ancestors") == ["'self'"], (path, csp)
            assert directives.get("base-uri") == ["'self'"], (path, csp)
            assert "'unsafe-inline'" not in directives.get("script-src", ["'unsafe-inline'"]), (path, csp)
            assert response.headers.get("x-content-type-options") == "nosniff", path
            checked += 1
        missing = await http.get("/no-such-page.html")
        assert missing.status_code == 404
        assert "default-src 'self'" in missing.headers.get("content-security-policy", "")
        assert missing.headers.get("x-content-type-options") == "nosniff"
    record_figure("security: site pages checked for the CSP", checked)

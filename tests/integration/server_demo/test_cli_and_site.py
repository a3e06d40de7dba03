"""``python -m server_demo``: the static site with its CSP and MIME types, the printed URL, loopback binding."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, free_port

from server_demo.__main__ import parse_args
from server_demo.app import AppConfig, content_security_policy, create_app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def site_server(tmp_path: Path) -> AsyncIterator[str]:
    (tmp_path / "index.html").write_text("<!doctype html><title>site</title>")
    (tmp_path / "module.mjs").write_text("export const x = 1;")
    (tmp_path / "runtime.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00")
    server = LiveServer(create_app(config=AppConfig(site_dir=tmp_path)))
    await server.start()
    try:
        yield server.base
    finally:
        await server.stop()


async def test_site_is_served_with_csp_and_mime_types(site_server: str) -> None:
    async with httpx.AsyncClient(base_url=site_server) as client:
        index = await client.get("/")
        assert index.status_code == 200 and "<title>site</title>" in index.text
        csp = index.headers["content-security-policy"]
        for needed in ("'wasm-unsafe-eval'", "'unsafe-eval'", "worker-src 'self' blob:", "img-src 'self' data:"):
            assert needed in csp
        assert f"ws://{site_server.removeprefix('http://')}" in csp
        assert index.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/runtime.wasm")).headers["content-type"] == "application/wasm"
        assert (await client.get("/module.mjs")).headers["content-type"].startswith("text/javascript")
        # the MCP endpoints still answer next to the site
        mcp = await client.options("/mcp", headers={"origin": site_server, "access-control-request-method": "POST"})
        assert mcp.status_code == 204


def test_csp_ignores_a_strange_host() -> None:
    strange = content_security_policy("evil host\r\nx")
    assert "evil" not in strange and "\n" not in strange
    assert "connect-src 'self' ws://127.0.0.1:1 wss://127.0.0.1:1 " in content_security_policy("127.0.0.1:1")


def test_csp_lets_pages_reach_local_servers_only() -> None:
    connect = next(d for d in content_security_policy("127.0.0.1:8000").split("; ") if d.startswith("connect-src"))
    for source in ("http://127.0.0.1:*", "ws://127.0.0.1:*", "http://localhost:*", "ws://localhost:*"):
        assert source in connect.split()
    assert not any(s in connect.split() for s in ("*", "http:", "https:", "ws:", "wss:"))


def test_cli_defaults() -> None:
    args = parse_args([])
    assert (args.host, args.port, args.stdio) == ("127.0.0.1", 8000, False)
    args = parse_args(["--allow-origin", "https://a.example", "--allow-origin", "https://b.example", "--stdio"])
    assert args.allow_origin == ["https://a.example", "https://b.example"] and args.stdio


async def test_cli_prints_its_url_and_serves(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hello site")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server_demo",
        "--port",
        str(port),
        "--site",
        str(tmp_path),
        "--log-level",
        "warning",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            first = (await proc.stdout.readline()).decode()
        assert f"http://127.0.0.1:{port}/" in first
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert response.text == "hello site"
    finally:
        proc.terminate()
        async with asyncio.timeout(20):
            await proc.wait()

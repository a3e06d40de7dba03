"""Server process restarts and kills, seen through a TCP proxy so the new process may use another port.

* Handshake-era HTTP: the restarted server does not know the session (404); the Client
  starts a new one by itself and the user's next call succeeds.
* With ``--event-store sqlite:PATH`` the session and the SSE events survive the restart
  (graceful or SIGKILL): a call whose stream was closed before the restart gets its result
  from the new process through ``Last-Event-ID``, on the same session.
* WebSocket: the server is killed; the pending call fails at once with a clear error, the
  transport reconnects with backoff, and the next call succeeds on a new session.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tcp_proxy import TcpProxy

from devtools.reliability import HANDSHAKE, HttpxHTTPClient, ServerProcess, cpython_connect, until
from pyodide_transport.client import Client
from pyodide_transport.errors import ConnectionClosedError, NetworkError, SessionExpiredError

MakeProxy = Callable[[int], Awaitable[TcpProxy]]


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def _echo(client: Client, text: str) -> str:
    return _text(await client.call_tool("echo", {"message": text}, timeout=20))


@pytest.mark.parametrize("endpoint", ["/mcp", "/mcp/json"])
async def test_restart_expires_the_session_and_the_client_starts_a_new_one(
    make_proxy: MakeProxy, endpoint: str
) -> None:
    first = await asyncio.to_thread(ServerProcess)
    second: ServerProcess | None = None
    try:
        proxy = await make_proxy(first.port)
        errors: list[Exception] = []
        client = await cpython_connect(
            proxy.base + endpoint,
            fetch=HttpxHTTPClient(),
            protocol_version=HANDSHAKE,
            on_error=errors.append,
            max_reconnect_attempts=30,
        )
        try:
            transport: Any = client.transport
            old = transport.session_id
            assert await _echo(client, "before") == "before"
            await asyncio.to_thread(first.stop)  # the event loop (and the proxy) keeps running meanwhile
            second = await asyncio.to_thread(ServerProcess)
            proxy.upstream_port = second.port
            assert await _echo(client, "after the restart") == "after the restart"
            assert client.session_generation == 1
            assert transport.session_id and transport.session_id != old
            assert await _echo(client, "and again") == "and again"
        finally:
            await client.close()
        # the standalone GET stream may have noticed the expiry first: reported once, nothing else
        assert all(isinstance(e, SessionExpiredError) for e in errors), errors
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_a_long_outage_does_not_disconnect_the_http_client(make_proxy: MakeProxy) -> None:
    """The GET stream gives up while the server is down; the client stays usable and re-opens it later."""
    first = await asyncio.to_thread(ServerProcess)
    second: ServerProcess | None = None
    try:
        proxy = await make_proxy(first.port)
        errors: list[Exception] = []
        client = await cpython_connect(
            proxy.base + "/mcp",
            fetch=HttpxHTTPClient(),
            protocol_version=HANDSHAKE,
            on_error=errors.append,
            reconnect_delay=0.05,
            max_reconnect_delay=0.1,
            max_reconnect_attempts=2,
        )
        try:
            transport: Any = client.transport
            await until(lambda: transport.stats["get_stream"] == "open")
            await asyncio.to_thread(first.stop)
            await until(lambda: any(isinstance(e, NetworkError) for e in errors))  # the GET stream gave up
            assert client.is_connected()
            second = await asyncio.to_thread(ServerProcess)
            proxy.upstream_port = second.port
            assert await _echo(client, "after the outage") == "after the outage"
            assert client.session_generation == 1
            await until(lambda: transport.stats["get_stream"] == "open")  # re-opened on the new session
        finally:
            await client.close()
        assert not any(isinstance(e, ConnectionClosedError) for e in errors), errors
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _stored(db: Path, text: str) -> bool:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM events WHERE message LIKE ?", (f"%{text}%",)).fetchone()
    return bool(count)


@pytest.mark.parametrize("how", ["terminate", "kill"])
async def test_sqlite_event_store_resumption_survives_a_restart(
    make_proxy: MakeProxy, tmp_path: Path, how: str, record_figure: Callable[[str, object], None]
) -> None:
    db = tmp_path / "events.sqlite3"
    first = await asyncio.to_thread(ServerProcess, "--event-store", f"sqlite:{db}")
    second: ServerProcess | None = None
    try:
        proxy = await make_proxy(first.port)
        errors: list[Exception] = []
        http = HttpxHTTPClient()
        client = await cpython_connect(
            proxy.base + "/mcp", fetch=http, protocol_version=HANDSHAKE, on_error=errors.append,
            max_reconnect_attempts=30,
        )  # fmt: skip
        try:
            transport: Any = client.transport
            session = transport.session_id
            call = asyncio.ensure_future(client.call_tool("test_reconnection", {}, timeout=60))
            # The server closes the call's stream and asks for a 1 s retry: cut the client off meanwhile.
            await until(lambda: transport.stats["resumptions"] >= 1)
            proxy.block()
            await until(lambda: _stored(db, "Reconnection test completed"))
            await asyncio.to_thread(first.stop, kill=how == "kill")
            second = await asyncio.to_thread(ServerProcess, "--event-store", f"sqlite:{db}")
            proxy.upstream_port = second.port
            proxy.unblock()
            result = await call
            assert _text(result) == "Reconnection test completed successfully"
            assert transport.session_id == session, "the same session, restored by the new process"
            assert client.session_generation == 0
            assert await _echo(client, "on the restored session") == "on the restored session"
            resumes = [h for m, h in http.requests if m == "GET" and h.get("Last-Event-ID")]
            assert resumes and all(h["Mcp-Session-Id"] == session for h in resumes)
        finally:
            await client.close()
        assert not errors, errors
        record_figure(f"faults: sqlite event store resumption across a restart ({how})", "passed")
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_websocket_server_killed_fails_pending_at_once_and_reconnects_with_backoff(
    make_proxy: MakeProxy,
) -> None:
    first = await asyncio.to_thread(ServerProcess)
    second: ServerProcess | None = None
    try:
        proxy = await make_proxy(first.port)
        errors: list[Exception] = []
        client = await cpython_connect(
            f"ws://127.0.0.1:{proxy.port}/ws",
            protocol_version=HANDSHAKE,
            reconnect_delay=0.05,
            max_reconnect_delay=0.5,
            max_reconnect_attempts=100,
            on_error=errors.append,
        )
        try:
            transport: Any = client.transport
            assert await _echo(client, "before") == "before"
            pending = asyncio.ensure_future(client.call_tool("long_running", {"steps": 1000, "delay_ms": 1000}))
            await asyncio.sleep(0.2)
            assert not pending.done()
            await asyncio.to_thread(first.stop, kill=True)
            with pytest.raises(ConnectionClosedError, match=r"1006|abnormal|closed") as info:
                async with asyncio.timeout(10):
                    await pending
            # the pending call failed while the server was still down, with a message that says why
            assert second is None and str(info.value)
            await until(lambda: proxy.refused >= 3)
            assert transport.state == "reconnecting"
            second = await asyncio.to_thread(ServerProcess)
            proxy.upstream_port = second.port
            assert await _echo(client, "after") == "after"
            assert transport.reconnects == 1 and client.session_generation == 1
        finally:
            await client.close()
    finally:
        first.stop()
        if second is not None:
            second.stop()

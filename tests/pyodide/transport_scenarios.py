"""Transport scenarios against the real demo server: plain ``async def`` functions with plain asserts.

The same functions run in CPython (``tests/unit/pyodide_transport/test_connection.py``,
with the httpx/websockets adapters) and inside real Pyodide
(``tests/pyodide/test_transports.py``, over the JS ``fetch``/``WebSocket``).
Each takes ``connect`` (``pyodide_transport.connect`` or its CPython twin),
the endpoint URL and the era (``"auto"`` negotiates, else a pinned version).
Waits are bounded; nothing asserts on elapsed time.

:func:`connect_over_port` is a ``connect`` for :class:`~pyodide_transport.port.MessagePortTransport`:
the demo server runs in the same interpreter at the other end of a channel (a real ``MessageChannel``
in Pyodide, :func:`~pyodide_transport.port.memory_port_pair` in CPython); its URL is :data:`PORT_URL`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from mcp_types import LoggingMessageNotificationParams, TextContent

from pyodide_transport.client import Client
from pyodide_transport.errors import MCPError

Connect = Callable[..., Awaitable[Client]]
HANDSHAKE = "2025-11-25"
PORT_URL = "port://demo"
"""The "URL" the scenarios get with :func:`connect_over_port` (it names no server: the server is local)."""

_port_servers: set[asyncio.Future[None]] = set()


def port_pair() -> tuple[Any, Any]:
    """Two entangled ports: a real ``MessageChannel``'s in Pyodide, in-memory ones in CPython."""
    if sys.platform == "emscripten":
        import js

        channel = js.MessageChannel.new()
        return channel.port1, channel.port2
    from pyodide_transport.port import memory_port_pair

    return memory_port_pair()


async def connect_over_port(url: str, *, wrap: Callable[[Any], Any] | None = None, **options: Any) -> Client:
    """``connect`` over a MessagePort: ``serve_transport(build_demo_server(), MessagePortTransport(port2))`` here.

    The server's loop ends when the client closes (the close message reaches it).
    """
    from pyodide_transport.port import MessagePortTransport
    from server_demo import build_demo_server, serve_transport

    assert url == PORT_URL, url
    ours, theirs = port_pair()
    server = asyncio.ensure_future(serve_transport(build_demo_server(), MessagePortTransport(theirs)))
    _port_servers.add(server)
    server.add_done_callback(_port_servers.discard)
    transport: Any = MessagePortTransport(ours)
    if wrap is not None:
        transport = wrap(transport)
    client = Client(transport, **options)
    try:
        await client.connect()
    except BaseException:
        await client.close()
        raise
    return client


async def port_servers_done(limit: float = 10.0) -> int:
    """Wait until every server :func:`connect_over_port` started has ended; how many were still running."""
    running = [task for task in _port_servers if not task.done()]
    if running:
        await asyncio.wait_for(asyncio.gather(*running), limit)
    return len(running)


async def _open(connect: Connect, url: str, era: str, **options: Any) -> tuple[Client, list[Exception]]:
    errors: list[Exception] = []
    if era != "auto":
        options["protocol_version"] = era
    client = await connect(url, on_error=errors.append, **options)
    return client, errors


async def _until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    for _ in range(int(limit / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _can_push(url: str, era: str) -> bool:
    """Whether the server can send unsolicited notifications: a stateless handshake-era endpoint cannot."""
    return not (url.endswith("/mcp/stateless") and era != "auto")


def _text(result: Any) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


async def initialize(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    client, errors = await _open(connect, url, era, **options)
    try:
        assert client.is_connected()
        assert client.server_info is not None and client.server_info.name == "pyodide-transport-demo"
        assert client.server_capabilities is not None and client.server_capabilities.tools is not None
        if era != "auto":
            assert client.protocol_version == era
        await client.ping()
        assert not errors, errors
        return {"era": client.era, "version": client.protocol_version, "transport": client.transport.transport_type}
    finally:
        await client.close()


async def tools(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    client, errors = await _open(connect, url, era, **options)
    try:
        listed = await client.list_tools()
        names = {t.name for t in listed.tools}
        assert {"calculate", "echo", "long_running", "test_reconnection"} <= names, names
        result = await client.call_tool("calculate", {"a": 2, "b": 3, "operation": "multiply"})
        assert not result.is_error
        assert result.structured_content == {"result": 6, "expression": "2 * 3 = 6"}
        echoed = await client.call_tool("echo", {"message": "héllo ✓"})
        assert _text(echoed) == "héllo ✓"
        failed = await client.call_tool("test_error_handling", {})
        assert failed.is_error
        many = await asyncio.gather(*(client.call_tool("echo", {"message": str(i)}) for i in range(8)))
        assert [_text(r) for r in many] == [str(i) for i in range(8)]
        assert not errors, errors
        return {"tools": len(names)}
    finally:
        await client.close()


async def progress(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    client, errors = await _open(connect, url, era, **options)
    seen: list[tuple[float, float | None, str | None]] = []
    try:
        result = await client.call_tool(
            "long_running", {"steps": 4, "delay_ms": 10}, progress=lambda p, t, m: seen.append((p, t, m))
        )
        assert _text(result) == "completed 4 steps"
        await _until(lambda: len(seen) == 4, "4 progress notifications")
        assert [p for p, _, _ in seen] == [1, 2, 3, 4]
        assert all(t == 4 for _, t, _ in seen)
        assert not errors, errors
        return {"progress": len(seen)}
    finally:
        await client.close()


async def logging(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    """Log notifications of a tool call reach ``on_log``, filtered by level.

    The call asks for progress: a JSON-response endpoint streams (SSE) only a
    request that asked for progress, and has no other way to deliver its logs.
    """
    logs: list[LoggingMessageNotificationParams] = []
    client, errors = await _open(connect, url, era, on_log=logs.append, **options)
    try:
        await client.set_logging_level("info")
        result = await client.call_tool("log_messages", {"count": 4}, progress=lambda p, t, m: None)
        assert _text(result) == "sent 4 log messages"
        expected = ["info", "warning", "error"]
        if not _can_push(url, era):  # no session holds the level: the server's default (debug) applies
            expected.insert(0, "debug")
        await _until(lambda: len(logs) >= len(expected), f"{len(expected)} log messages")
        assert [m.level for m in logs] == expected, logs
        assert all(m.data.startswith("log message") for m in logs)
        assert not errors, errors
        return {"logs": len(logs)}
    finally:
        await client.close()


async def cancellation(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    client, errors = await _open(connect, url, era, **options)
    seen: list[float] = []
    try:
        task = asyncio.ensure_future(
            client.call_tool("long_running", {"steps": 200, "delay_ms": 50}, progress=lambda p, t, m: seen.append(p))
        )
        await _until(lambda: bool(seen), "first progress")
        task.cancel()
        try:
            await task
            raise AssertionError("the cancelled call returned")
        except asyncio.CancelledError:
            pass
        after = await client.call_tool("echo", {"message": "still alive"})
        assert _text(after) == "still alive"
        count = len(seen)
        await asyncio.sleep(0.3)
        assert len(seen) == count, "progress kept coming for a cancelled request"
        assert not errors, errors
        return {"progress_before_cancel": count}
    finally:
        await client.close()


async def resources(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    updates: list[str] = []
    client, errors = await _open(connect, url, era, on_resource_updated=updates.append, **options)
    try:
        listed = await client.list_resources()
        uris = {r.uri for r in listed.resources}
        assert {"demo://readme", "demo://counter", "test://static-text"} <= uris, uris
        text = await client.read_resource("test://static-text")
        assert text.contents[0].text == "This is the content of the static text resource."  # type: ignore[union-attr]
        templates = await client.list_resource_templates()
        assert any(t.uri_template == "demo://greeting/{name}" for t in templates.resource_templates)
        greeting = await client.read_resource("demo://greeting/Ada")
        assert greeting.contents[0].text == "Hello, Ada!"  # type: ignore[union-attr]
        await client.subscribe("demo://counter")
        assert client.subscriptions == {"demo://counter"}
        if _can_push(url, era):
            await _until(lambda: "demo://counter" in updates, "a resources/updated notification", limit=15)
            first = json.loads(await _read_text(client, "demo://counter"))
            assert first["value"] >= 1
        await client.unsubscribe("demo://counter")
        assert not client.subscriptions
        assert not errors, errors
        return {"updates": len(updates)}
    finally:
        await client.close()


async def _read_text(client: Client, uri: str) -> str:
    result = await client.read_resource(uri)
    return result.contents[0].text  # type: ignore[union-attr,no-any-return]


async def prompts(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    client, errors = await _open(connect, url, era, **options)
    try:
        listed = await client.list_prompts()
        assert "code_review" in {p.name for p in listed.prompts}
        got = await client.get_prompt("code_review", {"code": "x = 1", "language": "python"})
        content = got.messages[0].content
        assert isinstance(content, TextContent) and "python" in content.text and "x = 1" in content.text
        try:
            await client.get_prompt("no_such_prompt")
            raise AssertionError("an unknown prompt was found")
        except MCPError:
            pass
        assert not errors, errors
        return {"prompts": len(listed.prompts)}
    finally:
        await client.close()


async def session_expiry(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    """The server forgets our session (we DELETE it behind the client's back): a new one starts."""
    client, errors = await _open(connect, url, era, **options)
    try:
        transport: Any = client.transport
        old = transport.session_id
        assert old, "a stateful endpoint gives a session id"
        headers = {"Mcp-Session-Id": old, "MCP-Protocol-Version": client.protocol_version or HANDSHAKE}
        response = await transport._http.request("DELETE", url, headers, None)
        await response.aclose()
        assert response.status in (200, 202, 204), response.status
        result = await client.call_tool("echo", {"message": "after expiry"})
        assert _text(result) == "after expiry"
        assert client.session_generation == 1
        assert transport.session_id and transport.session_id != old
        assert [type(e).__name__ for e in errors] in ([], ["SessionExpiredError"]), errors
        return {"old": old[:6], "new": transport.session_id[:6]}
    finally:
        await client.close()


async def sse_resumption(connect: Connect, url: str, era: str, **options: Any) -> dict[str, Any]:
    """The server closes the SSE stream mid-call; the client resumes with Last-Event-ID."""
    client, errors = await _open(connect, url, era, reconnect_delay=0.05, **options)
    try:
        transport: Any = client.transport
        result = await client.call_tool("test_reconnection", {})
        assert _text(result) == "Reconnection test completed successfully"
        assert transport.stats["resumptions"] >= 1, transport.stats
        again = await client.call_tool("echo", {"message": "after resumption"})
        assert _text(again) == "after resumption"
        assert not errors, errors  # a duplicated response would show as "unknown request id"
        return {"resumptions": transport.stats["resumptions"], "last_event_id": transport.stats["last_event_id"]}
    finally:
        await client.close()


def middleware_stack(transport: Any, records: list[Any]) -> Any:
    """The representative middleware stack the suite also runs under: logging, policy, circuit breaker.

    The policy allows everything the suite does (it denies a method nobody calls and limits sizes
    and rates far above what the suite needs), so the scenarios must pass unchanged; ``records``
    gets the logger's records, proving every message went through the stack.
    """
    from pyodide_transport.middleware import CircuitBreakerTransport, LoggingTransport, PolicyTransport, RateLimit

    breaker = CircuitBreakerTransport(transport, failure_threshold=5, cool_down=5.0)
    policy = PolicyTransport(
        breaker,
        deny_methods={"tools/nonexistent"},
        max_message_size=8 * 1024 * 1024,
        rate=RateLimit(per_second=1000.0, burst=500),
    )
    return LoggingTransport(policy, on_record=records.append)


STACKS = ("bare", "middleware")
"""The suite runs over each transport as is, and under :func:`middleware_stack`."""


async def run_stacked(name: str, connect: Connect, url: str, era: str, stack: str, **options: Any) -> dict[str, Any]:
    """Run scenario ``name`` with the transport wrapped in ``stack``; the outcome says what the logger saw."""
    scenario = SUITE.get(name) or globals()[name]
    if stack == "bare":
        return dict(await scenario(connect, url, era, **options))
    records: list[Any] = []

    async def connect_stacked(target: str, **more: Any) -> Client:
        return await connect(target, wrap=lambda t: middleware_stack(t, records), **more)

    outcome = dict(await scenario(connect_stacked, url, era, **options))
    outcome["logged"] = {
        "out": sum(r.direction == "out" for r in records),
        "in": sum(r.direction == "in" for r in records),
    }
    return outcome


SUITE: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "initialize": initialize,
    "tools": tools,
    "progress": progress,
    "logging": logging,
    "cancellation": cancellation,
    "resources": resources,
    "prompts": prompts,
}
"""Scenarios every endpoint x transport must pass."""

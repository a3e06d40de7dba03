"""Client scenarios: plain ``async def`` functions with plain asserts, no pytest.

``test_client.py`` runs them under pytest; the same file (with
``scripted_peer.py`` next to it) runs inside Pyodide, where a driver awaits
each function in ``SCENARIOS``. Timeouts are short (0.05 s) and never asserted
on elapsed time.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    CallToolResult,
    ClientCapabilities,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    EmptyResult,
    Implementation,
    ListRootsResult,
    LoggingMessageNotificationParams,
    PromptReference,
    Root,
    TextContent,
)
from mcp_types.jsonrpc import (
    CONNECTION_CLOSED,
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
    UNSUPPORTED_PROTOCOL_VERSION,
    JSONRPCError,
    JSONRPCResponse,
)
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)

from pyodide_transport.client import Client
from pyodide_transport.errors import (
    ConnectionClosedError,
    HTTPStatusError,
    LegacyServerError,
    LocalProtocolError,
    MCPError,
    RemoteProtocolError,
    RequestTimeoutError,
    SessionExpiredError,
    TransportError,
    UnsupportedProtocolVersionError,
)
from pyodide_transport.memory import InMemoryTransport
from pyodide_transport.messages import TransportMessage, error_response, make_response

try:  # flat layout: pytest's default (rootdir-less) import mode, or Pyodide with both files side by side
    from scripted_peer import NO_REPLY, Ctx, FaultyTransport, PeerError, ScriptedPeer
except ImportError:  # package layout (pytest --import-mode=importlib with __init__.py files)
    from .scripted_peer import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        NO_REPLY,
        Ctx,
        FaultyTransport,
        PeerError,
        ScriptedPeer,
    )

BOTH = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
MODERN = MODERN_PROTOCOL_VERSIONS
HANDSHAKE = HANDSHAKE_PROTOCOL_VERSIONS
INFO = Implementation(name="scenario-client", version="9.9")


class Rig:
    """A connected client, its scripted server, the faulty wire between them and reported errors."""

    def __init__(self, client: Client, peer: ScriptedPeer, wire: FaultyTransport, errors: list[Exception]) -> None:
        self.client = client
        self.peer = peer
        self.wire = wire
        self.errors = errors


@asynccontextmanager
async def rig(
    versions: tuple[str, ...] = BOTH,
    *,
    connect: bool = True,
    send_error: Callable[[TransportMessage], Exception | None] | None = None,
    **client_kwargs: Any,
) -> AsyncIterator[Rig]:
    client_end, server_end = InMemoryTransport.create_pair()
    peer = ScriptedPeer(server_end, versions=versions)
    wire = FaultyTransport(client_end, send_error)
    errors: list[Exception] = []
    client_kwargs.setdefault("client_info", INFO)
    client = Client(wire, on_error=errors.append, **client_kwargs)
    peer.start()
    try:
        if connect:
            await client.connect()
        yield Rig(client, peer, wire, errors)
    finally:
        await client.close()
        await peer.stop()


def _has_len(items: list[Any], n: int) -> bool:
    return len(items) == n


def method_names(peer: ScriptedPeer) -> list[str]:
    return [r.method for r in peer.requests()]


# ------------------------------------------------------------------ negotiation


async def scenario_modern_connect() -> None:
    async with rig(MODERN) as r:
        assert r.client.era == "modern"
        assert r.client.protocol_version == LATEST_MODERN_VERSION
        assert r.client.server_info is not None and r.client.server_info.name == "scripted-peer"
        assert r.client.server_capabilities is not None and r.client.server_capabilities.tools is not None
        assert r.client.instructions == "use the echo tool"
        assert method_names(r.peer) == ["server/discover"]
        assert not r.peer.notifications("notifications/initialized")
        meta = (r.peer.requests("server/discover")[0].params or {})["_meta"]
        assert meta[PROTOCOL_VERSION_META_KEY] == LATEST_MODERN_VERSION
        assert meta[CLIENT_INFO_META_KEY] == {"name": "scenario-client", "version": "9.9"}
        assert meta[CLIENT_CAPABILITIES_META_KEY] == {}


async def scenario_dual_era_server_prefers_modern() -> None:
    async with rig(BOTH) as r:
        assert r.client.era == "modern"
        assert not r.peer.requests("initialize")


async def scenario_fallback_on_method_not_found() -> None:
    async with rig(HANDSHAKE) as r:
        assert r.client.era == "handshake"
        assert r.client.protocol_version == LATEST_HANDSHAKE_VERSION
        assert method_names(r.peer) == ["server/discover", "initialize"]
        init = r.peer.requests("initialize")[0].params or {}
        assert init["protocolVersion"] == LATEST_HANDSHAKE_VERSION
        assert init["clientInfo"] == {"name": "scenario-client", "version": "9.9"}
        assert "_meta" not in init
        await r.peer.wait_for(lambda: r.peer.notifications("notifications/initialized"), "initialized")
        assert r.client.server_info is not None and r.client.server_info.name == "scripted-peer"
        assert r.client.instructions == "use the echo tool"


async def scenario_fallback_on_non_modern_error() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def refuse(ctx: Ctx) -> Any:
            raise PeerError(INVALID_REQUEST, "Bad Request: Server not initialized")

        r.peer.handlers["server/discover"] = refuse
        await r.client.connect()
        assert r.client.era == "handshake"


async def scenario_fallback_on_http_status() -> None:
    for status in (400, 404, 405):

        def reject(message: TransportMessage, status: int = status) -> Exception | None:
            if getattr(message, "method", None) == "server/discover":
                return LegacyServerError(status, body="not an MCP 2026 server")
            return None

        async with rig(HANDSHAKE, send_error=reject) as r:
            assert r.client.era == "handshake", status
            assert method_names(r.peer) == ["initialize"]


async def scenario_other_http_status_propagates() -> None:
    def reject(message: TransportMessage) -> Exception | None:
        return HTTPStatusError(500) if getattr(message, "method", None) == "server/discover" else None

    async with rig(HANDSHAKE, connect=False, send_error=reject) as r:
        try:
            await r.client.connect()
        except HTTPStatusError as exc:
            assert exc.status == 500
        else:
            raise AssertionError("HTTP 500 must not fall back")


async def scenario_fallback_on_unsupported_version_listing_handshake_only() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def old(ctx: Ctx) -> Any:
            raise PeerError(
                UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
                {"supported": ["2025-06-18"], "requested": LATEST_MODERN_VERSION},
            )

        r.peer.handlers["server/discover"] = old
        await r.client.connect()
        assert r.client.era == "handshake"


async def scenario_unsupported_modern_only_server_raises() -> None:
    async with rig(MODERN, connect=False) as r:

        async def future_only(ctx: Ctx) -> Any:
            raise PeerError(
                UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
                {"supported": ["2099-01-01"], "requested": LATEST_MODERN_VERSION},
            )

        r.peer.handlers["server/discover"] = future_only
        try:
            await r.client.connect()
        except UnsupportedProtocolVersionError as exc:
            assert exc.supported == ("2099-01-01",)
        else:
            raise AssertionError("expected UnsupportedProtocolVersionError")
        assert not r.peer.requests("initialize")


async def scenario_modern_error_does_not_fall_back() -> None:
    async with rig(MODERN, connect=False) as r:

        async def mismatch(ctx: Ctx) -> Any:
            raise PeerError(HEADER_MISMATCH, "header mismatch")

        r.peer.handlers["server/discover"] = mismatch
        try:
            await r.client.connect()
        except MCPError as exc:
            assert exc.code == HEADER_MISMATCH
        else:
            raise AssertionError("expected MCPError")
        assert not r.peer.requests("initialize")


async def scenario_discover_listing_only_handshake_versions_falls_back() -> None:
    async with rig(("2025-06-18",), connect=False) as r:

        async def legacy_discover(ctx: Ctx) -> Any:
            return {"supportedVersions": ["2025-06-18"], "capabilities": {}, "ttlMs": 0, "cacheScope": "private"}

        r.peer.handlers["server/discover"] = legacy_discover
        await r.client.connect()
        assert r.client.era == "handshake"
        assert r.client.protocol_version == "2025-06-18"


async def scenario_invalid_discover_result_falls_back() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def junk(ctx: Ctx) -> Any:
            return {"hello": "world"}

        r.peer.handlers["server/discover"] = junk
        await r.client.connect()
        assert r.client.era == "handshake"


async def scenario_every_handshake_version_is_accepted() -> None:
    for version in HANDSHAKE_PROTOCOL_VERSIONS:
        async with rig((version,)) as r:
            assert r.client.era == "handshake"
            assert r.client.protocol_version == version
            assert (r.peer.requests("initialize")[0].params or {})["protocolVersion"] == LATEST_HANDSHAKE_VERSION
            assert isinstance(await r.client.list_tools(), object)


async def scenario_unknown_counter_version_raises() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def weird(ctx: Ctx) -> Any:
            return {"protocolVersion": "1999-01-01", "capabilities": {}, "serverInfo": {"name": "x", "version": "1"}}

        r.peer.handlers["initialize"] = weird
        try:
            await r.client.connect()
        except UnsupportedProtocolVersionError as exc:
            assert exc.supported == ("1999-01-01",)
        else:
            raise AssertionError("expected UnsupportedProtocolVersionError")


async def scenario_pinned_handshake_version_skips_discover() -> None:
    async with rig(BOTH, protocol_version="2025-03-26") as r:
        assert method_names(r.peer) == ["initialize"]
        assert (r.peer.requests("initialize")[0].params or {})["protocolVersion"] == "2025-03-26"
        assert r.client.protocol_version == "2025-03-26"
        assert r.client.era == "handshake"


async def scenario_pinned_handshake_version_must_match() -> None:
    async with rig(("2025-11-25",), connect=False, protocol_version="2024-11-05") as r:
        try:
            await r.client.connect()
        except UnsupportedProtocolVersionError:
            pass
        else:
            raise AssertionError("a pinned version must be honoured exactly")


async def scenario_pinned_modern_version_does_not_fall_back() -> None:
    async with rig(HANDSHAKE, connect=False, protocol_version=LATEST_MODERN_VERSION) as r:
        try:
            await r.client.connect()
        except MCPError as exc:
            assert exc.code == METHOD_NOT_FOUND
        else:
            raise AssertionError("expected MCPError")
        assert not r.peer.requests("initialize")


async def scenario_unknown_pinned_version_is_refused() -> None:
    client_end, _ = InMemoryTransport.create_pair()
    try:
        Client(client_end, protocol_version="2000-01-01")
    except LocalProtocolError as exc:
        assert "2000-01-01" in str(exc)
    else:
        raise AssertionError("expected LocalProtocolError")
    assert "2000-01-01" not in KNOWN_PROTOCOL_VERSIONS


async def scenario_connect_failure_closes_transport_in_context_manager() -> None:
    client_end, server_end = InMemoryTransport.create_pair()
    peer = ScriptedPeer(server_end, versions=HANDSHAKE)

    async def broken(ctx: Ctx) -> Any:
        raise PeerError(INTERNAL_ERROR, "boom")

    peer.handlers["initialize"] = broken
    peer.start()
    try:
        async with Client(client_end):
            raise AssertionError("connect must fail")
    except MCPError as exc:
        assert exc.code == INTERNAL_ERROR
    assert not client_end.is_connected()
    await peer.stop()


# ---------------------------------------------------------------- methods


async def _exercise_methods(versions: tuple[str, ...]) -> Rig:
    async with rig(versions) as r:
        c = r.client
        tools = await c.list_tools()
        assert [t.name for t in tools.tools] == ["echo", "add", "slow"]
        assert tools.next_cursor is None
        first = await c.list_tools(paginate=False)
        assert [t.name for t in first.tools] == ["echo", "add"] and first.next_cursor == "2"
        second = await c.list_tools(first.next_cursor, paginate=False)
        assert [t.name for t in second.tools] == ["slow"] and second.next_cursor is None
        assert [t.name async for t in c.iter_tools()] == ["echo", "add", "slow"]

        result = await c.call_tool("add", {"a": 1, "b": 2})
        assert isinstance(result, CallToolResult)
        assert isinstance(result.content[0], TextContent)
        assert result.content[0].text == "add:[('a', 1), ('b', 2)]"
        assert result.structured_content == {"a": 1, "b": 2}
        assert (await c.call_tool("echo")).content[0].text == "echo:[]"  # type: ignore[union-attr]

        resources = await c.list_resources()
        assert [x.uri for x in resources.resources] == ["file:///a", "file:///b", "file:///c"]
        assert [x.uri async for x in c.iter_resources()] == ["file:///a", "file:///b", "file:///c"]
        read = await c.read_resource("file:///b")
        assert read.contents[0].uri == "file:///b"
        templates = await c.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "file:///{name}"
        assert len([t async for t in c.iter_resource_templates()]) == 1

        prompts = await c.list_prompts()
        assert [p.name for p in prompts.prompts] == ["greet", "summarize", "translate"]
        assert [p.name async for p in c.iter_prompts()] == ["greet", "summarize", "translate"]
        prompt = await c.get_prompt("greet", {"who": "Ada"})
        assert prompt.messages[0].content == TextContent(type="text", text="greet Ada")

        done = await c.complete(PromptReference(type="ref/prompt", name="greet"), "who", "A", {"lang": "en"})
        assert done.completion.values == ["A1", "A2", "ctx=lang"]
        call = r.peer.requests("completion/complete")[-1].params or {}
        assert call["ref"] == {"type": "ref/prompt", "name": "greet"}
        assert call["argument"] == {"name": "who", "value": "A"}
        assert call["context"] == {"arguments": {"lang": "en"}}

        await c.set_logging_level("warning")
        await c.subscribe("file:///a")
        assert c.subscriptions == frozenset({"file:///a"})
        await c.ping()
        raw = await c.request("tools/call", {"name": "echo", "arguments": {"x": 1}})
        assert raw["content"][0]["text"] == "echo:[('x', 1)]"
        typed = await c.request("ping" if c.era == "handshake" else "server/discover", None, EmptyResult)
        assert isinstance(typed, EmptyResult)
        await c.notify("notifications/roots/list_changed")
        await r.peer.wait_for(lambda: r.peer.notifications("notifications/roots/list_changed"), "notify")
        await c.unsubscribe("file:///a")
        assert c.subscriptions == frozenset()
        return r


async def scenario_methods_handshake_era() -> None:
    r = await _exercise_methods(HANDSHAKE)
    names = method_names(r.peer)
    for method in ("logging/setLevel", "resources/subscribe", "resources/unsubscribe", "ping"):
        assert method in names, method
    assert (r.peer.requests("logging/setLevel")[0].params or {}) == {"level": "warning"}
    assert "subscriptions/listen" not in names
    for request in r.peer.requests()[1:]:  # after the server/discover probe
        assert PROTOCOL_VERSION_META_KEY not in ((request.params or {}).get("_meta") or {})


async def scenario_methods_modern_era() -> None:
    r = await _exercise_methods(MODERN)
    names = method_names(r.peer)
    for removed in ("initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"):
        assert removed not in names, removed
    for request in r.peer.requests():
        meta = (request.params or {})["_meta"]
        assert meta[PROTOCOL_VERSION_META_KEY] == LATEST_MODERN_VERSION
        assert meta[CLIENT_INFO_META_KEY]["name"] == "scenario-client"
        assert CLIENT_CAPABILITIES_META_KEY in meta
    # the log level rides in _meta after set_logging_level
    after = r.peer.requests("server/discover")[-1].params or {}
    assert after["_meta"][LOG_LEVEL_META_KEY] == "warning"
    listens = r.peer.requests("subscriptions/listen")
    assert listens and (listens[0].params or {})["notifications"] == {"resourceSubscriptions": ["file:///a"]}
    # unsubscribing the last URI closes the stream: the server is told to cancel it
    cancelled = [(n.params or {}).get("requestId") for n in r.peer.notifications("notifications/cancelled")]
    assert listens[-1].id in cancelled


async def scenario_tools_with_invalid_param_headers_are_left_out() -> None:
    """SEP-2243: a tool whose x-mcp-header annotations are invalid is not offered; the others are."""
    async with rig(MODERN, connect=False) as r:

        async def listing(ctx: Ctx) -> Any:
            bad = {"properties": {"data": {"type": "object", "x-mcp-header": "Data"}}}
            good = {"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}
            return {"tools": [{"name": "bad", "inputSchema": bad}, {"name": "good", "inputSchema": good}]}

        r.peer.handlers["tools/list"] = listing
        await r.client.connect()
        assert [t.name for t in (await r.client.list_tools()).tools] == ["good"]
        assert [t.name async for t in r.client.iter_tools()] == ["good"]
        assert any("'bad' left out" in str(e) for e in r.errors)


async def scenario_pagination_loop_is_detected() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def loop(ctx: Ctx) -> Any:
            return {"tools": [{"name": "t", "inputSchema": {"type": "object"}}], "nextCursor": "same"}

        r.peer.handlers["tools/list"] = loop
        await r.client.connect()
        try:
            await r.client.list_tools()
        except RemoteProtocolError as exc:
            assert "same" in str(exc)
        else:
            raise AssertionError("expected RemoteProtocolError")


async def scenario_invalid_result_is_a_remote_protocol_error() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def bad(ctx: Ctx) -> Any:
            return {"tools": "not a list"}

        r.peer.handlers["tools/list"] = bad
        await r.client.connect()
        try:
            await r.client.list_tools()
        except RemoteProtocolError as exc:
            assert "tools/list" in str(exc)
        else:
            raise AssertionError("expected RemoteProtocolError")
        await r.client.ping()


# ----------------------------------------------------- progress and timeouts


async def scenario_progress_callback() -> None:
    for versions in (HANDSHAKE, MODERN):
        async with rig(versions, connect=False) as r:

            async def slow(ctx: Ctx) -> Any:
                for step in (1, 2, 3):
                    await ctx.progress(step, 3, f"step {step}")
                return CallToolResult(content=[TextContent(type="text", text="done")])

            r.peer.handlers["tools/call"] = slow
            await r.client.connect()
            seen: list[tuple[float, float | None, str | None]] = []

            async def on_progress(
                progress: float, total: float | None, message: str | None, seen: list[Any] = seen
            ) -> None:
                seen.append((progress, total, message))

            result = await r.client.call_tool("slow", progress=on_progress)
            assert result.content[0].text == "done"  # type: ignore[union-attr]
            await r.peer.wait_for(functools.partial(_has_len, seen, 3), "progress callbacks")
            assert seen == [(1.0, 3.0, "step 1"), (2.0, 3.0, "step 2"), (3.0, 3.0, "step 3")]
            request = r.peer.requests("tools/call")[0]
            assert (request.params or {})["_meta"]["progressToken"] == request.id


async def scenario_timeout_sends_cancelled() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def silent(ctx: Ctx) -> Any:
            return NO_REPLY

        r.peer.handlers["tools/call"] = silent
        await r.client.connect()
        try:
            await r.client.call_tool("slow", timeout=0.05)
        except RequestTimeoutError as exc:
            assert "tools/call" in str(exc)
        else:
            raise AssertionError("expected RequestTimeoutError")
        request_id = r.peer.requests("tools/call")[0].id
        await r.peer.wait_for(lambda: r.peer.notifications("notifications/cancelled"), "cancelled")
        params = r.peer.notifications("notifications/cancelled")[0].params or {}
        assert params["requestId"] == request_id
        assert params["reason"]
        # a late answer for the timed-out request is dropped quietly
        await r.peer.send(make_response(request_id, {"content": []}))
        await r.client.ping()
        assert not r.errors


async def scenario_client_default_timeout() -> None:
    async with rig(HANDSHAKE, connect=False, request_timeout=0.05) as r:

        async def silent(ctx: Ctx) -> Any:
            return NO_REPLY

        r.peer.handlers["prompts/get"] = silent
        await r.client.connect()
        try:
            await r.client.get_prompt("greet")
        except RequestTimeoutError:
            pass
        else:
            raise AssertionError("expected RequestTimeoutError")


async def scenario_progress_resets_timeout() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def chatty(ctx: Ctx) -> Any:
            for step in range(8):  # 8 x 0.04 s: longer than the 0.2 s timeout, each gap far shorter
                await asyncio.sleep(0.04)
                await ctx.progress(step)
            return CallToolResult(content=[TextContent(type="text", text="finished")])

        r.peer.handlers["tools/call"] = chatty
        await r.client.connect()
        steps: list[float] = []
        result = await r.client.call_tool("slow", progress=lambda p, t, m: steps.append(p), timeout=0.2)
        assert result.content[0].text == "finished"  # type: ignore[union-attr]


async def scenario_max_total_timeout() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def endless(ctx: Ctx) -> Any:
            for step in range(500):  # bounded: ~10 s at most
                await asyncio.sleep(0.02)
                await ctx.progress(step)
            return NO_REPLY

        r.peer.handlers["tools/call"] = endless
        await r.client.connect()
        try:
            await r.client.call_tool("slow", progress=lambda p, t, m: None, timeout=5.0, max_total_timeout=0.1)
        except RequestTimeoutError as exc:
            assert "total" in str(exc)
        else:
            raise AssertionError("expected RequestTimeoutError")
        await r.peer.wait_for(lambda: r.peer.notifications("notifications/cancelled"), "cancelled")


async def scenario_cancel_sends_cancelled() -> None:
    for versions in (HANDSHAKE, MODERN):
        async with rig(versions, connect=False) as r:

            async def silent(ctx: Ctx) -> Any:
                return NO_REPLY

            r.peer.handlers["tools/call"] = silent
            await r.client.connect()
            task = asyncio.ensure_future(r.client.call_tool("slow"))
            await r.peer.wait_for(lambda: r.peer.requests("tools/call"), "tools/call")
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            else:
                raise AssertionError("expected CancelledError")
            await r.peer.wait_for(lambda: r.peer.notifications("notifications/cancelled"), "cancelled")
            params = r.peer.notifications("notifications/cancelled")[0].params or {}
            assert params["requestId"] == r.peer.requests("tools/call")[0].id
            assert not r.client._core.pending()
            await r.client.list_tools()


# ------------------------------------------------------ malformed / errors


async def scenario_malformed_message_keeps_reader_alive() -> None:
    async with rig(HANDSHAKE) as r:
        r.wire.inject(RemoteProtocolError("invalid JSON: Expecting value"))
        await r.peer.wait_for(lambda: r.errors, "error report")
        assert isinstance(r.errors[0], RemoteProtocolError)
        await r.client.ping()
        assert r.client.is_connected()


async def scenario_unknown_response_id_is_reported() -> None:
    async with rig(HANDSHAKE) as r:
        await r.peer.send(make_response(4242, {}))
        await r.peer.send(error_response(None, -32700, "Parse error"))
        await r.peer.wait_for(lambda: len(r.errors) == 2, "two error reports")
        assert "4242" in str(r.errors[0])
        assert "Parse error" in str(r.errors[1])
        assert len((await r.client.list_tools()).tools) == 3


async def scenario_server_error_raises_mcp_error() -> None:
    async with rig(HANDSHAKE) as r:
        try:
            await r.client.call_tool("nope", {"x": 1})
        except MCPError as exc:
            assert exc.code == -32602
            assert exc.error_message == "Unknown tool: nope"
            assert exc.data == {"tool": "nope"}
        else:
            raise AssertionError("expected MCPError")
        await r.client.ping()


async def scenario_transport_failures_fail_only_their_requests() -> None:
    """A failure the transport raises from receive() with request ids fails exactly those requests, as is."""
    failures: list[TransportError] = [
        ConnectionClosedError("the WebSocket closed (code 1011)", code=1011, reason="bug"),
        RequestTimeoutError("the gateway gave up"),
    ]
    for failure in failures:
        async with rig(HANDSHAKE, connect=False) as r:

            async def silent(ctx: Ctx) -> Any:
                return NO_REPLY

            r.peer.handlers["tools/call"] = silent
            await r.client.connect()
            call = asyncio.ensure_future(r.client.call_tool("echo", timeout=None))
            await r.peer.wait_for(lambda: r.peer.requests("tools/call"), "tools/call")
            r.wire.inject(failure.losing((r.peer.requests("tools/call")[0].id,)))
            try:
                await call
            except TransportError as exc:
                assert exc is failure  # type and attributes (e.g. the close code) intact
            else:
                raise AssertionError(f"expected {type(failure).__name__}")
            await r.client.ping()  # one lost request does not break the session
            assert r.client.is_connected() and not r.errors


async def scenario_modern_lost_answers_are_reissued_only_when_safe() -> None:
    """2026-07-28 cannot resume a stream: reads and read-only/idempotent tools are sent again, once."""
    async with rig(MODERN, connect=False) as r:
        calls: dict[str, int] = {}

        async def listing(ctx: Ctx) -> Any:
            return {
                "tools": [
                    {"name": "reader", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}},
                    {"name": "writer", "inputSchema": {"type": "object"}},
                ]
            }

        async def first_one_lost(ctx: Ctx) -> Any:
            name = ctx.params["name"]
            calls[name] = calls.get(name, 0) + 1
            if calls[name] == 1:
                r.wire.inject(
                    ConnectionClosedError("the SSE stream broke; 2026-07-28 cannot resume").losing((ctx.request.id,))
                )
                return NO_REPLY
            return CallToolResult(content=[TextContent(type="text", text=f"{name} done")])

        r.peer.handlers["tools/list"] = listing
        r.peer.handlers["tools/call"] = first_one_lost
        await r.client.connect()
        await r.client.list_tools()
        result = await r.client.call_tool("reader", timeout=5)
        assert result.content[0].text == "reader done"  # type: ignore[union-attr]
        ids = [q.id for q in r.peer.requests("tools/call") if (q.params or {}).get("name") == "reader"]
        assert len(ids) == 2 and ids[0] != ids[1]  # sent again, with a new id
        try:
            await r.client.call_tool("writer", timeout=5)
        except ConnectionClosedError as exc:
            assert "may or may not have run" in str(exc)
        else:
            raise AssertionError("a tool that could change something must not be sent again")
        assert calls["writer"] == 1


async def scenario_server_errors_in_the_reserved_range_stay_mcp_errors() -> None:
    """-32000/-32001 from a server are its own errors, not transport failures in disguise."""
    for code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
        async with rig(HANDSHAKE, connect=False) as r:

            async def failing(ctx: Ctx, code: int = code) -> Any:
                raise PeerError(code, "server says no")

            r.peer.handlers["tools/call"] = failing
            await r.client.connect()
            try:
                await r.client.call_tool("echo")
            except MCPError as exc:
                assert exc.code == code
            else:
                raise AssertionError("expected MCPError")
            await r.client.ping()


async def scenario_request_before_connect_and_after_close() -> None:
    async with rig(HANDSHAKE, connect=False) as r:
        try:
            await r.client.list_tools()
        except LocalProtocolError:
            pass
        else:
            raise AssertionError("expected LocalProtocolError before connect")
        await r.client.connect()
        try:
            await r.client.connect()
        except LocalProtocolError:
            pass
        else:
            raise AssertionError("connect twice must fail")
        await r.client.close()
        await r.client.close()
        assert not r.client.is_connected()
        try:
            await r.client.ping()
        except ConnectionClosedError:
            pass
        else:
            raise AssertionError("expected ConnectionClosedError after close")


async def scenario_connection_closed_fails_pending() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def silent(ctx: Ctx) -> Any:
            return NO_REPLY

        r.peer.handlers["tools/call"] = silent
        await r.client.connect()
        calls = [asyncio.ensure_future(r.client.call_tool("slow", timeout=None)) for _ in range(3)]
        await r.peer.wait_for(lambda: len(r.peer.requests("tools/call")) == 3, "three calls")
        gathered = asyncio.gather(*calls, return_exceptions=True)
        await r.peer.transport.close()
        outcomes = await gathered
        assert all(isinstance(o, ConnectionClosedError) for o in outcomes), outcomes
        assert not r.client.is_connected()
        try:
            await r.client.ping()
        except ConnectionClosedError:
            pass
        else:
            raise AssertionError("expected ConnectionClosedError after the connection closed")


# -------------------------------------------------------- notifications


async def scenario_notification_handlers() -> None:
    logs: list[LoggingMessageNotificationParams] = []
    changed: list[str] = []
    updated: list[str] = []
    for versions in (HANDSHAKE, MODERN):
        logs.clear()
        changed.clear()
        updated.clear()
        async with rig(
            versions,
            on_log=logs.append,
            on_tools_list_changed=lambda: changed.append("tools"),
            on_resources_list_changed=lambda: changed.append("resources"),
            on_prompts_list_changed=lambda: changed.append("prompts"),
            on_resource_updated=updated.append,
        ) as r:
            await r.peer.notify("notifications/message", {"level": "info", "logger": "srv", "data": {"n": 1}})
            await r.peer.notify("notifications/tools/list_changed")
            await r.peer.notify("notifications/resources/list_changed")
            await r.peer.notify("notifications/prompts/list_changed")
            await r.peer.notify("notifications/resources/updated", {"uri": "file:///a"})
            await r.peer.notify("notifications/something/else", {})
            await r.peer.wait_for(lambda: len(updated) == 1, "resource updated")
            assert logs[0].level == "info" and logs[0].logger == "srv" and logs[0].data == {"n": 1}
            assert changed == ["tools", "resources", "prompts"]
            assert updated == ["file:///a"]
            assert not r.errors
            if versions == MODERN:  # list-changed handlers open a subscriptions/listen stream
                listen = r.peer.requests("subscriptions/listen")[0].params or {}
                assert listen["notifications"] == {
                    "toolsListChanged": True,
                    "promptsListChanged": True,
                    "resourcesListChanged": True,
                }


async def scenario_handler_may_call_client_and_errors_are_reported() -> None:
    listed: list[int] = []

    async def refresh() -> None:
        listed.append(len((await r.client.list_tools()).tools))

    def broken(params: LoggingMessageNotificationParams) -> None:
        raise ValueError("handler bug")

    async with rig(HANDSHAKE, on_tools_list_changed=refresh, on_log=broken) as r:
        await r.peer.notify("notifications/message", {"level": "info", "data": "x"})
        await r.peer.notify("notifications/tools/list_changed")
        await r.peer.wait_for(lambda: listed, "handler called the client")
        assert listed == [3]
        assert any(isinstance(e, ValueError) for e in r.errors)


async def scenario_handlers_are_settable_attributes() -> None:
    changed: list[str] = []
    async with rig(HANDSHAKE) as r:
        await r.peer.notify("notifications/tools/list_changed")  # no handler yet: ignored
        await r.client.ping()
        r.client.on_tools_list_changed = lambda: changed.append("tools")
        await r.peer.notify("notifications/tools/list_changed")
        await r.peer.wait_for(lambda: changed, "handler set after connect")
        assert changed == ["tools"]
        assert not r.errors


async def scenario_modern_subscriptions_reopen_listen() -> None:
    updated: list[str] = []
    async with rig(MODERN, on_resource_updated=updated.append) as r:
        assert not r.peer.requests("subscriptions/listen")  # nothing to listen for yet
        await r.client.subscribe("file:///a")
        await r.client.subscribe("file:///b")
        await r.peer.wait_for(lambda: len(r.peer.requests("subscriptions/listen")) == 2, "second listen")
        listens = r.peer.requests("subscriptions/listen")
        assert [(q.params or {})["notifications"] for q in listens] == [
            {"resourceSubscriptions": ["file:///a"]},
            {"resourceSubscriptions": ["file:///a", "file:///b"]},
        ]
        await r.peer.wait_for(lambda: r.peer.notifications("notifications/cancelled"), "old stream cancelled")
        assert (r.peer.notifications("notifications/cancelled")[0].params or {})["requestId"] == listens[0].id
        await r.peer.notify("notifications/resources/updated", {"uri": "file:///b"})
        await r.peer.wait_for(lambda: updated, "resource updated")
        assert updated == ["file:///b"]
        r.client.on_prompts_list_changed = lambda: None
        await r.client.update_subscriptions()
        await r.peer.wait_for(lambda: len(r.peer.requests("subscriptions/listen")) == 3, "third listen")
        latest = r.peer.requests("subscriptions/listen")[-1].params or {}
        assert latest["notifications"] == {
            "promptsListChanged": True,
            "resourceSubscriptions": ["file:///a", "file:///b"],
        }
        await r.client.close()
        cancelled = {(n.params or {}).get("requestId") for n in r.peer.notifications("notifications/cancelled")}
        assert r.peer.requests("subscriptions/listen")[-1].id in cancelled  # close ends the stream politely


async def scenario_listen_refused_is_reported() -> None:
    async with rig(MODERN, connect=False, on_tools_list_changed=lambda: None) as r:
        del r.peer.handlers["subscriptions/listen"]
        await r.client.connect()
        await r.peer.wait_for(lambda: r.errors, "listen failure reported")
        assert isinstance(r.errors[0], MCPError) and r.errors[0].code == METHOD_NOT_FOUND
        await r.client.list_tools()


# -------------------------------------------------- server -> client


async def _roots() -> ListRootsResult:
    return ListRootsResult(roots=[Root(uri="file:///home/user", name="home")])


async def _sample(params: CreateMessageRequestParams) -> CreateMessageResult:
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text=f"max {params.max_tokens}"), model="m"
    )


async def _elicit(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
    return ElicitResult(action="accept", content={"answer": params.message})


SAMPLING_PARAMS = {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}], "maxTokens": 7}
ELICIT_PARAMS = {"message": "name?", "requestedSchema": {"type": "object", "properties": {}}}


async def scenario_server_requests_with_handlers() -> None:
    async with rig(HANDSHAKE, roots_handler=_roots, sampling_handler=_sample, elicitation_handler=_elicit) as r:
        caps = (r.peer.requests("initialize")[0].params or {})["capabilities"]
        assert set(caps) == {"roots", "sampling", "elicitation"}
        roots = await r.peer.ask("roots/list")
        assert isinstance(roots, JSONRPCResponse)
        assert roots.result["roots"] == [{"uri": "file:///home/user", "name": "home"}]
        sampled = await r.peer.ask("sampling/createMessage", SAMPLING_PARAMS)
        assert isinstance(sampled, JSONRPCResponse) and sampled.result["content"]["text"] == "max 7"
        elicited = await r.peer.ask("elicitation/create", ELICIT_PARAMS)
        assert isinstance(elicited, JSONRPCResponse)
        assert elicited.result == {"action": "accept", "content": {"answer": "name?"}}
        pong = await r.peer.ask("ping")
        assert isinstance(pong, JSONRPCResponse) and pong.result == {}
        bad = await r.peer.ask("sampling/createMessage", {"messages": "nope"})
        assert isinstance(bad, JSONRPCError) and bad.error.code == -32602


async def scenario_server_requests_without_handlers() -> None:
    async with rig(HANDSHAKE, capabilities=ClientCapabilities(sampling={})) as r:
        caps = (r.peer.requests("initialize")[0].params or {})["capabilities"]
        assert caps == {}  # no handler, no capability, even when asked for
        for method in ("roots/list", "sampling/createMessage", "elicitation/create", "unknown/thing"):
            reply = await r.peer.ask(method, {})
            assert isinstance(reply, JSONRPCError) and reply.error.code == METHOD_NOT_FOUND, method
        pong = await r.peer.ask("ping")
        assert isinstance(pong, JSONRPCResponse)


async def scenario_server_request_handler_failures() -> None:
    async def refuse(params: CreateMessageRequestParams) -> CreateMessageResult:
        raise MCPError(-1, "user declined", {"why": "no"})

    async def crash() -> ListRootsResult:
        raise RuntimeError("roots exploded")

    async with rig(HANDSHAKE, sampling_handler=refuse, roots_handler=crash) as r:
        declined = await r.peer.ask("sampling/createMessage", SAMPLING_PARAMS)
        assert isinstance(declined, JSONRPCError)
        assert (declined.error.code, declined.error.message, declined.error.data) == (
            -1,
            "user declined",
            {"why": "no"},
        )
        crashed = await r.peer.ask("roots/list")
        assert isinstance(crashed, JSONRPCError) and crashed.error.code == INTERNAL_ERROR
        assert any(isinstance(e, RuntimeError) for e in r.errors)


async def scenario_server_cancels_its_request() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("not reached")

    async with rig(HANDSHAKE, elicitation_handler=forever) as r:
        ask = asyncio.ensure_future(r.peer.ask("elicitation/create", ELICIT_PARAMS))
        await asyncio.wait_for(started.wait(), 5)
        await r.peer.notify("notifications/cancelled", {"requestId": "s-1", "reason": "gone"})
        await asyncio.wait_for(cancelled.wait(), 5)
        await r.client.ping()
        assert not ask.done()  # no response is sent for a cancelled request
        ask.cancel()


async def scenario_input_required_results() -> None:
    async with rig(
        MODERN, connect=False, roots_handler=_roots, sampling_handler=_sample, elicitation_handler=_elicit
    ) as r:
        rounds: list[dict[str, Any]] = []

        async def interactive(ctx: Ctx) -> Any:
            rounds.append(ctx.params)
            if len(rounds) == 1:
                return {
                    "resultType": "input_required",
                    "inputRequests": {
                        "who": {"method": "elicitation/create", "params": ELICIT_PARAMS},
                        "llm": {"method": "sampling/createMessage", "params": SAMPLING_PARAMS},
                        "where": {"method": "roots/list"},
                    },
                    "requestState": "state-1",
                }
            if len(rounds) == 2:
                return {"resultType": "input_required", "requestState": "state-2"}  # state only: retry later
            return CallToolResult(content=[TextContent(type="text", text="thanks")])

        r.peer.handlers["tools/call"] = interactive
        await r.client.connect()
        caps = (r.peer.requests("server/discover")[0].params or {})["_meta"][CLIENT_CAPABILITIES_META_KEY]
        assert set(caps) == {"roots", "sampling", "elicitation"}
        result = await r.client.call_tool("echo", {"q": 1})
        assert result.content[0].text == "thanks"  # type: ignore[union-attr]
        assert len(rounds) == 3
        second = rounds[1]
        assert second["arguments"] == {"q": 1} and second["requestState"] == "state-1"
        responses = second["inputResponses"]
        assert responses["who"] == {"action": "accept", "content": {"answer": "name?"}}
        assert responses["llm"]["content"]["text"] == "max 7"
        assert responses["where"]["roots"][0]["uri"] == "file:///home/user"
        third = rounds[2]
        assert third["requestState"] == "state-2" and "inputResponses" not in third
        ids = [q.id for q in r.peer.requests("tools/call")]
        assert len(set(ids)) == 3  # every retry is a new request


async def scenario_input_required_without_handler() -> None:
    async with rig(MODERN, connect=False) as r:

        async def needs_sampling(ctx: Ctx) -> Any:
            return {
                "resultType": "input_required",
                "inputRequests": {"llm": {"method": "sampling/createMessage", "params": SAMPLING_PARAMS}},
            }

        r.peer.handlers["prompts/get"] = needs_sampling
        await r.client.connect()
        try:
            await r.client.get_prompt("greet")
        except MCPError as exc:
            assert exc.code == METHOD_NOT_FOUND
        else:
            raise AssertionError("expected MCPError")


async def scenario_input_required_round_limit() -> None:
    async with rig(MODERN, connect=False, elicitation_handler=_elicit) as r:

        async def insatiable(ctx: Ctx) -> Any:
            return {
                "resultType": "input_required",
                "inputRequests": {"who": {"method": "elicitation/create", "params": ELICIT_PARAMS}},
            }

        r.peer.handlers["resources/read"] = insatiable
        await r.client.connect()
        try:
            await r.client.read_resource("file:///a")
        except RemoteProtocolError as exc:
            assert "input" in str(exc)
        else:
            raise AssertionError("expected RemoteProtocolError")


# --------------------------------------------------------- session expiry


async def scenario_session_expiry_reinitializes_and_resends() -> None:
    async with rig(HANDSHAKE) as r:
        await r.client.set_logging_level("debug")
        await r.client.subscribe("file:///a")
        await r.client.subscribe("file:///b")
        r.wire.expire_session()
        tools = await r.client.list_tools()
        assert len(tools.tools) == 3
        assert r.client.session_generation == 1
        assert r.wire.expired_sends == 1
        assert len(r.peer.requests("initialize")) == 2
        second_init = r.peer.requests("initialize")[1].params or {}
        assert second_init["clientInfo"] == {"name": "scenario-client", "version": "9.9"}
        await r.peer.wait_for(lambda: len(r.peer.notifications("notifications/initialized")) == 2, "initialized x2")
        assert [(q.params or {})["level"] for q in r.peer.requests("logging/setLevel")] == ["debug", "debug"]
        subscribed = [(q.params or {})["uri"] for q in r.peer.requests("resources/subscribe")]
        assert subscribed == ["file:///a", "file:///b", "file:///a", "file:///b"]
        names = method_names(r.peer)
        assert names.index("tools/list") > names.index("initialize", 1)  # re-sent after the new handshake


async def scenario_concurrent_expiries_reinitialize_once() -> None:
    async with rig(HANDSHAKE) as r:
        r.wire.expire_session()
        tools, prompts, _ = await asyncio.gather(r.client.list_tools(), r.client.list_prompts(), r.client.ping())
        assert len(tools.tools) == 3 and len(prompts.prompts) == 3
        assert r.wire.expired_sends >= 2
        assert len(r.peer.requests("initialize")) == 2
        assert r.client.session_generation == 1
        r.wire.expire_session()
        await r.client.ping()
        assert len(r.peer.requests("initialize")) == 3
        assert r.client.session_generation == 2


async def scenario_session_expiry_during_receive_fails_in_flight() -> None:
    async with rig(HANDSHAKE, connect=False) as r:

        async def silent(ctx: Ctx) -> Any:
            return NO_REPLY

        r.peer.handlers["tools/call"] = silent
        await r.client.connect()
        call = asyncio.ensure_future(r.client.call_tool("slow", timeout=None))
        await r.peer.wait_for(lambda: r.peer.requests("tools/call"), "tools/call")
        r.wire.inject(SessionExpiredError("GET stream got 404"))
        try:
            await call
        except SessionExpiredError:
            pass
        else:
            raise AssertionError("expected SessionExpiredError")
        assert len(r.peer.requests("initialize")) == 1  # not re-sent: it may have run


async def scenario_session_expiry_in_modern_era_propagates() -> None:
    async with rig(MODERN) as r:
        r.wire.expire_session()
        try:
            await r.client.list_tools()
        except SessionExpiredError:
            pass
        else:
            raise AssertionError("the modern era has no session to re-establish")


async def scenario_failed_reinitialize_fails_the_request() -> None:
    async with rig(HANDSHAKE) as r:

        async def gone(ctx: Ctx) -> Any:
            raise PeerError(INTERNAL_ERROR, "server shutting down")

        r.peer.handlers["initialize"] = gone
        r.wire.expire_session()
        try:
            await r.client.list_tools()
        except MCPError as exc:
            assert exc.code == INTERNAL_ERROR
        else:
            raise AssertionError("expected MCPError")
        assert r.client.session_generation == 0


async def scenario_close_during_reinitialize_fails_waiters() -> None:
    async with rig(HANDSHAKE) as r:

        async def stuck(ctx: Ctx) -> Any:
            return NO_REPLY

        r.peer.handlers["initialize"] = stuck
        r.wire.expire_session()
        calls = [asyncio.ensure_future(r.client.list_tools()), asyncio.ensure_future(r.client.ping())]
        await r.peer.wait_for(lambda: len(r.peer.requests("initialize")) == 2, "re-initialize sent")
        gathered = asyncio.gather(*calls, return_exceptions=True)
        await r.client.close()
        outcomes = await gathered
        assert all(isinstance(o, ConnectionClosedError) for o in outcomes), outcomes


SCENARIOS: list[Callable[[], Awaitable[None]]] = [
    value for name, value in list(globals().items()) if name.startswith("scenario_") and callable(value)
]
"""Every scenario in this module, in definition order."""

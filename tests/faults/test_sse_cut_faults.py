"""An SSE response cut in the middle: the client resumes with Last-Event-ID, losing and duplicating nothing.

Two ways to cut, 100 trials each: the server closes the stream itself
(``RequestContext.close_stream``, SEP-1699 polling), and a TCP proxy between
client and server drops the connection in the middle of an event. The client
is our ``Client`` over ``FetchTransport`` (httpx adapter). Every message the
transport delivers is tapped, so a message lost or delivered twice shows.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from tcp_proxy import TcpProxy

from devtools.reliability import HANDSHAKE, HttpxHTTPClient, live_app
from pyodide_transport.client import Client
from pyodide_transport.errors import ConnectionClosedError
from pyodide_transport.fetch import FetchTransport
from pyodide_transport.messages import JSONRPCNotification, JSONRPCResponse, TransportMessage

TRIALS = int(os.environ.get("PT_FAULT_TRIALS", "100"))  # per way of cutting; more in `python build.py stress`
STEPS = 20


class Tap:
    """Records every message the transport hands to the Client (installed before the Client reads)."""

    def __init__(self, transport: Any) -> None:
        self.messages: list[TransportMessage] = []
        original = transport.receive

        async def receive() -> TransportMessage:
            message: TransportMessage = await original()
            self.messages.append(message)
            return message

        transport.receive = receive

    def progress(self) -> Counter[tuple[Any, float]]:
        return Counter(
            (m.params["progressToken"], m.params["progress"])
            for m in self.messages
            if isinstance(m, JSONRPCNotification) and m.method == "notifications/progress" and m.params
        )

    def responses(self) -> Counter[Any]:
        return Counter(m.id for m in self.messages if isinstance(m, JSONRPCResponse))


async def _burst(client: Client, cut_at: int, seen: list[float], **extra: Any) -> str:
    result = await client.call_tool(
        "burst", {"count": STEPS, "cut_at": cut_at, **extra}, progress=lambda p, t, m: seen.append(p), timeout=30
    )
    text = result.content[0].text  # type: ignore[union-attr]
    assert isinstance(text, str)
    return text


def _audit(tap: Tap, tokens: int) -> tuple[int, int]:
    """(lost, duplicated) over every progress notification and response of ``tokens`` calls."""
    progress, responses = tap.progress(), tap.responses()
    per_token: dict[Any, set[float]] = {}
    for token, value in progress:
        per_token.setdefault(token, set()).add(value)
    burst_tokens = [t for t, values in per_token.items() if len(values) > 1 or STEPS == 1]
    assert len(burst_tokens) == tokens, (len(burst_tokens), tokens)
    lost = sum(STEPS - len(per_token[t]) for t in burst_tokens)
    lost += sum(1 for t in burst_tokens if responses[t] == 0)
    duplicated = sum(n - 1 for n in progress.values() if n > 1) + sum(n - 1 for n in responses.values() if n > 1)
    return lost, duplicated


async def _client(url: str, errors: list[Exception], http: HttpxHTTPClient | None = None) -> tuple[Client, Tap]:
    transport = FetchTransport(url, fetch=http or HttpxHTTPClient(), reconnect_delay=0.01, max_reconnect_delay=0.05)
    tap = Tap(transport)
    client = Client(transport, protocol_version=HANDSHAKE, on_error=errors.append)
    try:
        await client.connect()
    except BaseException:
        await client.close()
        raise
    return client, tap


async def test_server_closed_streams_resume_without_loss_or_duplicates(
    record_figure: Callable[[str, object], None],
) -> None:
    async with live_app(retry_ms=10) as live:
        errors: list[Exception] = []
        client, tap = await _client(live.base + "/mcp", errors)
        try:
            seen: list[list[float]] = []
            async with asyncio.timeout(120 + TRIALS):
                for batch in range(TRIALS // 10):  # 10 concurrent calls per batch: replay must not cross streams
                    calls = []
                    for i in range(10):
                        seen.append([])
                        cut_at = 1 + (batch * 10 + i) % (STEPS - 1)
                        calls.append(_burst(client, cut_at, seen[-1], delay_ms=1))
                    results = await asyncio.gather(*calls)
                    assert results == [f"burst of {STEPS} done"] * 10
            lost, duplicated = _audit(tap, TRIALS)
            transport: Any = client.transport
            resumptions = transport.stats["resumptions"]
        finally:
            await client.close()
    assert all(sorted(s) == [float(i) for i in range(1, STEPS + 1)] for s in seen), "progress callbacks in order"
    assert (lost, duplicated) == (0, 0)
    assert resumptions >= TRIALS
    assert not errors, errors
    record_figure("faults: server-closed SSE streams resumed (trials, lost, duplicated)", f"{TRIALS}, 0, 0")


async def test_connection_dropped_mid_event_by_a_proxy_resumes_without_loss_or_duplicates(
    make_proxy: Callable[[int], Awaitable[TcpProxy]], record_figure: Callable[[str, object], None]
) -> None:
    async with live_app(retry_ms=10) as live:
        proxy = await make_proxy(live.port)
        errors: list[Exception] = []
        http = HttpxHTTPClient()
        client, tap = await _client(proxy.base + "/mcp", errors, http)
        try:
            async with asyncio.timeout(120 + TRIALS):
                for trial in range(TRIALS):
                    cut_in = 2 + trial % (STEPS - 2)  # cut inside the event of this step
                    cut = proxy.arm(f"step-{cut_in}-of-{STEPS}".encode())
                    seen: list[float] = []
                    assert await _burst(client, -1, seen, delay_ms=2) == f"burst of {STEPS} done"
                    assert cut.is_set(), f"trial {trial}: the proxy cut the stream"
                    assert sorted(seen) == [float(i) for i in range(1, STEPS + 1)], (trial, seen)
            lost, duplicated = _audit(tap, TRIALS)
        finally:
            await client.close()
    resumes = [h for m, h in http.requests if m == "GET" and "Last-Event-ID" in h]
    assert proxy.cuts == TRIALS
    assert len(resumes) >= TRIALS
    assert (lost, duplicated) == (0, 0)
    assert not errors, errors
    record_figure("faults: proxy-dropped SSE connections resumed (trials, lost, duplicated)", f"{TRIALS}, 0, 0")


MODERN_TRIALS = max(1, TRIALS // 10)


async def test_a_cut_2026_stream_fails_unsafe_calls_clearly_and_resends_safe_ones_once(
    make_proxy: Callable[[int], Awaitable[TcpProxy]], record_figure: Callable[[str, object], None]
) -> None:
    """2026-07-28 cannot resume a stream: a cut call that could change something fails, saying it may have
    run; a read-only or idempotent one is sent again, once, with a new id; nothing hangs, nothing doubles."""
    async with live_app(retry_ms=10) as live:
        proxy = await make_proxy(live.port)
        http = HttpxHTTPClient()
        transport = FetchTransport(proxy.base + "/mcp", fetch=http)
        client = Client(transport, protocol_version="2026-07-28")
        await client.connect()
        try:
            await client.list_tools()  # the annotations tell which tools are safe to send again
            async with asyncio.timeout(60 + 5 * MODERN_TRIALS):
                for _ in range(MODERN_TRIALS):
                    cut = proxy.arm(b"step-5-of-20")
                    try:
                        await _burst(client, -1, [], delay_ms=1)
                    except ConnectionClosedError as exc:
                        assert "may or may not have run" in str(exc) and "was not sent again" in str(exc)
                    else:
                        raise AssertionError("a cut call of a tool that could change something must fail")
                    assert cut.is_set()
                    cut = proxy.arm(b"step-5-of-20")
                    arguments = {"count": STEPS, "delay_ms": 1}
                    done = await client.call_tool(
                        "burst_idempotent", arguments, progress=lambda p, t, m: None, timeout=30
                    )
                    assert done.content[0].text == f"burst of {STEPS} done"  # type: ignore[union-attr]
                    assert cut.is_set()
        finally:
            await client.close()
    posts = [h for m, h in http.requests if m == "POST" and h.get("Mcp-Name") in ("burst", "burst_idempotent")]
    assert len(posts) == 3 * MODERN_TRIALS  # each unsafe call once, each idempotent one twice: no more
    record_figure(
        "faults: 2026-07-28 cut streams (trials; unsafe failed clearly, idempotent re-sent once)", MODERN_TRIALS
    )

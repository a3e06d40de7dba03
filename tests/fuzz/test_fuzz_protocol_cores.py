"""Fuzz the two protocol cores with arbitrary input.

* The Streamable HTTP client core (``StreamableHTTPClient`` / ``Exchange``) fed arbitrary
  responses: any status, headers, body bytes (noise, SSE fragments, JSON-RPC messages for us
  or for others), ending normally or breaking, reconnecting as told. It never raises, reports
  only ``TransportError`` failures, and every request ends exactly once: answered or failed,
  never both, never silently dropped.
* The server core (``ServerSession``) fed arbitrary JSON-RPC-ish messages after a handshake:
  ``handle`` never raises, everything it sends is a valid message, no request fails with an
  internal error (an unhandled exception), and each request is answered at most once
  (exactly once unless it was cancelled or still running when the session closed).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from fuzz_profile import EXAMPLES, FUZZ
from hypothesis import given
from hypothesis import strategies as st

from pyodide_transport.errors import NetworkError, TransportError
from pyodide_transport.messages import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    TransportMessage,
    encode_message,
    error_response,
    make_notification,
    make_request,
    make_response,
)
from pyodide_transport.sse import encode_sse_event
from pyodide_transport.streamable_http import (
    Exchange,
    ExchangeFailed,
    MessageReceived,
    Reconnect,
    StreamableHTTPClient,
)
from server_demo.core import ServerSession
from server_demo.demo import build_demo_server

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)

# --- the Streamable HTTP client core --------------------------------------------------------------

OUR_ID = 7


def _wire_message(kind: str, request_id: Any) -> str:
    if kind == "result":
        return encode_message(make_response(request_id if request_id is not None else 0, {"ok": True}))
    if kind == "error":
        return encode_message(error_response(request_id, -32601, "nope"))
    if kind == "note":
        return encode_message(make_notification("notifications/progress", {"progressToken": OUR_ID, "progress": 1}))
    return encode_message(make_request("srv-1", "ping"))


MESSAGES = st.builds(
    _wire_message, st.sampled_from(["result", "error", "note", "request"]), st.sampled_from([OUR_ID, 8, "x", None])
)
CHUNKS = st.one_of(
    st.binary(max_size=60),
    MESSAGES.map(str.encode),  # a JSON body
    st.builds(
        lambda m, i, e: encode_sse_event(m, id=i, event=e),
        st.one_of(MESSAGES, st.text(max_size=20)),
        st.one_of(st.none(), st.sampled_from(["s-1.0", "s-1.1", "s-1.2", ""])),
        st.sampled_from([None, "message", "other"]),
    ),
    st.sampled_from([b"id: s-1.0\nretry: 5\n\n", b"data: {", b"\n\n", b"retry: 0\n", b"id: s-1.9\n"]),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/json", "text/event-stream", "text/event-stream; charset=utf-8", "text/plain", ""]),
    st.text(max_size=15),
)
ROUND = st.tuples(
    st.one_of(st.sampled_from([200, 200, 200, 202, 204, 400, 404, 405, 500]), st.integers(100, 599)),
    st.fixed_dictionaries(
        {"content-type": CONTENT_TYPES},
        optional={"mcp-session-id": st.one_of(st.just("session-1"), st.text(max_size=10))},
    ),
    st.lists(CHUNKS, max_size=6),
    st.sampled_from(["eof", "network"]),
)


@FUZZ
@given(
    method=st.sampled_from(["initialize", "tools/call", "ping", "modern"]),
    with_session=st.booleans(),
    rounds=st.lists(ROUND, min_size=1, max_size=4),
    limit=st.sampled_from([64, 4096]),
)
def fuzz_streamable_http_client(
    method: str, with_session: bool, rounds: list[tuple[int, dict[str, str], list[bytes], str]], limit: int
) -> None:
    EXAMPLES["Streamable HTTP client core"] += 1
    client = StreamableHTTPClient("http://127.0.0.1:1/mcp", max_message_size=limit)
    if with_session:
        client.session_id, client.protocol_version = "session-1", "2025-11-25"
    params: dict[str, Any] = {"name": "echo"}
    if method == "modern":
        method = "tools/call"
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    action = client.send(make_request(OUR_ID, method, params))
    assert isinstance(action, Exchange)
    exchange: Exchange | None = action
    answered = failed = 0
    for status, headers, chunks, ending in rounds:
        if exchange is None:
            break
        current, exchange = exchange, None
        events = current.receive_response(status, headers)
        for chunk in chunks:
            if current.done:
                break
            events += current.receive_data(chunk)
        events += current.receive_eof() if ending == "eof" else current.receive_network_error(NetworkError("cut"))
        assert current.done or current.is_streaming is False or ending, current
        for event in events:
            if isinstance(event, MessageReceived):
                message = event.message
                if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id == OUR_ID and not failed:
                    answered += 1
            elif isinstance(event, ExchangeFailed):
                assert isinstance(event.error, TransportError)
                if OUR_ID in event.request_ids:
                    assert not answered, "a request reported both answered and failed"
                    failed += 1
            elif isinstance(event, Reconnect):
                assert exchange is None and event.delay >= 0
                exchange = event.exchange
    assert failed <= 1
    if exchange is None:  # nothing left to resume: the request ended, once
        assert answered >= 1 or failed == 1, "a request was silently forgotten"


def test_fuzz_streamable_http_client(record_figure: Callable[[str, object], None]) -> None:
    fuzz_streamable_http_client()
    record_figure("fuzz examples: Streamable HTTP client core", EXAMPLES["Streamable HTTP client core"])


# --- the server core -------------------------------------------------------------------------------

SERVER = build_demo_server(counter_interval=0.01, step_delay=0)
SLOW_TOOLS = {"long_running", "test_reconnection"}  # they sleep by design; the rest answer at once
TOOLS = sorted(set(SERVER.tools) - SLOW_TOOLS)
METHODS = [
    "ping", "initialize", "tools/list", "tools/call", "resources/list", "resources/templates/list",
    "resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
    "completion/complete", "logging/setLevel", "server/discover",
]  # fmt: skip
ARG_NAMES = ["a", "b", "operation", "message", "count", "question", "name", "address", "language", "code"]
URIS = ["demo://readme", "demo://counter", "demo://logo.png", "demo://greeting/x", "test://static-text", "nope://"]
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "f", "version": "1"},
}
PARAMS = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
    st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from([*TOOLS, "code_review", "test_simple_prompt"]), JSON_SCALARS)},
        optional={"arguments": st.one_of(st.dictionaries(st.sampled_from(ARG_NAMES), JSON_VALUES), JSON_VALUES)},
    ),
    st.fixed_dictionaries({"uri": st.one_of(st.sampled_from(URIS), JSON_SCALARS)}),
    st.fixed_dictionaries({"level": st.one_of(st.sampled_from(["debug", "error", "emergency"]), JSON_SCALARS)}),
    st.fixed_dictionaries(
        {
            "ref": st.one_of(
                st.fixed_dictionaries({"type": st.just("ref/prompt"), "name": st.text(max_size=12)}),
                st.fixed_dictionaries({"type": st.just("ref/resource"), "uri": st.sampled_from(URIS)}),
                JSON_VALUES,
            ),
            "argument": st.one_of(
                st.fixed_dictionaries({"name": st.text(max_size=8), "value": st.text()}), JSON_VALUES
            ),
        }
    ),
).flatmap(
    lambda p: (
        st.sampled_from([p, {**(p or {}), "_meta": {"progressToken": 1}}, {**(p or {}), "_meta": MODERN_META}])
        if p is None or isinstance(p, dict)
        else st.just(p)
    )
)
IDS = st.one_of(st.integers(0, 12), st.sampled_from(["a", "b", ""]))
INCOMING = st.one_of(
    st.builds(
        lambda i, m, p: make_request(i, m, p), IDS, st.one_of(st.sampled_from(METHODS), st.text(max_size=12)), PARAMS
    ),
    st.builds(lambda i: make_notification("notifications/cancelled", {"requestId": i}), st.one_of(IDS, JSON_SCALARS)),
    st.builds(
        lambda m, p: make_notification(m, p if isinstance(p, dict) else None),
        st.sampled_from(["notifications/initialized", "notifications/progress", "notifications/x"]),
        PARAMS,
    ),
    st.builds(
        lambda i, r: make_response(i, r),
        st.sampled_from(["srv-1", "srv-2", 3]),
        st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=2),
    ),
    st.builds(lambda i: error_response(i, -1, "client error"), st.sampled_from(["srv-1", None, 4])),
)


async def _serve(messages: list[TransportMessage]) -> None:
    sent: list[tuple[TransportMessage, Any]] = []

    async def sink(message: TransportMessage, related: Any) -> None:
        encode_message(message)  # everything the server sends must serialize
        sent.append((message, related))

    session = ServerSession(SERVER, sink)
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}
    await session.handle(make_request("init", "initialize", params))
    for message in messages:
        await session.handle(message)  # must never raise
    for _ in range(50):  # let running requests finish (bounded; the rest is cancelled by close)
        if session.active_requests == 0:
            break
        await asyncio.sleep(0.002)
    await session.close()

    requests = Counter(m.id for m in messages if isinstance(m, JSONRPCRequest))
    cancelled = {
        m.params.get("requestId") for m in messages if isinstance(m, JSONRPCNotification) and m.params is not None
    }
    answers: Counter[Any] = Counter()
    for message, _related in sent:
        assert isinstance(message, JSONRPCRequest | JSONRPCNotification | JSONRPCResponse | JSONRPCError)
        if isinstance(message, JSONRPCError):
            assert message.error.code != -32603, f"internal error (unhandled exception): {message.error.message}"
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id != "init":
            answers[message.id] += 1
    for request_id, count in answers.items():
        assert count <= requests[request_id], (request_id, count, requests[request_id])
    for request_id, count in requests.items():
        if count == 1 and request_id not in cancelled and answers[request_id] == 0:
            # only a request still running when the session closed may go unanswered
            assert any(isinstance(m, JSONRPCRequest) and m.id == request_id and _may_run_long(m) for m in messages), (
                f"request {request_id!r} got no answer"
            )


def _may_run_long(request: JSONRPCRequest) -> bool:
    """Requests that wait for the client or for time on purpose (sampling, subscriptions, slow tools)."""
    name = (request.params or {}).get("name")
    return request.method == "tools/call" and not isinstance(name, dict | list) and name not in (None, "echo")


@FUZZ
@given(messages=st.lists(INCOMING, max_size=12))
def fuzz_server_core(messages: list[TransportMessage]) -> None:
    EXAMPLES["server core request handling"] += 1
    asyncio.run(_serve(messages))


def test_fuzz_server_core(record_figure: Callable[[str, object], None]) -> None:
    fuzz_server_core()
    record_figure("fuzz examples: server core request handling", EXAMPLES["server core request handling"])


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=120),
        JSON_VALUES.map(json.dumps).map(str.encode),
        INCOMING.map(encode_message).map(str.encode),
    )
)
def fuzz_http_body_parsing(body: bytes) -> None:
    from server_demo.http import _parse_body
    from server_demo.http_rules import Rejection

    EXAMPLES["server HTTP body parsing"] += 1
    parsed = _parse_body(body)
    if isinstance(parsed, Rejection):
        assert parsed.status == 400 and parsed.code in (-32700, -32600)
    else:
        messages, _batch = parsed
        assert messages


def test_fuzz_http_body_parsing(record_figure: Callable[[str, object], None]) -> None:
    fuzz_http_body_parsing()
    record_figure("fuzz examples: server HTTP body parsing", EXAMPLES["server HTTP body parsing"])

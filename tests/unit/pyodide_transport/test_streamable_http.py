from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

import pytest
from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.jsonrpc import HEADER_MISMATCH, INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION

from pyodide_transport.backoff import BackoffPolicy
from pyodide_transport.errors import (
    ConnectionClosedError,
    HTTPStatusError,
    LocalProtocolError,
    MessageTooLargeError,
    NetworkError,
    RemoteProtocolError,
    SessionExpiredError,
)
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
    AbortExchange,
    Event,
    Exchange,
    ExchangeFailed,
    LastEventIdUpdated,
    MessageReceived,
    ProtocolVersionNegotiated,
    Reconnect,
    RetryReceived,
    SessionExpired,
    SessionIdReceived,
    StreamableHTTPClient,
    StreamUnavailable,
    encode_header_value,
)

URL = "http://127.0.0.1:8000/mcp"
HANDSHAKE = "2025-11-25"
MODERN = "2026-07-28"
JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}
E = TypeVar("E")

# --- helpers ------------------------------------------------------------------------------


def new_client(**kwargs: Any) -> StreamableHTTPClient:
    kwargs.setdefault("backoff", BackoffPolicy(initial_delay=1, jitter="none", max_attempts=3))
    return StreamableHTTPClient(URL, **kwargs)


def init_request(request_id: int = 0) -> JSONRPCRequest:
    return make_request(request_id, "initialize", {"protocolVersion": HANDSHAKE, "capabilities": {}})


def init_result(request_id: int = 0, version: str = HANDSHAKE) -> JSONRPCResponse:
    return make_response(request_id, {"protocolVersion": version, "capabilities": {}, "serverInfo": {}})


def modern_request(request_id: int, method: str, params: dict[str, Any] | None = None) -> JSONRPCRequest:
    meta = {PROTOCOL_VERSION_META_KEY: MODERN, "io.modelcontextprotocol/clientInfo": {"name": "t"}}
    return make_request(request_id, method, {**(params or {}), "_meta": meta})


def post(client: StreamableHTTPClient, message: TransportMessage) -> Exchange:
    exchange = client.send(message)
    assert isinstance(exchange, Exchange)
    return exchange


def sse(*messages: TransportMessage, id: str | None = None) -> bytes:
    return b"".join(encode_sse_event(encode_message(m), id=id) for m in messages)


def respond(exchange: Exchange, status: int, headers: dict[str, str], *chunks: bytes, eof: bool = True) -> list[Event]:
    events = exchange.receive_response(status, headers)
    for chunk in chunks:
        events += exchange.receive_data(chunk)
    if eof:
        events += exchange.receive_eof()
    return events


def received(events: list[Event]) -> list[TransportMessage]:
    return [e.message for e in events if isinstance(e, MessageReceived)]


def only(events: list[Event], kind: type[E]) -> E:
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, events
    return found[0]


def initialized(**kwargs: Any) -> StreamableHTTPClient:
    client = new_client(**kwargs)
    respond(post(client, init_request()), 200, {**JSON, "Mcp-Session-Id": "s1"}, encode_message(init_result()).encode())
    assert client.session_id == "s1"
    return client


def failure(events: list[Event]) -> ExchangeFailed:
    return only(events, ExchangeFailed)


# --- handshake era: requests ----------------------------------------------------------------


def test_post_before_initialize_has_explicit_accept_and_json_body() -> None:
    client = new_client()
    message = init_request()
    exchange = post(client, message)
    request = exchange.request
    assert request.method == "POST"
    assert request.url == URL
    assert request.headers == {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    assert request.body is not None and json.loads(request.body) == json.loads(encode_message(message))
    assert exchange.request_ids == (0,)
    assert not exchange.modern


def test_initialize_json_response_captures_session_and_version() -> None:
    client = new_client()
    exchange = post(client, init_request())
    events = respond(exchange, 200, {"content-type": "application/json", "mcp-session-id": "abc"}, eof=False)
    assert events == [SessionIdReceived("abc")]  # body still to come
    events = exchange.receive_data(encode_message(init_result()).encode()) + exchange.receive_eof()
    assert events == [ProtocolVersionNegotiated(HANDSHAKE), MessageReceived(init_result())]
    assert exchange.done
    assert (client.session_id, client.protocol_version) == ("abc", HANDSHAKE)

    later = post(client, make_notification("notifications/initialized")).request.headers
    assert later["Mcp-Session-Id"] == "abc"
    assert later["MCP-Protocol-Version"] == HANDSHAKE
    assert later["Accept"] == "application/json, text/event-stream"


def test_initialize_sse_response_chunked_byte_by_byte() -> None:
    client = new_client()
    exchange = post(client, init_request())
    body = b": hello\n\n" + sse(init_result(), id="e1")
    events = respond(exchange, 200, {**SSE, "Mcp-Session-Id": "s9"}, *[body[i : i + 1] for i in range(len(body))])
    assert received(events) == [init_result()]
    assert ProtocolVersionNegotiated(HANDSHAKE) in events
    assert LastEventIdUpdated("e1") in events
    assert exchange.done and client.session_id == "s9"


def test_negotiated_version_is_what_the_server_chose() -> None:
    client = new_client()
    respond(post(client, init_request()), 200, JSON, encode_message(init_result(version="2025-06-18")).encode())
    assert client.protocol_version == "2025-06-18"
    assert client.session_id is None  # stateless server: no session header at all
    headers = post(client, make_request(1, "tools/list")).request.headers
    assert headers["MCP-Protocol-Version"] == "2025-06-18"
    assert "Mcp-Session-Id" not in headers


def test_session_id_only_from_initialize_response() -> None:
    client = initialized()
    events = respond(post(client, make_request(1, "ping")), 200, {**JSON, "Mcp-Session-Id": "other"}, b"")
    assert client.session_id == "s1"
    assert not any(isinstance(e, SessionIdReceived) for e in events)


def test_invalid_session_id_is_a_remote_error() -> None:
    client = new_client()
    events = respond(post(client, init_request()), 200, {**JSON, "Mcp-Session-Id": "bad\x01id"})
    assert isinstance(failure(events).error, RemoteProtocolError)
    assert client.session_id is None


def test_new_initialize_forgets_old_session() -> None:
    client = initialized()
    headers = post(client, init_request(5)).request.headers
    assert "Mcp-Session-Id" not in headers and "MCP-Protocol-Version" not in headers
    assert client.session_id is None


def test_custom_headers_on_every_request_and_protocol_headers_win() -> None:
    custom = {"Authorization": "Bearer t", "accept": "*/*", "X-Trace": "1"}
    client = initialized(headers=custom)
    requests = [post(client, make_request(1, "ping")).request, client.open_stream().request]
    delete = client.close()
    assert delete is not None
    requests.append(delete.request)
    for request in requests:
        assert request.headers["Authorization"] == "Bearer t"
        assert request.headers["X-Trace"] == "1"
        assert "accept" not in request.headers  # never */*
    assert requests[0].headers["Accept"] == "application/json, text/event-stream"
    assert requests[1].headers["Accept"] == "text/event-stream"


def test_duplicate_request_id_in_flight_is_local_error() -> None:
    client = initialized()
    post(client, make_request(1, "ping"))
    with pytest.raises(LocalProtocolError):
        client.send(make_request(1, "initialize"))
    assert client.session_id == "s1"  # the refused message changed nothing


def test_request_id_reusable_after_its_response() -> None:
    client = initialized()
    respond(post(client, make_request(1, "ping")), 200, JSON, encode_message(make_response(1, {})).encode())
    assert post(client, make_request(1, "ping")).request_ids == (1,)


def test_string_and_int_ids_are_distinct() -> None:
    client = initialized()
    post(client, make_request(1, "ping"))
    exchange = post(client, make_request("1", "ping"))
    events = respond(exchange, 200, JSON, encode_message(make_response("1", {})).encode())
    assert received(events) == [make_response("1", {})]
    assert client.exchange_for(1) is not None and client.exchange_for("1") is None


# --- handshake era: response bodies ------------------------------------------------------


def test_notification_and_response_get_202() -> None:
    client = initialized()
    for message in (make_notification("notifications/initialized"), make_response(7, {})):
        exchange = post(client, message)
        assert exchange.request_ids == ()
        assert exchange.receive_response(202, {}) == []
        assert exchange.done


def test_202_for_a_request_fails_it() -> None:
    client = initialized()
    failed = failure(respond(post(client, make_request(1, "ping")), 202, {}))
    assert failed.request_ids == (1,)
    assert isinstance(failed.error, RemoteProtocolError)
    assert client.exchange_for(1) is None


def test_json_batch_body() -> None:
    client = initialized()
    batch: list[TransportMessage] = [
        make_notification("notifications/message", {"level": "info"}),
        make_response(1, {"ok": True}),
    ]
    body = json.dumps([json.loads(encode_message(m)) for m in batch]).encode()
    exchange = post(client, make_request(1, "ping"))
    events = respond(exchange, 200, JSON, body[:10], body[10:])
    assert received(events) == batch
    assert exchange.done and exchange.request_ids == ()


def test_json_body_without_our_response_fails_request() -> None:
    client = initialized()
    events = respond(post(client, make_request(1, "ping")), 200, JSON, encode_message(make_response(2, {})).encode())
    assert received(events) == [make_response(2, {})]
    failed = failure(events)
    assert failed.request_ids == (1,)
    assert "no response for request 1" in str(failed.error)


def test_invalid_json_body_is_remote_error() -> None:
    client = initialized()
    failed = failure(respond(post(client, make_request(1, "ping")), 200, JSON, b"{nope"))
    assert isinstance(failed.error, RemoteProtocolError)
    assert failed.request_ids == (1,)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "text/event-stream;charset=UTF-8"]
)
def test_content_type_parameters_and_case(content_type: str) -> None:
    client = initialized()
    body = encode_message(make_response(1, {})).encode()
    if "event-stream" in content_type:
        body = sse(make_response(1, {}))
    events = respond(post(client, make_request(1, "ping")), 200, {"Content-Type": content_type}, body)
    assert received(events) == [make_response(1, {})]


@pytest.mark.parametrize("headers", [{"Content-Type": "text/html"}, {}])
def test_200_neither_json_nor_sse_is_remote_error(headers: dict[str, str]) -> None:
    client = initialized()
    failed = failure(respond(post(client, make_request(1, "ping")), 200, headers, b"<html>"))
    assert isinstance(failed.error, RemoteProtocolError)
    assert "Content-Type" in str(failed.error)


def test_notification_200_with_empty_untyped_body_is_fine() -> None:
    client = initialized()
    exchange = post(client, make_notification("notifications/initialized"))
    assert respond(exchange, 200, {}, b"") == []
    assert exchange.done


def test_notification_200_with_untyped_body_is_remote_error() -> None:
    client = initialized()
    failed = failure(respond(post(client, make_notification("x")), 200, {"Content-Type": "text/plain"}, b"ok"))
    assert isinstance(failed.error, RemoteProtocolError)
    assert failed.request_ids == ()


def test_json_body_over_limit() -> None:
    client = initialized(max_message_size=100)
    exchange = post(client, make_request(1, "ping"))
    exchange.receive_response(200, JSON)
    assert exchange.receive_data(b"x" * 60) == []
    failed = failure(exchange.receive_data(b"x" * 60))
    assert isinstance(failed.error, MessageTooLargeError)
    assert failed.request_ids == (1,)
    assert exchange.done and exchange.receive_data(b"more") == []


def test_sse_event_over_limit() -> None:
    client = initialized(max_message_size=100)
    exchange = post(client, make_request(1, "ping"))
    failed = failure(respond(exchange, 200, SSE, b"data: " + b"x" * 200, eof=False))
    assert isinstance(failed.error, MessageTooLargeError)
    assert exchange.done


def test_sse_stream_with_server_messages_then_response() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "tools/call", {"name": "slow"}))
    body = (
        encode_sse_event("", id="p0", retry=500)
        + sse(make_notification("notifications/progress", {"progress": 1}), id="p1")
        + sse(make_request("srv-1", "sampling/createMessage", {}), id="p2")
        + b"event: other\ndata: ignored\n\n"
        + sse(make_response(1, {"content": []}), id="p3")
    )
    events = respond(exchange, 200, SSE, body[:7], body[7:33], body[33:], eof=False)
    assert [type(m) for m in received(events)] == [JSONRPCNotification, JSONRPCRequest, JSONRPCResponse]
    assert RetryReceived(500) in events
    assert [e.last_event_id for e in events if isinstance(e, LastEventIdUpdated)] == ["p0", "p1", "p2", "p3"]
    assert exchange.request_ids == () and exchange.last_event_id == "p3"
    assert exchange.receive_eof() == []  # response already here: no reconnect
    assert exchange.done


def test_invalid_json_in_sse_event_is_remote_error() -> None:
    client = initialized()
    failed = failure(respond(post(client, make_request(1, "ping")), 200, SSE, b"data: {oops\n\n", eof=False))
    assert isinstance(failed.error, RemoteProtocolError)
    assert failed.request_ids == (1,)


def test_sse_batch_in_one_event() -> None:
    client = initialized()
    data = json.dumps([json.loads(encode_message(make_response(1, {})))])
    events = respond(post(client, make_request(1, "ping")), 200, SSE, encode_sse_event(data))
    assert received(events) == [make_response(1, {})]


# --- handshake era: errors ---------------------------------------------------------------


def test_404_with_session_expires_it() -> None:
    client = initialized()
    exchange = post(client, make_request(3, "tools/list"))
    events = respond(exchange, 404, {"Content-Type": "text/plain"}, b"Session not found")
    assert events[0] == SessionExpired("s1", (3,))
    failed = failure(events)
    assert isinstance(failed.error, SessionExpiredError)
    assert failed.request_ids == (3,)
    assert client.session_id is None and client.protocol_version is None
    assert exchange.done and exchange.receive_data(b"late") == [] and exchange.receive_eof() == []
    headers = post(client, init_request(4)).request.headers
    assert "Mcp-Session-Id" not in headers and "MCP-Protocol-Version" not in headers


def test_late_404_of_old_session_keeps_new_session() -> None:
    client = initialized()
    old = post(client, make_request(1, "ping"))
    respond(
        post(client, init_request(2)), 200, {**JSON, "Mcp-Session-Id": "s2"}, encode_message(init_result(2)).encode()
    )
    events = respond(old, 404, {})
    assert events[0] == SessionExpired("s1", (1,))
    assert client.session_id == "s2"


def test_404_without_session_is_http_status_error() -> None:
    client = new_client()
    failed = failure(respond(post(client, make_request(1, "ping")), 404, {}, b"Not Found"))
    assert isinstance(failed.error, HTTPStatusError)
    assert failed.error.status == 404
    assert failed.error.body == "Not Found"


def test_non_2xx_with_jsonrpc_error_for_same_id_is_a_message() -> None:
    client = initialized()
    error = error_response(1, -32602, "bad params")
    events = respond(
        post(client, make_request(1, "tools/call", {"name": "x"})), 400, JSON, encode_message(error).encode()
    )
    assert events == [MessageReceived(error)]
    assert client.exchange_for(1) is None


@pytest.mark.parametrize("error_id", [None, 99])
def test_non_2xx_with_jsonrpc_error_for_other_id_is_http_error(error_id: int | None) -> None:
    client = initialized()
    body = encode_message(error_response(error_id, INVALID_REQUEST, "Bad Request: no session")).encode()
    failed = failure(respond(post(client, make_request(1, "ping")), 400, JSON, body))
    assert isinstance(failed.error, HTTPStatusError)
    assert failed.error.status == 400
    assert "no session" in failed.error.body
    assert failed.request_ids == (1,)


def test_500_plain_text_is_http_status_error() -> None:
    client = initialized()
    failed = failure(respond(post(client, make_request(1, "ping")), 500, {}, b"boom", b"!"))
    assert isinstance(failed.error, HTTPStatusError)
    assert (failed.error.status, failed.error.body) == (500, "boom!")
    assert "500" in str(failed.error)


def test_error_body_for_notification_is_http_error_without_ids() -> None:
    client = initialized()
    failed = failure(respond(post(client, make_notification("x")), 400, JSON, b"{}"))
    assert isinstance(failed.error, HTTPStatusError)
    assert failed.request_ids == ()


def test_network_error_before_response_fails_post_with_adapter_error() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    error = NetworkError("refused")
    assert exchange.receive_network_error(error) == [ExchangeFailed(error, (1,))]
    assert exchange.done and client.exchange_for(1) is None


def test_verb_misuse_is_local_error() -> None:
    exchange = post(initialized(), make_request(1, "ping"))
    with pytest.raises(LocalProtocolError):
        exchange.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        exchange.receive_eof()
    exchange.receive_response(200, SSE)
    with pytest.raises(LocalProtocolError):
        exchange.receive_response(200, SSE)


# --- handshake era: standalone GET stream --------------------------------------------------


def test_get_stream_needs_initialized_handshake_session() -> None:
    with pytest.raises(LocalProtocolError):
        new_client().open_stream()


def test_get_stream_headers_and_messages() -> None:
    client = initialized()
    stream = client.open_stream()
    assert stream.request.method == "GET"
    assert stream.request.body is None
    assert stream.request.headers == {
        "Accept": "text/event-stream",
        "Mcp-Session-Id": "s1",
        "MCP-Protocol-Version": HANDSHAKE,
    }
    note = make_notification("notifications/tools/list_changed")
    events = respond(stream, 200, SSE, sse(note, id="g1"), eof=False)
    assert received(events) == [note]


def test_get_stream_405_is_not_an_error() -> None:
    stream = initialized().open_stream()
    assert stream.receive_response(405, {}) == [StreamUnavailable()]
    assert stream.done


def test_get_stream_reconnects_with_its_last_event_id() -> None:
    client = initialized()
    stream = client.open_stream()
    respond(stream, 200, SSE, sse(make_notification("a"), id="g1"), eof=False)
    reconnect = only(stream.receive_eof(), Reconnect)
    assert reconnect.last_event_id == "g1"
    assert reconnect.exchange.kind == "get"
    assert reconnect.exchange.request.headers["Last-Event-ID"] == "g1"


def test_get_stream_without_id_reconnects_fresh() -> None:
    stream = initialized().open_stream()
    reconnect = only(respond(stream, 200, SSE, b": nothing\n\n"), Reconnect)
    assert reconnect.last_event_id is None
    assert "Last-Event-ID" not in reconnect.exchange.request.headers


def test_get_stream_gives_up_after_max_attempts_without_progress() -> None:
    stream = initialized().open_stream()
    delays = []
    for _ in range(3):
        reconnect = only(respond(stream, 200, SSE), Reconnect)
        delays.append(reconnect.delay)
        stream = reconnect.exchange
    assert delays == [1, 2, 4]
    failed = failure(respond(stream, 200, SSE))
    # reported once, as a network problem: HTTP is connectionless, the transport stays usable
    assert isinstance(failed.error, NetworkError) and "gave up after 3 reconnect attempts" in str(failed.error)
    assert failed.request_ids == ()


def test_get_stream_wrong_content_type() -> None:
    failed = failure(respond(initialized().open_stream(), 200, JSON, b"{}"))
    assert isinstance(failed.error, RemoteProtocolError)


def test_get_stream_404_expires_session() -> None:
    client = initialized()
    events = respond(client.open_stream(), 404, {})
    assert events[0] == SessionExpired("s1", ())
    assert isinstance(failure(events).error, SessionExpiredError)
    assert client.session_id is None


# --- handshake era: resumption -------------------------------------------------------------


def test_multi_reconnect_resumption_token_advances() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "tools/call", {"name": "slow"}))
    events = respond(exchange, 200, SSE, encode_sse_event("", id="a-1", retry=250), eof=False)
    assert events == [LastEventIdUpdated("a-1"), RetryReceived(250)]
    reconnect = only(exchange.receive_eof(), Reconnect)
    assert exchange.done
    assert reconnect.delay == 0.25  # the server's retry wins
    assert reconnect.last_event_id == "a-1"
    resumed = reconnect.exchange
    assert resumed.kind == "resume" and resumed.request_ids == (1,)
    assert client.exchange_for(1) is resumed
    assert resumed.request.method == "GET"
    assert resumed.request.headers == {
        "Accept": "text/event-stream",
        "Mcp-Session-Id": "s1",
        "MCP-Protocol-Version": HANDSHAKE,
        "Last-Event-ID": "a-1",
    }

    progress = make_notification("notifications/progress", {"progress": 1})
    events = respond(resumed, 200, SSE, sse(progress, id="a-2"), encode_sse_event("", id="a-3"), eof=False)
    assert received(events) == [progress]
    assert resumed.last_event_id == "a-3"
    second = only(resumed.receive_network_error(NetworkError("reset")), Reconnect)
    assert second.last_event_id == "a-3"  # the newest id, not the first one
    assert second.exchange.request.headers["Last-Event-ID"] == "a-3"
    assert second.delay == 0.25  # the retry persists across reconnects

    events = respond(second.exchange, 200, SSE, sse(make_response(1, {"content": []}), id="a-4"))
    assert received(events) == [make_response(1, {"content": []})]
    assert second.exchange.done and client.exchange_for(1) is None
    assert second.exchange.last_event_id == "a-4"


def test_resume_uses_backoff_without_server_retry_and_resets_on_progress() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    respond(exchange, 200, SSE, encode_sse_event("", id="1"), eof=False)
    first = only(exchange.receive_eof(), Reconnect)
    assert first.delay == 1
    # The resume GET fails before any response: retry with a longer delay.
    second = only(first.exchange.receive_network_error(NetworkError("refused")), Reconnect)
    assert second.delay == 2
    assert second.exchange.request.headers["Last-Event-ID"] == "1"
    # Progress (a new id) resets the schedule.
    third = only(respond(second.exchange, 200, SSE, encode_sse_event("", id="2")), Reconnect)
    assert (third.delay, third.last_event_id) == (1, "2")


def test_resume_gives_up_after_max_attempts() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    respond(exchange, 200, SSE, encode_sse_event("", id="1"), eof=False)
    current = exchange
    for _ in range(3):
        current = only(current.receive_eof() if current is exchange else respond(current, 200, SSE), Reconnect).exchange
    failed = failure(respond(current, 200, SSE))
    assert isinstance(failed.error, ConnectionClosedError)
    assert "gave up after 3" in str(failed.error)
    assert failed.request_ids == (1,)
    assert client.exchange_for(1) is None


def test_initialize_over_resumed_stream_negotiates_version() -> None:
    client = new_client()
    exchange = post(client, init_request())
    events = respond(exchange, 200, {**SSE, "Mcp-Session-Id": "s1"}, encode_sse_event("", id="i0"))
    resumed = only(events, Reconnect).exchange
    assert resumed.request.headers["Mcp-Session-Id"] == "s1"
    assert "MCP-Protocol-Version" not in resumed.request.headers  # not negotiated yet
    events = respond(resumed, 200, SSE, sse(init_result(), id="i1"))
    assert ProtocolVersionNegotiated(HANDSHAKE) in events
    assert client.protocol_version == HANDSHAKE


def test_no_reconnect_after_close() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    respond(exchange, 200, SSE, encode_sse_event("", id="1"), eof=False)
    assert exchange.is_streaming
    client.close()
    failed = failure(exchange.receive_eof())
    assert isinstance(failed.error, ConnectionClosedError)
    assert failed.request_ids == (1,)


def test_stream_without_event_id_cannot_resume() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    respond(exchange, 200, SSE, sse(make_notification("notifications/progress")), eof=False)
    failed = failure(exchange.receive_eof())
    assert isinstance(failed.error, ConnectionClosedError)
    assert failed.request_ids == (1,)
    assert "no event id" in str(failed.error)


def test_broken_stream_without_event_id_cannot_resume() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    exchange.receive_response(200, SSE)
    failed = failure(exchange.receive_network_error(NetworkError("reset")))
    assert isinstance(failed.error, ConnectionClosedError)
    assert "reset" in str(failed.error)


def test_resume_refused_with_405() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    resumed = only(respond(exchange, 200, SSE, encode_sse_event("", id="x")), Reconnect).exchange
    failed = failure(resumed.receive_response(405, {}))
    assert isinstance(failed.error, ConnectionClosedError)
    assert failed.request_ids == (1,)


def test_resume_hits_expired_session() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    resumed = only(respond(exchange, 200, SSE, encode_sse_event("", id="x")), Reconnect).exchange
    events = resumed.receive_response(404, {})
    assert events[0] == SessionExpired("s1", (1,))
    assert isinstance(failure(events).error, SessionExpiredError)


def test_resumed_stream_must_be_sse() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    resumed = only(respond(exchange, 200, SSE, encode_sse_event("", id="x")), Reconnect).exchange
    assert isinstance(failure(resumed.receive_response(200, JSON)).error, RemoteProtocolError)


def test_cross_stream_isolation() -> None:
    client = initialized()
    a = post(client, make_request(1, "tools/call", {"name": "a"}))
    b = post(client, make_request(2, "tools/call", {"name": "b"}))
    get = client.open_stream()
    respond(a, 200, SSE, encode_sse_event("", id="A1"), eof=False)
    respond(b, 200, SSE, encode_sse_event("", id="B1"), encode_sse_event("", id="B2"), eof=False)
    respond(get, 200, SSE, encode_sse_event("", id="G1"), eof=False)
    ra = only(a.receive_eof(), Reconnect)
    rb = only(b.receive_eof(), Reconnect)
    rg = only(get.receive_eof(), Reconnect)
    assert [r.exchange.request.headers["Last-Event-ID"] for r in (ra, rb, rg)] == ["A1", "B2", "G1"]
    assert ra.exchange.request_ids == (1,) and rb.exchange.request_ids == (2,) and rg.exchange.request_ids == ()
    # Progress on A's resumed stream leaves B's token alone.
    respond(ra.exchange, 200, SSE, encode_sse_event("", id="A2"), eof=False)
    assert (ra.exchange.last_event_id, rb.exchange.last_event_id) == ("A2", "B2")
    assert only(ra.exchange.receive_eof(), Reconnect).last_event_id == "A2"
    assert only(respond(rb.exchange, 200, SSE), Reconnect).last_event_id == "B2"


def test_response_on_another_stream_settles_request() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    respond(exchange, 200, SSE, encode_sse_event("", id="p"), eof=False)
    get = client.open_stream()
    respond(get, 200, SSE, sse(make_response(1, {}), id="g"), eof=False)
    assert exchange.request_ids == ()
    assert exchange.receive_eof() == []  # nothing owed any more: no reconnect


def test_handshake_cancel_is_posted_and_request_keeps_reading() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "tools/call", {"name": "slow"}))
    exchange.receive_response(200, SSE)
    cancel = client.send(make_notification("notifications/cancelled", {"requestId": 1}))
    assert isinstance(cancel, Exchange) and cancel.request.method == "POST"
    assert not exchange.done
    assert received(exchange.receive_data(sse(make_response(1, {}), id="z"))) == [make_response(1, {})]


def test_abort_forgets_requests() -> None:
    client = initialized()
    exchange = post(client, make_request(1, "ping"))
    exchange.abort()
    assert exchange.done and client.exchange_for(1) is None
    assert exchange.receive_response(200, SSE) == []


# --- handshake era: DELETE ---------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204, 404, 405])
def test_delete_on_close(status: int) -> None:
    client = initialized(headers={"Authorization": "x"})
    delete = client.close()
    assert delete is not None
    assert delete.request.method == "DELETE"
    assert delete.request.headers == {
        "Authorization": "x",
        "Mcp-Session-Id": "s1",
        "MCP-Protocol-Version": HANDSHAKE,
    }
    assert respond(delete, status, {}) == []
    assert delete.done
    assert client.session_id is None


def test_delete_server_error() -> None:
    delete = initialized().close()
    assert delete is not None
    failed = failure(respond(delete, 500, {}, b"oops"))
    assert isinstance(failed.error, HTTPStatusError)


def test_close_without_session_and_send_after_close() -> None:
    client = new_client()
    assert client.close() is None
    with pytest.raises(LocalProtocolError):
        client.send(make_request(1, "ping"))
    with pytest.raises(LocalProtocolError):
        client.open_stream()


# --- modern era ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("tools/call", {"name": "add", "arguments": {}}, "add"),
        ("prompts/get", {"name": "greet"}, "greet"),
        ("resources/read", {"uri": "file:///a.txt"}, "file:///a.txt"),
        ("tools/list", {}, None),
        ("server/discover", {}, None),
    ],
)
def test_modern_request_headers(method: str, params: dict[str, Any], name: str | None) -> None:
    client = StreamableHTTPClient(URL, headers={"Authorization": "Bearer t"})
    exchange = post(client, modern_request(1, method, params))
    expected = {
        "Authorization": "Bearer t",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if name is not None:
        expected["Mcp-Name"] = name
    assert exchange.request.headers == expected
    assert exchange.modern
    body = json.loads(exchange.request.body or b"")
    assert body["params"]["_meta"][PROTOCOL_VERSION_META_KEY] == MODERN


def test_modern_mcp_name_non_ascii_is_base64() -> None:
    exchange = post(StreamableHTTPClient(URL), modern_request(1, "tools/call", {"name": "größe"}))
    value = exchange.request.headers["Mcp-Name"]
    assert value.startswith("=?base64?") and value.isascii()
    assert base64.b64decode(value[9:-2]).decode() == "größe"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [("plain", "plain"), ("a b", "a b"), (" edge", None), ("tab\t", None), ("é", None), ("=?base64?x?=", None)],
)
def test_encode_header_value(value: str, encoded: str | None) -> None:
    result = encode_header_value(value)
    if encoded is not None:
        assert result == encoded
    else:
        assert result.startswith("=?base64?") and base64.b64decode(result[9:-2]).decode() == value


def test_modern_request_never_carries_session() -> None:
    client = initialized()  # e.g. a leftover from an earlier connection
    headers = post(client, modern_request(1, "tools/list")).request.headers
    assert "Mcp-Session-Id" not in headers
    assert headers["MCP-Protocol-Version"] == MODERN


def test_modern_json_and_sse_responses() -> None:
    client = StreamableHTTPClient(URL)
    result = make_response(1, {"supportedVersions": [MODERN]})
    events = respond(post(client, modern_request(1, "server/discover")), 200, JSON, encode_message(result).encode())
    assert events == [MessageReceived(result)]
    events = respond(post(client, modern_request(2, "tools/list")), 200, SSE, sse(make_response(2, {"tools": []})))
    assert received(events) == [make_response(2, {"tools": []})]
    assert client.session_id is None and client.protocol_version is None


def test_modern_response_ignores_session_header() -> None:
    client = StreamableHTTPClient(URL)
    body = encode_message(make_response(1, {})).encode()
    events = respond(post(client, modern_request(1, "initialize")), 200, {**JSON, "Mcp-Session-Id": "zzz"}, body)
    assert client.session_id is None
    assert not any(isinstance(e, SessionIdReceived | ProtocolVersionNegotiated) for e in events)


@pytest.mark.parametrize("code", [HEADER_MISMATCH, -32021, UNSUPPORTED_PROTOCOL_VERSION])
@pytest.mark.parametrize("error_id", [1, None])
def test_modern_400_with_modern_error_is_a_message(code: int, error_id: int | None) -> None:
    client = StreamableHTTPClient(URL)
    body = encode_message(error_response(error_id, code, "nope", {"supported": [MODERN]})).encode()
    events = respond(post(client, modern_request(1, "server/discover")), 400, JSON, body)
    message = only(events, MessageReceived).message
    assert isinstance(message, JSONRPCError)
    assert (message.id, message.error.code) == (1, code)  # id:null is answered for our request
    assert client.exchange_for(1) is None


@pytest.mark.parametrize(
    "body",
    [
        b"Bad Request: No valid session ID provided",
        encode_message(error_response(None, -32000, "Bad Request: No valid session ID provided")).encode(),
        encode_message(error_response(1, INVALID_REQUEST, "Bad Request: Missing session ID")).encode(),
    ],
)
def test_modern_400_without_modern_error_is_http_error(body: bytes) -> None:
    failed = failure(respond(post(StreamableHTTPClient(URL), modern_request(1, "server/discover")), 400, JSON, body))
    assert isinstance(failed.error, HTTPStatusError)
    assert failed.error.status == 400
    assert failed.request_ids == (1,)


def test_modern_non_400_error_with_matching_id_is_a_message() -> None:
    error = error_response(1, -32601, "Method not found")
    events = respond(
        post(StreamableHTTPClient(URL), modern_request(1, "x/y")), 404, JSON, encode_message(error).encode()
    )
    assert events == [MessageReceived(error)]


def test_modern_cancel_aborts_exchange_instead_of_posting() -> None:
    client = StreamableHTTPClient(URL)
    exchange = post(client, modern_request(1, "tools/call", {"name": "slow"}))
    exchange.receive_response(200, SSE)
    action = client.send(make_notification("notifications/cancelled", {"requestId": 1, "reason": "user"}))
    assert action == AbortExchange(exchange)
    assert exchange.done and client.exchange_for(1) is None
    assert exchange.receive_data(sse(make_response(1, {}))) == []
    assert exchange.receive_network_error(NetworkError("aborted")) == []
    # Cancelling again (or something already finished) needs nothing on the wire.
    assert client.send(make_notification("notifications/cancelled", {"requestId": 1})) is None


def test_modern_notification_gets_modern_headers() -> None:
    client = StreamableHTTPClient(URL)
    post(client, modern_request(1, "tools/list"))
    headers = post(client, make_notification("notifications/roots/list_changed")).request.headers
    assert headers["MCP-Protocol-Version"] == MODERN
    assert headers["Mcp-Method"] == "notifications/roots/list_changed"


def test_modern_broken_stream_fails_even_with_event_id() -> None:
    client = StreamableHTTPClient(URL)
    exchange = post(client, modern_request(1, "tools/call", {"name": "slow"}))
    respond(exchange, 200, SSE, encode_sse_event("", id="m1"), eof=False)
    failed = failure(exchange.receive_network_error(NetworkError("reset")))
    assert isinstance(failed.error, ConnectionClosedError)
    assert failed.request_ids == (1,)
    assert "cannot resume" in str(failed.error)


def test_modern_has_no_get_stream_and_no_delete() -> None:
    client = StreamableHTTPClient(URL)
    respond(
        post(client, modern_request(1, "server/discover")), 200, JSON, encode_message(make_response(1, {})).encode()
    )
    with pytest.raises(LocalProtocolError):
        client.open_stream()
    assert client.close() is None


def test_fallback_from_modern_to_initialize() -> None:
    client = StreamableHTTPClient(URL)
    discover = post(client, modern_request(1, "server/discover"))
    assert isinstance(failure(respond(discover, 400, {}, b"Missing session ID")).error, HTTPStatusError)
    init = post(client, init_request(2))
    assert "Mcp-Method" not in init.request.headers and "MCP-Protocol-Version" not in init.request.headers
    events = respond(init, 200, {**SSE, "Mcp-Session-Id": "h1"}, sse(init_result(2)))
    assert ProtocolVersionNegotiated(HANDSHAKE) in events
    headers = post(client, make_request(3, "tools/list")).request.headers
    assert headers["Mcp-Session-Id"] == "h1" and headers["MCP-Protocol-Version"] == HANDSHAKE
    assert "Mcp-Method" not in headers


# --- a thin adapter, as FetchTransport will drive the core ------------------------------------

Script = list[tuple[int, dict[str, str], list[bytes], bool]]  # status, headers, chunks, body breaks off


def drive(client: StreamableHTTPClient, message: TransportMessage, script: Script) -> tuple[list[Event], list[str]]:
    """Perform exchanges against scripted responses, following Reconnects; return events and requests made."""
    events: list[Event] = []
    made: list[str] = []
    pending = [post(client, message)]
    while pending:
        exchange = pending.pop()
        made.append(f"{exchange.request.method} {exchange.request.headers.get('Last-Event-ID', '-')}")
        status, headers, chunks, breaks = script.pop(0)
        out = exchange.receive_response(status, headers)
        for chunk in chunks:
            if exchange.done:
                break
            out += exchange.receive_data(chunk)
        if breaks:
            out += exchange.receive_network_error(NetworkError("connection reset"))
        else:
            out += exchange.receive_eof()
        events += out
        pending += [e.exchange for e in out if isinstance(e, Reconnect)]  # after e.delay, in real life
    assert not script
    return events, made


def test_thin_adapter_resumes_until_the_response() -> None:
    client = initialized()
    body = sse(make_notification("notifications/progress", {"progress": 1}), id="1")
    script: Script = [
        (200, SSE, [encode_sse_event("", id="0", retry=10), body[:5]], True),  # breaks inside an event
        (200, SSE, [body, sse(make_notification("n2"), id="2")], False),  # server closes early
        (500, {}, [b"busy"], False),
    ]
    events, made = drive(client, make_request(1, "tools/call", {"name": "slow"}), script)
    assert made == ["POST -", "GET 0", "GET 2"]
    assert [m.method for m in received(events) if isinstance(m, JSONRPCNotification)] == [
        "notifications/progress",
        "n2",
    ]
    failed = failure(events)
    assert isinstance(failed.error, HTTPStatusError) and failed.request_ids == (1,)

    script = [
        (200, SSE, [encode_sse_event("", id="a")], False),
        (200, SSE, [b": still working\n\n"], True),
        (200, SSE, [sse(make_response(2, {"content": []}), id="b")], False),
    ]
    events, made = drive(client, make_request(2, "tools/call", {"name": "slow"}), script)
    assert made == ["POST -", "GET a", "GET a"]
    assert received(events) == [make_response(2, {"content": []})]
    assert client.exchange_for(2) is None


# --- 2026-07-28: Mcp-Param-* headers (SEP-2243) ------------------------------------------------------

PARAM_TOOLS = {
    "tools": [
        {
            "name": "regional",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "n": {"type": "integer", "x-mcp-header": "N"},
                    "flag": {"type": "boolean", "x-mcp-header": "Flag"},
                    "plain": {"type": "string"},
                },
            },
        },
        {"name": "broken", "inputSchema": {"properties": {"x": {"type": "object", "x-mcp-header": "X"}}}},
    ]
}


def listed_client() -> StreamableHTTPClient:
    client = new_client()
    listing = post(client, modern_request(1, "tools/list"))
    respond(listing, 200, JSON, encode_message(make_response(1, PARAM_TOOLS)).encode())
    return client


def test_tool_calls_mirror_annotated_arguments_into_param_headers() -> None:
    client = listed_client()
    arguments = {"region": "Hello, 世界", "n": 42, "flag": False, "plain": "not mirrored"}
    headers = post(
        client, modern_request(2, "tools/call", {"name": "regional", "arguments": arguments})
    ).request.headers
    assert headers["Mcp-Param-Region"] == encode_header_value("Hello, 世界")
    assert headers["Mcp-Param-N"] == "42" and headers["Mcp-Param-Flag"] == "false"
    assert not any(name.startswith("Mcp-Param-Plain") for name in headers)


def test_null_arguments_and_invalid_tools_send_no_param_headers() -> None:
    client = listed_client()
    nulls = post(client, modern_request(2, "tools/call", {"name": "regional", "arguments": {"region": None}}))
    broken = post(client, modern_request(3, "tools/call", {"name": "broken", "arguments": {"x": {}}}))
    for exchange in (nulls, broken):
        assert not any(name.startswith("Mcp-Param-") for name in exchange.request.headers)

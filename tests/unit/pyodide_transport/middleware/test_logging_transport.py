"""LoggingTransport: one structured record per message and direction, nothing secret in it."""

from __future__ import annotations

import logging

import pytest

from pyodide_transport import Client, InMemoryTransport
from pyodide_transport.errors import NetworkError
from pyodide_transport.messages import encode_message, error_response, make_notification, make_request, make_response
from pyodide_transport.middleware import LoggingTransport, LogRecord, redact, short_id

try:
    from middleware_helpers import FakeClock, ScriptedWire, TinyServer
except ImportError:  # pragma: no cover - another import mode
    from .middleware_helpers import FakeClock, ScriptedWire, TinyServer  # type: ignore[no-redef,import-not-found,unused-ignore]

SESSION = "0123456789abcdef-full-session-id"
TOKEN = "s3cr3t-t0k3n-value"


async def test_one_record_per_message_with_sizes_and_elapsed() -> None:
    clock = FakeClock()
    records: list[LogRecord] = []
    wire = ScriptedWire()
    logged = LoggingTransport(wire, on_record=records.append, clock=clock)

    request = make_request(1, "tools/list")
    await logged.send(request)
    clock.advance(0.25)
    wire.inbox.put_nowait(make_notification("notifications/message", {"level": "info", "data": "hi"}))
    wire.inbox.put_nowait(make_request("s1", "ping"))
    response = make_response(1, {"tools": []})
    wire.inbox.put_nowait(response)
    for _ in range(3):
        await logged.receive()
    clock.advance(0.5)
    await logged.send(make_response("s1", {}))
    wire.inbox.put_nowait(error_response(2, -32601, "no such method"))
    await logged.receive()

    assert [(r.direction, r.kind, r.method, r.id, r.elapsed) for r in records] == [
        ("out", "request", "tools/list", 1, None),
        ("in", "notification", "notifications/message", None, None),
        ("in", "request", "ping", "s1", None),
        ("in", "response", "tools/list", 1, 0.25),
        ("out", "response", "ping", "s1", 0.5),
        ("in", "error", None, 2, None),  # no request of ours had id 2
    ]
    assert records[0].size == len(encode_message(request).encode()) and records[3].size == len(encode_message(response))
    assert records[5].code == -32601
    assert all(r.transport == "scripted" and r.session == "01234567…" and r.payload is None for r in records)
    assert records[3].summary() == f"← response tools/list #1 ({records[3].size} B, 250.0 ms)"


async def test_failures_are_recorded_by_type_and_still_raised() -> None:
    records: list[LogRecord] = []
    wire = ScriptedWire()
    logged = LoggingTransport(wire, on_record=records.append)
    wire.failing = NetworkError(f"server said Authorization: Bearer {TOKEN}")
    with pytest.raises(NetworkError):
        await logged.send(make_request(1, "tools/call"))
    wire.inbox.put_nowait(NetworkError("stream broke").losing((1,)))
    with pytest.raises(NetworkError):
        await logged.receive()
    assert [(r.direction, r.kind, r.error, r.request_ids) for r in records] == [
        ("out", "request", "NetworkError", ()),
        ("in", "failure", "NetworkError", (1,)),
    ]
    assert TOKEN not in repr(records)  # error texts are never recorded
    assert records[1].summary() == "← failure (failed: NetworkError, loses #1)"


async def test_to_the_logger_at_info_with_extra_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pyodide_transport.middleware")
    wire = ScriptedWire()
    await LoggingTransport(wire).send(make_request(7, "tools/call", {"name": "echo"}))
    (entry,) = [r for r in caplog.records if r.name == "pyodide_transport.middleware"]
    assert entry.levelno == logging.INFO and entry.getMessage().startswith("→ request tools/call #7 (")
    assert (entry.mcp_direction, entry.mcp_kind, entry.mcp_method, entry.mcp_id) == ("out", "request", "tools/call", 7)  # type: ignore[attr-defined]
    assert entry.mcp_session == "01234567…" and entry.mcp_size > 0  # type: ignore[attr-defined]


async def test_a_callback_alone_leaves_the_default_logger_silent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    records: list[LogRecord] = []
    await LoggingTransport(ScriptedWire(), on_record=records.append).send(make_notification("n"))
    assert len(records) == 1 and not caplog.records


async def test_a_failing_callback_never_breaks_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    def broken(record: LogRecord) -> None:
        raise RuntimeError("bug in the page")

    wire = ScriptedWire()
    await LoggingTransport(wire, on_record=broken).send(make_notification("n"))
    assert len(wire.sent) == 1 and "on_record callback failed" in caplog.text


async def test_secrets_never_reach_records_or_log_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pyodide_transport.middleware")
    records: list[LogRecord] = []
    wire = ScriptedWire()
    logger = logging.getLogger("pyodide_transport.middleware")
    for payloads in (False, True):
        logged = LoggingTransport(wire, logger=logger, on_record=records.append, payloads=payloads)
        params = {
            "name": "login",
            "arguments": {"user": "ann", "password": TOKEN, "api_key": TOKEN, "header": f"Bearer {TOKEN}"},
            "_meta": {"progressToken": 5, "authorization": TOKEN, "Mcp-Session-Id": SESSION, "x-refresh-token": TOKEN},
        }
        await logged.send(make_request(1, "tools/call", params))
        wire.inbox.put_nowait(make_response(1, {"content": [], "access_token": TOKEN, "sessionId": SESSION}))
        await logged.receive()
    text = caplog.text + repr(records)
    assert TOKEN not in text and SESSION not in text and "89abcdef" not in text
    assert records[0].payload is None and records[1].payload is None
    sent = records[2].payload
    assert sent is not None
    assert sent["params"]["arguments"] == {
        "user": "ann",
        "password": "[redacted]",
        "api_key": "[redacted]",
        "header": "[redacted]",
    }
    assert sent["params"]["_meta"] == {
        "progressToken": 5,
        "authorization": "[redacted]",
        "Mcp-Session-Id": "01234567…",
        "x-refresh-token": "[redacted]",
    }
    assert records[3].payload == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"content": [], "access_token": "[redacted]", "sessionId": "01234567…"},
    }
    assert "login" in caplog.text  # the rest of the payload is shown


def test_redaction_rules() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
    value = {
        "maxTokens": 100,
        "usage": {"outputTokens": 3},
        "Authorization": "anything",
        "Cookie": "a=b",
        "clientSecret": "x",
        "auth": "x",
        "author": "Ann",
        "nested": [{"id_token": "x"}, jwt, "Basic dXNlcjpwYXNz", "Basic setup guide", "plain"],
    }
    assert redact(value) == {
        "maxTokens": 100,
        "usage": {"outputTokens": 3},
        "Authorization": "[redacted]",
        "Cookie": "[redacted]",
        "clientSecret": "[redacted]",
        "auth": "[redacted]",
        "author": "Ann",
        "nested": [{"id_token": "[redacted]"}, "[redacted]", "[redacted]", "Basic setup guide", "plain"],
    }
    assert short_id(None) is None and short_id("abc") == "abc" and short_id("abcdefghij") == "abcdefgh…"


async def test_a_real_client_session_through_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pyodide_transport.middleware")
    records: list[LogRecord] = []
    client_end, server_end = InMemoryTransport.create_pair()
    logged = LoggingTransport(
        client_end, on_record=records.append, logger=logging.getLogger("pyodide_transport.middleware")
    )
    async with TinyServer(server_end), Client(logged, protocol_version="2025-11-25") as client:
        await client.list_tools()
    kinds = [(r.direction, r.kind, r.method) for r in records]
    assert kinds[:4] == [
        ("out", "request", "initialize"),
        ("in", "response", "initialize"),
        ("out", "notification", "notifications/initialized"),
        ("out", "request", "tools/list"),
    ]
    assert kinds[4] == ("in", "response", "tools/list") and records[4].elapsed is not None
    assert records[4].elapsed >= 0
    assert caplog.text.count("pyodide_transport.middleware") >= 5

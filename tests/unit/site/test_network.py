"""The network view's recorder and its diagnoses, with a fake inner HTTP client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from ptsite.network import Exchange, NetworkLog, RecordingHTTPClient, diagnose, key_headers, redact
from ptsite.tracing import TraceEntry

from pyodide_transport.errors import CORSError, NetworkError
from pyodide_transport.transport import HTTPClient

ORIGIN = "http://127.0.0.1:8000"
OTHER = "http://localhost:9000/mcp"


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str], chunks: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._chunks = chunks
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            await asyncio.sleep(0)
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


class FakeClient:
    def __init__(self, answers: list[FakeResponse | Exception]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> FakeResponse:
        self.seen.append((method, url, dict(headers)))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.005
        return self.t


def _sse(*messages: dict[str, Any]) -> bytes:
    return b"".join(f"id: {i}\ndata: {json.dumps(m)}\n\n".encode() for i, m in enumerate(messages))


def _recorder(answers: list[FakeResponse | Exception], **kw: Any) -> tuple[RecordingHTTPClient, NetworkLog, list[Any]]:
    related: list[Any] = []
    log = NetworkLog(origin=ORIGIN)
    client = RecordingHTTPClient(
        FakeClient(answers), log, relate=lambda m, r: related.append((m.get("method"), r)), clock=Clock(), **kw
    )
    return client, log, related


async def _read(response: Any) -> bytes:
    return b"".join([chunk async for chunk in response.chunks()])


def test_it_is_an_http_client_and_redacts_authorization() -> None:
    client, _, _ = _recorder([])
    assert isinstance(client, HTTPClient)
    assert redact({"Authorization": "Bearer secret", "Accept": "x"}) == {
        "Authorization": "Bearer [redacted]",
        "Accept": "x",
    }
    assert redact({"authorization": "secret"}) == {"authorization": "[redacted]"}


def test_a_streamed_post_is_recorded_with_timings_and_its_messages_related() -> None:
    body = _sse(
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 5, "progress": 1}},
        {"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {}},
        {"jsonrpc": "2.0", "id": 5, "result": {}},
    )
    headers = {"content-type": "text/event-stream", "mcp-session-id": "abc"}
    client, log, related = _recorder([FakeResponse(200, headers, [body[:30], body[30:]])])
    post = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "x"}}).encode()

    async def go() -> bytes:
        response = await client.request(
            "POST", OTHER, {"Authorization": "Bearer t", "Mcp-Session-Id": "abc", "Mcp-Param-Region": "eu"}, post
        )
        (exchange,) = log.exchanges
        assert exchange.state == "streaming" and exchange.headers_after is not None
        data = await _read(response)
        await response.aclose()
        return data

    assert asyncio.run(go()) == body
    (exchange,) = log.exchanges
    assert exchange.rpc_method == "tools/call" and exchange.rpc_id == "5" and exchange.state == "done"
    assert exchange.request_headers["Authorization"] == "Bearer [redacted]"
    assert exchange.messages == 3 and exchange.body_bytes == len(body)
    assert related == [("notifications/progress", "5"), ("sampling/createMessage", "5")]
    assert exchange.ended_after is not None and exchange.headers_after is not None
    assert exchange.ended_after > exchange.headers_after
    assert exchange.summary() == "POST /mcp tools/call #5 → 200 text/event-stream"
    assert "to headers" in exchange.duration_text()
    rows = key_headers(exchange)
    assert ("sent", "Mcp-Session-Id", "abc") in rows and ("sent", "Mcp-Param-Region", "eu") in rows
    assert ("received", "Mcp-Session-Id", "abc") in rows
    assert ("received", "Content-Type", "text/event-stream") in rows
    assert not diagnose(exchange)


def test_the_get_stream_relates_to_no_request() -> None:
    body = _sse({"jsonrpc": "2.0", "id": 1, "method": "roots/list"})
    client, log, related = _recorder([FakeResponse(200, {"content-type": "text/event-stream"}, [body])])

    async def go() -> None:
        await _read(await client.request("GET", OTHER, {"Last-Event-ID": "3"}))

    asyncio.run(go())
    assert related == [("roots/list", None)]
    assert ("sent", "Last-Event-ID", "3") in key_headers(log.exchanges[0])


def test_failures_are_typed_with_the_explorers_text_and_diagnosed() -> None:
    cors = CORSError(OTHER, "TypeError: Failed to fetch")
    client, log, _ = _recorder([cors, NetworkError("no route")])

    async def go() -> None:
        for _ in range(2):
            with pytest.raises(NetworkError):
                await client.request("POST", OTHER, {"Mcp-Param-Region": "eu"}, b'{"id":1,"method":"initialize"}')

    asyncio.run(go())
    blocked, down = log.exchanges
    assert blocked.failure_kind == "cors" and blocked.state == "failed"
    assert blocked.failure.startswith(f"Blocked by CORS at {OTHER}")  # describe_error's text
    (finding,) = log.diagnoses(blocked)
    assert finding.code == "cors" and "Access-Control-Allow-Origin" in finding.text
    assert "Mcp-Param-Region" in finding.text
    blocked.probe = "reachable"  # a no-cors request got an (opaque) answer: the server is up, CORS it is
    assert "answers (a no-cors probe reached it)" in log.diagnoses(blocked)[0].text
    blocked.probe = "unreachable"  # the probe failed too: down, not CORS
    assert [d.code for d in log.diagnoses(blocked)] == ["unreachable"]
    assert down.failure_kind == "network" and down.failure.startswith("Network error")
    assert [d.code for d in log.diagnoses(down)] == ["network"]


def test_a_cancelled_request_or_stream_is_aborted() -> None:
    class Hanging(FakeResponse):
        async def chunks(self) -> AsyncIterator[bytes]:
            yield b"data: {}\n\n"
            await asyncio.sleep(10)

    client, log, _ = _recorder([Hanging(200, {"content-type": "text/event-stream"}, [])])

    async def go() -> None:
        response = await client.request("GET", OTHER, {})
        task = asyncio.ensure_future(_read(response))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert log.exchanges[0].state == "aborted"


def _exchange(**kw: Any) -> Exchange:
    base: dict[str, Any] = {
        "seq": 1,
        "method": "POST",
        "url": OTHER,
        "request_headers": {},
        "rpc_method": "tools/call",
        "rpc_id": "1",
        "started": 0.0,
        "cross_origin": True,
    }
    base.update(kw)
    return Exchange(**base)


def test_a_hidden_session_id_is_diagnosed_then_blamed_when_the_next_request_fails() -> None:
    init = _exchange(rpc_method="initialize", status=200, response_headers={"content-type": "application/json"})
    assert [d.code for d in diagnose(init)] == ["session-hidden"]
    json_type = {"content-type": "application/json"}
    assert not diagnose(_exchange(rpc_method="initialize", status=200, response_headers=json_type, cross_origin=False))
    nxt = _exchange(seq=2, rpc_method="tools/list", status=400, response_headers={"content-type": "text/plain"})
    codes = [d.code for d in diagnose(nxt, [init])]
    assert codes == ["session-not-exposed"]
    assert "Access-Control-Expose-Headers" in diagnose(nxt, [init])[0].text
    seen = _exchange(rpc_method="initialize", status=200, response_headers={"mcp-session-id": "s", **json_type})
    assert not diagnose(seen) and not diagnose(nxt, [seen])


def test_other_diagnoses() -> None:
    hidden = diagnose(_exchange(status=401, response_headers={}))
    assert [d.code for d in hidden] == ["challenge-hidden"] and "WWW-Authenticate" in hidden[0].text
    assert not diagnose(_exchange(status=401, response_headers={"www-authenticate": "Bearer"}))
    get = {"method": "GET", "rpc_method": "", "rpc_id": None}
    assert [d.code for d in diagnose(_exchange(status=405, **get))] == ["get-405"]
    assert [d.code for d in diagnose(_exchange(status=404, **get))] == ["get-404"]
    wrong = diagnose(_exchange(status=200, response_headers={"content-type": "text/html"}))
    assert [d.code for d in wrong] == ["content-type"] and "text/html" in wrong[0].text
    assert not diagnose(_exchange(status=202, rpc_id=None, rpc_method="notifications/initialized"))
    log = NetworkLog(origin=ORIGIN)
    answer = log.begin("POST", OTHER, {}, b'{"jsonrpc":"2.0","id":0,"result":{}}', 0.0)
    assert answer.summary() == "POST /mcp (response) #0 → …"
    log.answered(answer, 202, {}, 0.01)
    assert not log.diagnoses(answer)
    assert [d.code for d in diagnose(_exchange(status=403, response_headers={"content-type": "text/plain"}))] == [
        "origin-refused"
    ]


def test_oauth_entries_name_the_recorded_exchange_or_join_the_log() -> None:
    log = NetworkLog(origin=ORIGIN)
    url = "http://127.0.0.1:8000/.well-known/oauth-protected-resource"
    log.begin("GET", url, {}, None, 1.0)
    body = {"http": f"GET {url}", "status": 200, "outcome": "ok"}
    assert log.oauth(TraceEntry(0, "out", "oauth", "resource-metadata", "", 1.0, None, body)).purpose
    assert len(log.exchanges) == 1 and not log.exchanges[0].cross_origin
    other = {"http": "POST http://127.0.0.1:8000/token", "status": None, "outcome": "NetworkError"}
    added = log.oauth(TraceEntry(0, "out", "oauth", "token", "", 2.0, None, other))
    assert len(log.exchanges) == 2 and added.purpose == "token" and added.state == "failed"


def test_the_log_is_capped_and_tells_its_listener() -> None:
    seen: list[int] = []
    log = NetworkLog(lambda e: seen.append(e.seq), max_exchanges=2)
    for _ in range(3):
        log.begin("POST", OTHER, {}, None, 0.0)
    assert [e.seq for e in log.exchanges] == [2, 3] and seen == [1, 2, 3]

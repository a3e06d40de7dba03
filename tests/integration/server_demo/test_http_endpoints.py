"""Streamable HTTP against a real uvicorn server: one suite over the three modes, every status rule."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from live_server import (
    BODY_LIMIT,
    IDLE_TIMEOUT,
    INIT,
    MAX_SESSIONS,
    MODERN,
    Live,
    headers,
    initialize,
    modern_body,
    modern_headers,
    post,
    read_reply,
    sse_events,
)

from pyodide_transport.streamable_http import BROWSER_REQUEST_HEADERS, EXPOSED_RESPONSE_HEADERS

MODES = {"sse": "/mcp", "json": "/mcp/json", "stateless": "/mcp/stateless"}
STATEFUL = ["sse", "json"]
ALLOWED_ORIGIN = "http://localhost:5173"


def call(request_id: int, name: str, arguments: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


# -- basic operation in every mode ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_initialize_and_call_in_every_mode(client: httpx.AsyncClient, live: Live, mode: str) -> None:
    url = MODES[mode]
    response, reply, _ = await post(client, url, INIT)
    assert response.status_code == 200
    assert reply["result"]["serverInfo"]["name"] == "pyodide-transport-demo"
    session_id = response.headers.get("mcp-session-id")
    if mode == "stateless":
        assert session_id is None
        assert response.headers["content-type"] == "application/json"
    else:
        assert session_id is not None and len(session_id) >= 22  # >= 128 random bits, URL-safe
        assert session_id in live.opened
    extra = {"mcp-protocol-version": "2025-11-25"}
    response, reply, _ = await post(client, url, call(1, "calculate", {"a": 2, "b": 5}), session_id, **extra)
    assert response.status_code == 200
    assert reply["result"]["structuredContent"]["result"] == 7
    expected = "text/event-stream" if mode == "sse" else "application/json"
    assert response.headers["content-type"].startswith(expected)


async def test_sse_mode_sends_a_priming_event_with_id_and_retry(client: httpx.AsyncClient) -> None:
    session_id = await initialize(client, "/mcp")
    request = client.build_request("POST", "/mcp", json=call(1, "echo", {"message": "x"}), headers=headers(session_id))
    response = await client.send(request, stream=True)
    events = [e async for e in sse_events(response)]
    assert events[0].id is not None and events[0].data == "" and events[0].retry == 50
    assert events[-1].json()["result"]["content"][0]["text"] == "x"
    assert len({e.id.rsplit(".", 1)[0] for e in events if e.id}) == 1  # one stream


@pytest.mark.parametrize("mode", MODES)
async def test_notifications_get_202(client: httpx.AsyncClient, mode: str) -> None:
    session_id = await initialize(client, MODES[mode])
    note = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
    response = await client.post(MODES[mode], json=note, headers=headers(session_id))
    assert response.status_code == 202
    assert response.content == b""


@pytest.mark.parametrize("mode", ["json", "stateless"])
async def test_json_mode_streams_only_when_progress_was_asked_for(client: httpx.AsyncClient, mode: str) -> None:
    session_id = await initialize(client, MODES[mode])
    body = call(1, "test_tool_with_progress", progressToken="tok")
    response, reply, others = await post(client, MODES[mode], body, session_id)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert [m["params"]["progress"] for m in others] == [0, 50, 100]
    assert reply["result"]["isError"] is False
    response, reply, _ = await post(client, MODES[mode], body, session_id, accept="application/json")
    assert response.headers["content-type"] == "application/json"


# -- status codes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", STATEFUL)
async def test_400_without_session_and_404_for_unknown_session(client: httpx.AsyncClient, mode: str) -> None:
    response = await client.post(MODES[mode], json=call(1, "echo", {"message": "x"}), headers=headers())
    assert response.status_code == 400
    assert "Mcp-Session-Id" in response.json()["error"]["message"]
    response = await client.post(MODES[mode], json=call(1, "echo", {"message": "x"}), headers=headers("nope"))
    assert response.status_code == 404


@pytest.mark.parametrize("mode", MODES)
async def test_400_for_bad_bodies_and_versions(client: httpx.AsyncClient, mode: str) -> None:
    url = MODES[mode]
    session_id = await initialize(client, url)
    h = headers(session_id)
    response = await client.post(url, content=b"{not json", headers=h)
    assert (response.status_code, response.json()["error"]["code"]) == (400, -32700)
    assert response.json()["id"] is None
    response = await client.post(url, json={"jsonrpc": "1.0", "id": 1, "method": "ping"}, headers=h)
    assert (response.status_code, response.json()["error"]["code"]) == (400, -32600)
    response = await client.post(url, json=[call(1, "echo", {"message": "x"})], headers=h)
    assert response.status_code == 400
    assert "batch" in response.json()["error"]["message"]
    bad_version = headers(session_id, **{"mcp-protocol-version": "1999-01-01"})
    response = await client.post(url, json=call(1, "echo", {"message": "x"}), headers=bad_version)
    assert response.status_code == 400
    assert response.json()["error"]["data"]["requested"] == "1999-01-01"


@pytest.mark.parametrize("mode", MODES)
async def test_405_for_other_methods(client: httpx.AsyncClient, mode: str) -> None:
    response = await client.put(MODES[mode], content=b"{}", headers=headers())
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    if mode == "stateless":
        for method in ("GET", "DELETE"):
            response = await client.request(method, MODES[mode], headers=headers(accept="text/event-stream"))
            assert response.status_code == 405


@pytest.mark.parametrize(
    ("mode", "accept", "status"),
    [
        ("sse", "application/json", 406),
        ("sse", "text/event-stream", 406),
        ("sse", "text/html", 406),
        ("sse", "*/*", 200),
        ("json", "text/event-stream", 406),
        ("json", "application/json", 200),
        ("stateless", "text/html", 406),
        ("stateless", "application/json", 200),
    ],
)
async def test_406_when_accept_lacks_a_needed_type(
    client: httpx.AsyncClient, mode: str, accept: str, status: int
) -> None:
    response = await client.post(MODES[mode], json=INIT, headers=headers(accept=accept))
    assert response.status_code == status
    await response.aread()


@pytest.mark.parametrize("mode", STATEFUL)
async def test_get_needs_event_stream_accept(client: httpx.AsyncClient, mode: str) -> None:
    session_id = await initialize(client, MODES[mode])
    response = await client.get(MODES[mode], headers=headers(session_id, accept="application/json"))
    assert response.status_code == 406


@pytest.mark.parametrize("mode", MODES)
async def test_413_for_oversized_bodies(client: httpx.AsyncClient, mode: str) -> None:
    big = call(1, "echo", {"message": "x" * (BODY_LIMIT + 10)})
    response = await client.post(MODES[mode], json=big, headers=headers())
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        data = json.dumps(big).encode()
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    response = await client.post(MODES[mode], content=chunks(), headers=headers())
    assert response.status_code == 413
    response, _reply, _ = await post(client, MODES[mode], INIT)  # the server keeps serving
    assert response.status_code == 200


@pytest.mark.parametrize("mode", MODES)
async def test_415_for_non_json_bodies(client: httpx.AsyncClient, mode: str) -> None:
    h = {**headers(), "content-type": "text/plain"}
    response = await client.post(MODES[mode], content=json.dumps(INIT), headers=h)
    assert response.status_code == 415


@pytest.mark.parametrize("mode", STATEFUL)
async def test_503_when_sessions_run_out(client: httpx.AsyncClient, live: Live, mode: str) -> None:
    for _ in range(MAX_SESSIONS):
        await initialize(client, MODES[mode])
    response = await client.post(MODES[mode], json=INIT, headers=headers())
    assert response.status_code == 503
    assert response.headers["retry-after"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "bad",
    [{"origin": "http://evil.example.com"}, {"host": "evil.example.com"}, {"origin": "null"}],
    ids=["origin", "host", "null-origin"],
)
async def test_403_for_foreign_origin_or_host(client: httpx.AsyncClient, mode: str, bad: dict[str, str]) -> None:
    response = await client.post(MODES[mode], json=INIT, headers={**headers(), **bad})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("mode", STATEFUL)
async def test_409_for_a_second_standalone_stream(client: httpx.AsyncClient, mode: str) -> None:
    session_id = await initialize(client, MODES[mode])
    h = headers(session_id, accept="text/event-stream")
    async with client.stream("GET", MODES[mode], headers=h) as first:
        assert first.status_code == 200
        second = await client.get(MODES[mode], headers=h)
        assert second.status_code == 409


# -- CORS --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_cors_preflight_and_exposure(client: httpx.AsyncClient, mode: str) -> None:
    preflight = {
        "origin": ALLOWED_ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, mcp-session-id, mcp-param-region",
    }
    response = await client.options(MODES[mode], headers=preflight)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert allowed >= {*BROWSER_REQUEST_HEADERS, "mcp-param-region"}
    assert {"GET", "POST", "DELETE"} <= {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    response = await client.post(MODES[mode], json=INIT, headers={**headers(), "origin": ALLOWED_ORIGIN})
    await response.aread()
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {h.lower() for h in EXPOSED_RESPONSE_HEADERS}
    error = await client.post(MODES[mode], content=b"{", headers={**headers(), "origin": ALLOWED_ORIGIN})
    assert error.status_code == 400
    assert error.headers["access-control-allow-origin"] == ALLOWED_ORIGIN  # errors stay readable


async def test_cors_preflight_from_a_foreign_origin_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/mcp", headers={"origin": "https://evil.example.com", "access-control-request-method": "POST"}
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


async def test_no_cors_headers_without_origin(client: httpx.AsyncClient) -> None:
    response = await client.post("/mcp/json", json=INIT, headers=headers())
    assert "access-control-allow-origin" not in response.headers


# -- sessions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", STATEFUL)
async def test_delete_ends_the_session(client: httpx.AsyncClient, live: Live, mode: str) -> None:
    session_id = await initialize(client, MODES[mode])
    response = await client.delete(MODES[mode], headers=headers(session_id))
    assert response.status_code == 200
    assert session_id in live.closed
    response = await client.post(MODES[mode], json=call(1, "echo", {"message": "x"}), headers=headers(session_id))
    assert response.status_code == 404
    response = await client.delete(MODES[mode], headers=headers(session_id))
    assert response.status_code == 404
    response = await client.delete(MODES[mode], headers=headers())
    assert response.status_code == 400


@pytest.mark.parametrize("mode", STATEFUL)
async def test_idle_sessions_expire(client: httpx.AsyncClient, live: Live, mode: str) -> None:
    session_id = await initialize(client, MODES[mode])
    live.clock.now += IDLE_TIMEOUT / 2
    response, _, _ = await post(client, MODES[mode], call(1, "echo", {"message": "x"}), session_id)
    assert response.status_code == 200  # activity keeps it alive
    live.clock.now += IDLE_TIMEOUT + 1
    response = await client.post(MODES[mode], json=call(2, "echo", {"message": "x"}), headers=headers(session_id))
    assert response.status_code == 404
    assert session_id in live.closed


async def test_initialize_with_a_session_id_is_rejected(client: httpx.AsyncClient) -> None:
    session_id = await initialize(client, "/mcp")
    response = await client.post("/mcp", json=INIT, headers=headers(session_id))
    assert response.status_code == 400


# -- SSE resumption ------------------------------------------------------------------------------------------


async def _start_stream(
    client: httpx.AsyncClient, session_id: str | None, body: dict[str, Any]
) -> tuple[httpx.Response, AsyncIterator[Any]]:
    request = client.build_request("POST", "/mcp", json=body, headers=headers(session_id))
    response = await client.send(request, stream=True)
    return response, sse_events(response).__aiter__()


async def test_resume_after_a_dropped_connection_within_the_same_stream(client: httpx.AsyncClient) -> None:
    session_id = await initialize(client, "/mcp")
    body = call(7, "long_running", {"steps": 8, "delay_ms": 30}, progressToken="p")
    response, events = await _start_stream(client, session_id, body)
    priming = await events.__anext__()
    first = await events.__anext__()
    assert first.json()["params"]["progress"] == 1
    await response.aclose()  # the connection drops; the tool keeps running
    await asyncio.sleep(0.1)
    h = headers(session_id, accept="text/event-stream", **{"last-event-id": first.id})
    async with client.stream("GET", "/mcp", headers=h) as resumed:
        assert resumed.status_code == 200
        rest = [e async for e in sse_events(resumed)]
    messages = [e.json() for e in rest]
    progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
    assert progress == list(range(2, 9))  # nothing lost, nothing repeated
    assert messages[-1]["id"] == 7 and messages[-1]["result"]["content"][0]["text"] == "completed 8 steps"
    stream_of = {e.id.rsplit(".", 1)[0] for e in [priming, first, *rest]}
    assert len(stream_of) == 1


async def test_replay_never_crosses_streams(client: httpx.AsyncClient) -> None:
    session_id = await initialize(client, "/mcp")
    response_a, events_a = await _start_stream(
        client, session_id, call(1, "long_running", {"steps": 3, "delay_ms": 50}, progressToken="a")
    )
    priming_a = await events_a.__anext__()
    await response_a.aclose()
    _response_b, reply_b, _others_b = await post(
        client, "/mcp", call(2, "long_running", {"steps": 3, "delay_ms": 1}, progressToken="b"), session_id
    )
    assert reply_b["id"] == 2
    await asyncio.sleep(0.3)  # stream A finishes while nobody reads it
    h = headers(session_id, accept="text/event-stream", **{"last-event-id": priming_a.id})
    async with client.stream("GET", "/mcp", headers=h) as resumed:
        replayed = [e.json() for e in [e async for e in sse_events(resumed)] if e.data]
    assert {m["params"]["progressToken"] for m in replayed if "method" in m} == {"a"}
    assert [m["id"] for m in replayed if "id" in m] == [1]


async def test_server_closed_stream_resumes_with_the_result(client: httpx.AsyncClient) -> None:
    session_id = await initialize(client, "/mcp")
    _response, events = await _start_stream(client, session_id, call(3, "test_reconnection"))
    seen = [e async for e in events]
    assert seen[0].retry == 50
    assert not [e for e in seen if e.data]  # closed early, before the result
    h = headers(session_id, accept="text/event-stream", **{"last-event-id": seen[-1].id})
    async with client.stream("GET", "/mcp", headers=h) as resumed:
        replies = [e.json() for e in [e async for e in sse_events(resumed)] if e.data]
    assert replies[-1]["result"]["content"][0]["text"] == "Reconnection test completed successfully"


@pytest.mark.parametrize("last_event_id", ["garbage", "someone-else.1", "abc.x"])
async def test_unknown_last_event_id_is_400(client: httpx.AsyncClient, last_event_id: str) -> None:
    session_id = await initialize(client, "/mcp")
    h = headers(session_id, accept="text/event-stream", **{"last-event-id": last_event_id})
    response = await client.get("/mcp", headers=h)
    assert response.status_code == 400


async def test_standalone_stream_carries_subscription_updates(client: httpx.AsyncClient) -> None:
    session_id = await initialize(client, "/mcp")
    h = headers(session_id, accept="text/event-stream")
    async with client.stream("GET", "/mcp", headers=h) as stream:
        events = sse_events(stream).__aiter__()
        assert (await events.__anext__()).data == ""  # priming
        await post(
            client,
            "/mcp",
            {"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": "demo://counter"}},
            session_id,
        )
        update = await events.__anext__()
        assert update.json() == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": "demo://counter"},
        }


async def test_json_mode_sampling_uses_the_standalone_stream(client: httpx.AsyncClient) -> None:
    session_id = await initialize(client, "/mcp/json", sampling={})
    h = headers(session_id, accept="text/event-stream")
    async with client.stream("GET", "/mcp/json", headers=h) as stream:
        events = sse_events(stream).__aiter__()
        call_task = asyncio.create_task(
            client.post("/mcp/json", json=call(5, "test_sampling", {"prompt": "hi"}), headers=headers(session_id))
        )
        request = (await events.__anext__()).json()
        assert request["method"] == "sampling/createMessage"
        answer = {
            "jsonrpc": "2.0",
            "id": request["id"],
            "result": {"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"},
        }
        ack = await client.post("/mcp/json", json=answer, headers=headers(session_id))
        assert ack.status_code == 202
        reply = (await call_task).json()
    assert reply["result"]["content"][0]["text"] == "LLM response: ok"


async def test_stateless_has_no_back_channel(client: httpx.AsyncClient) -> None:
    _response, reply, _ = await post(client, "/mcp/stateless", call(1, "test_sampling", {"prompt": "x"}))
    assert reply["error"]["code"] == -32600
    assert "cannot carry" in reply["error"]["message"]


# -- the 2026-07-28 era on the same endpoints -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_modern_discover_and_call(client: httpx.AsyncClient, mode: str) -> None:
    response, reply, _ = await post(
        client, MODES[mode], modern_body(1, "server/discover"), **modern_headers("server/discover")
    )
    assert response.status_code == 200
    assert "mcp-session-id" not in response.headers
    assert MODERN in reply["result"]["supportedVersions"]
    body = modern_body(2, "tools/call", {"name": "echo", "arguments": {"message": "hi"}})
    h = {**modern_headers("tools/call", "echo"), "mcp-session-id": "ignored"}
    response = await client.post(MODES[mode], json=body, headers=h)
    reply, _ = await read_reply(response, 2)
    assert reply["result"]["content"][0]["text"] == "hi"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"mcp-method": "tools/list"}, 400, -32020),
        ({"mcp-name": "other"}, 400, -32020),
        ({"drop_meta": "1"}, 400, -32602),
        ({"body_version": "2099-01-01", "mcp-protocol-version": "2099-01-01"}, 400, -32022),
        ({"method": "no/such"}, 404, -32601),
    ],
)
async def test_modern_errors(
    client: httpx.AsyncClient, mode: str, change: dict[str, str], status: int, code: int
) -> None:
    change = dict(change)
    method = change.pop("method", "tools/call")
    body = modern_body(1, method, {"name": "echo", "arguments": {"message": "x"}})
    if change.pop("drop_meta", None):
        del body["params"]["_meta"]
    if (version := change.pop("body_version", None)) is not None:
        body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = version
    h = {**modern_headers(method, "echo" if method == "tools/call" else None), **change}
    response = await client.post(MODES[mode], json=body, headers=h)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["id"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_modern_get_and_delete_are_405(client: httpx.AsyncClient, mode: str) -> None:
    for method in ("GET", "DELETE"):
        h = {"accept": "text/event-stream", "mcp-protocol-version": MODERN}
        response = await client.request(method, MODES[mode], headers=h)
        assert response.status_code == 405


@pytest.mark.parametrize("mode", MODES)
async def test_modern_listen_streams_updates(client: httpx.AsyncClient, mode: str) -> None:
    body = modern_body(9, "subscriptions/listen", {"notifications": {"resourceSubscriptions": ["demo://counter"]}})
    async with client.stream("POST", MODES[mode], json=body, headers=modern_headers("subscriptions/listen")) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream).__aiter__()
        ack = (await events.__anext__()).json()
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        tag = {"io.modelcontextprotocol/subscriptionId": 9}  # the stream's notifications name it (SEP-2575)
        assert ack["params"]["_meta"] == tag
        update = (await events.__anext__()).json()
        assert update["params"] == {"uri": "demo://counter", "_meta": tag}
    only_json = await client.post(
        MODES[mode], json=body, headers=modern_headers("subscriptions/listen", accept="application/json")
    )
    assert only_json.status_code == 406

"""Replicas sharing sessions through ``--store redis://``: each request goes to the replica the test names.

A session opened on one replica is served by the other, with what the first
one learned (client capabilities, log level); a DELETE on one ends it on both;
its idle lifetime is the store's TTL; the answer to a server-to-client request
posted to the other replica reaches the request that asked; a resource changed on one replica
reaches a subscriber reading its stream from the other; a 2026-07-28
input-required round started on one replica finishes on the other (the
``requestState`` key is shared); a store outage is a 503 for what needs the
store while the rest goes on; a store that cannot be reached stops the server
at start with a message saying so.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools import ROOT
from devtools.mcp_http import INIT, headers, initialize, modern_body, modern_headers, post, sse_events
from devtools.reliability import ServerProcess
from devtools.services import RedisServer
from server_demo.demo import COUNTER_URI


@pytest.fixture
def pair(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two replicas' ``/mcp`` URLs, sharing one Redis (sessions idle out after 2 s)."""
    started: list[ServerProcess] = []
    try:
        for i in range(2):
            args = (
                "--store",
                redis_url,
                "--no-gateway",
                "--no-oauth",
                "--no-encryption",
                "--session-idle-timeout",
                "2",
            )
            started.append(ServerProcess(*args, log_path=tmp_path / f"r{i}.log"))
        yield started[0].url + "/mcp", started[1].url + "/mcp"
    finally:
        for server in started:
            server.stop()


def rpc(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def call(request_id: int, name: str, **arguments: Any) -> dict[str, Any]:
    return rpc(request_id, "tools/call", {"name": name, "arguments": arguments})


async def test_a_session_opened_on_one_replica_is_served_by_the_other(pair: tuple[str, str]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=20) as http:
        sid = await initialize(http, a, roots={"listChanged": True})
        _, reply, _ = await post(http, b, call(1, "echo", message="on b"), sid)
        assert reply["result"]["content"][0]["text"] == "on b"
        _, reply, _ = await post(http, b, rpc(2, "logging/setLevel", {"level": "error"}), sid)
        assert reply["result"] == {}
        await asyncio.sleep(0.2)  # the level is written to the store after the request ends
        _, reply, others = await post(http, a, call(3, "log_messages", count=4), sid)
        levels = [m["params"]["level"] for m in others if m.get("method") == "notifications/message"]
        assert levels == ["error"], f"replica a honours the level set on b: {levels}"
        response = await http.delete(a, headers=headers(sid))
        assert response.status_code == 200
        response = await http.post(b, json=call(4, "echo", message="x"), headers=headers(sid))
        assert response.status_code == 404, "ended on a, so ended on b"


async def test_an_answer_posted_to_the_other_replica_reaches_the_request_that_asked(pair: tuple[str, str]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=20) as http:
        sid = await initialize(http, a, sampling={})
        request = http.build_request("POST", a, json=call(1, "test_sampling", prompt="hi"), headers=headers(sid))
        response = await http.send(request, stream=True)
        events = sse_events(response)
        asked: dict[str, Any] = {}
        while not asked:
            event = await asyncio.wait_for(anext(events), 10)
            if event.data and event.json().get("method") == "sampling/createMessage":
                asked = event.json()
        answer = {"role": "assistant", "content": {"type": "text", "text": "from b"}, "model": "m"}
        posted = await http.post(b, json={"jsonrpc": "2.0", "id": asked["id"], "result": answer}, headers=headers(sid))
        assert posted.status_code == 202
        result: dict[str, Any] = {}
        while not result:
            event = await asyncio.wait_for(anext(events), 10)
            if event.data and event.json().get("id") == 1:
                result = event.json()
        await response.aclose()
        assert result["result"]["content"][0]["text"] == "LLM response: from b", result


async def test_the_idle_lifetime_is_the_stores_ttl(pair: tuple[str, str]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=20) as http:
        sid = await initialize(http, a)
        for _ in range(3):  # requests on b keep it alive past a's own idle timeout
            await asyncio.sleep(0.8)
            _, reply, _ = await post(http, b, call(1, "echo", message="alive"), sid)
            assert "result" in reply
        _, reply, _ = await post(http, a, call(2, "echo", message="still"), sid)
        assert "result" in reply, "a's copy renews from the store, not from its own clock"
        await asyncio.sleep(2.5)
        for url in (a, b):
            response = await http.post(url, json=call(3, "echo", message="x"), headers=headers(sid))
            assert response.status_code == 404, "idle past the TTL: gone everywhere"


async def test_an_update_on_one_replica_reaches_a_subscriber_reading_the_other(pair: tuple[str, str]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=20) as http:
        sid = await initialize(http, a)
        _, reply, _ = await post(http, b, rpc(1, "resources/subscribe", {"uri": COUNTER_URI}), sid)
        assert reply["result"] == {}
        request = http.build_request("GET", a, headers=headers(sid, accept="text/event-stream"))
        response = await http.send(request, stream=True)
        assert response.status_code == 200
        events = sse_events(response)
        priming = await anext(events)
        assert priming.id and not priming.data
        _, reply, _ = await post(http, b, call(2, "bump_counter"), sid)
        assert "result" in reply
        event = await asyncio.wait_for(anext(events), 10)
        assert event.json() == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": COUNTER_URI},
        }
        await response.aclose()


async def test_an_input_required_round_finishes_on_the_other_replica(pair: tuple[str, str]) -> None:
    a, b = pair
    name = "test_input_required_result_multi_round"
    async with httpx.AsyncClient(timeout=20) as http:
        caps = {"elicitation": {}}
        body = modern_body(1, "tools/call", {"name": name, "arguments": {}}, **caps)
        first = await http.post(a, json=body, headers=modern_headers("tools/call", name))
        r1 = first.json()["result"]
        assert r1["resultType"] == "input_required" and set(r1["inputRequests"]) == {"step1"}
        answer = {"action": "accept", "content": {"name": "Ada"}}
        params = {
            "name": name,
            "arguments": {},
            "inputResponses": {"step1": answer},
            "requestState": r1["requestState"],
        }
        second = await http.post(
            b, json=modern_body(2, "tools/call", params, **caps), headers=modern_headers("tools/call", name)
        )
        r2 = second.json()
        assert "result" in r2 and r2["result"]["resultType"] == "input_required", f"b opens a's state: {r2}"
        assert set(r2["result"]["inputRequests"]) == {"step2"}


async def test_a_store_outage_is_a_503_and_the_rest_of_the_server_goes_on(tmp_path: Path) -> None:
    redis = RedisServer()
    try:
        with ServerProcess("--store", redis.url, "--no-gateway", "--no-oauth", "--no-encryption") as server:
            url = server.url + "/mcp"
            async with httpx.AsyncClient(timeout=20) as http:
                sid = await initialize(http, url)
                redis.stop()
                response = await http.post(url, json=call(1, "echo", message="x"), headers=headers(sid))
                assert response.status_code == 503 and response.headers["retry-after"] == "1"
                assert "session store cannot be reached" in response.text
                response = await http.post(url, json=INIT, headers=headers())
                assert response.status_code == 503, "no new session either, and nothing half-made"
                _, reply, _ = await post(http, server.url + "/mcp/stateless", call(2, "echo", message="still"))
                assert reply["result"]["content"][0]["text"] == "still", "what needs no store is served"
                redis = RedisServer(port=redis.port)  # back, empty: the old session is gone, new ones work
                response = await http.post(url, json=call(3, "echo", message="x"), headers=headers(sid))
                assert response.status_code == 404
                assert await initialize(http, url) is not None
    finally:
        redis.stop()


@pytest.mark.parametrize("args", [["--store"], ["--backend", "redis-queue", "--redis"]], ids=["store", "queue"])
def test_a_redis_that_cannot_be_reached_stops_the_server_at_start(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server_demo", *args, "redis://127.0.0.1:1/0", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

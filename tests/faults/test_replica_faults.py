"""Two replicas on one Redis behind HAProxy (round-robin, no session affinity): one session, both replicas, one killed.

The session's POSTs are answered alternately by both replicas (counted from
their access logs). Its standalone SSE stream carries resource updates that
either replica produces; the replica holding that stream is killed (SIGKILL)
mid-stream, updates go on being produced on the survivor, and the client
resumes with ``Last-Event-ID`` through the load balancer. Compared with the
stream as Redis holds it: 0 events lost, 0 duplicated, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from devtools.mcp_http import headers, initialize, post, sse_events
from devtools.reliability import ServerProcess
from devtools.services import HAProxy
from server_demo.demo import COUNTER_URI
from server_demo.sse.redis_store import entry_seq

BUMPS = (4, 4, 3)  # before the kill, while the stream is down, after the resumption

pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def replicas(redis_url: str, tmp_path: Path, count: int = 2) -> Iterator[list[ServerProcess]]:
    """``count`` demo servers sharing ``redis_url``, each logging to its own file."""
    started: list[ServerProcess] = []
    try:
        for i in range(count):
            args = ("--store", redis_url, "--no-gateway", "--no-oauth", "--no-encryption", "--log-level", "info")
            started.append(ServerProcess(*args, log_path=tmp_path / f"replica{i}.log"))
        yield started
    finally:
        for server in started:
            server.stop()


def served(server: ServerProcess, method: str) -> int:
    """How many ``method /mcp`` requests a replica's access log shows."""
    assert server.log_path is not None
    return len(re.findall(rf'"{method} /mcp HTTP/1\.1" 200', server.log_path.read_text(errors="replace")))


def rpc(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


class StreamReader:
    """Reads the session's standalone GET stream, resuming with ``Last-Event-ID`` when asked."""

    def __init__(self, http: httpx.AsyncClient, url: str, session_id: str) -> None:
        self.http, self.url, self.session_id = http, url, session_id
        self.ids: list[str] = []
        self.updates = 0
        self.last_id: str | None = None
        self.cut = asyncio.Event()

    async def read(self) -> None:
        """One GET (fresh, or resumed after ``last_id``) until the connection breaks."""
        extra = {"last-event-id": self.last_id} if self.last_id else {}
        request = self.http.build_request(
            "GET", self.url, headers=headers(self.session_id, accept="text/event-stream", **extra)
        )
        response = await self.http.send(request, stream=True)
        assert response.status_code == 200, response.status_code
        try:
            async for event in sse_events(response):
                if event.id is not None:
                    self.last_id = event.id
                if not event.data:
                    continue  # the priming event
                assert event.id is not None
                self.ids.append(event.id)
                if event.json().get("method") == "notifications/resources/updated":
                    self.updates += 1
        except (httpx.HTTPError, OSError):
            pass
        finally:
            self.cut.set()
            await response.aclose()


async def until(predicate: Any, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_session_served_by_both_replicas_resumes_after_one_is_killed(
    redis_url: str, tmp_path: Path, record_figure: Any
) -> None:
    store = aioredis.Redis.from_url(redis_url)
    with replicas(redis_url, tmp_path) as pool, HAProxy([r.port for r in pool]) as lb:
        url = lb.url + "/mcp"
        async with httpx.AsyncClient(timeout=30) as http:
            session_id = await initialize(http, url)
            assert session_id is not None
            next_id = iter(range(1, 1000))
            for i in range(6):
                response, reply, _ = await post(
                    http, url, rpc(next(next_id), "tools/call", {"name": "echo", "arguments": {"message": f"m{i}"}}),
                    session_id,
                )  # fmt: skip
                assert response.headers["content-type"].startswith("text/event-stream")
                assert reply["result"]["content"][0]["text"] == f"m{i}", reply
            posts = [served(r, "POST") for r in pool]
            assert min(posts) >= 3, f"both replicas answer the session's POSTs: {posts}"
            _, reply, _ = await post(
                http, url, rpc(next(next_id), "resources/subscribe", {"uri": COUNTER_URI}), session_id
            )
            assert reply["result"] == {}, reply

            async def bump(count: int) -> None:
                for _ in range(count):
                    body = rpc(next(next_id), "tools/call", {"name": "bump_counter", "arguments": {}})
                    _, answer, _ = await post(http, url, body, session_id)
                    assert "result" in answer, answer

            reader = StreamReader(http, url, session_id)
            task = asyncio.create_task(reader.read())
            await until(lambda: reader.last_id is not None)  # the priming event: the stream is open
            holder = next(r for r in pool if served(r, "GET") == 1)
            survivor = next(r for r in pool if r is not holder)
            await bump(BUMPS[0])
            await until(lambda: reader.updates >= BUMPS[0])
            holder.stop(kill=True)  # mid-stream: the GET's connection breaks with it
            await asyncio.wait_for(reader.cut.wait(), 10)
            await task
            await bump(BUMPS[1])  # produced on the survivor while nobody reads the stream
            reader.cut.clear()
            task = asyncio.create_task(reader.read())  # Last-Event-ID, through the load balancer
            await bump(BUMPS[2])
            assert reader.last_id is not None
            stream_id = reader.last_id.rpartition(".")[0]

            async def truth() -> list[str]:
                entries = await store.xrange(f"pt:ev:{stream_id}")
                return [f"{stream_id}.{entry_seq(eid)}" for eid, fields in entries if b"m" in fields]

            expected = await truth()
            await until(lambda: len(reader.ids) >= len(expected))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            stored = await truth()
    await store.aclose()
    lost = [e for e in expected if e not in reader.ids]
    duplicated = len(reader.ids) - len(set(reader.ids))
    assert reader.ids == stored[: len(reader.ids)], "in the stored order"
    assert not lost and duplicated == 0, (lost, duplicated)
    assert reader.updates >= sum(BUMPS), "every bump told the subscriber"
    assert served(survivor, "GET") == 1, "the resumption was served by the survivor"
    record_figure(
        "faults: 2 replicas on Redis behind haproxy, SSE holder killed",
        f"POSTs per replica {posts}, {len(reader.ids)} events ({reader.updates} updates, "
        f"{sum(BUMPS)} bumps), 0 lost, 0 duplicated",
    )

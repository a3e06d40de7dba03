"""The queue transport on a real Redis: the Client over Redis Streams against worker processes, and the front door.

Workers are ``python -m server_demo worker`` processes (visibility timeout 1 s, so a killed worker's
request is claimed quickly); the front door is ``python -m server_demo --backend redis-queue``.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import mcp_types as mt
import pytest
import redis.asyncio as aioredis
from gateway_support import demo_tour, elicit, sampling, tool_text

from devtools import ROOT
from devtools.processes import stop_process
from devtools.servers import DemoServer
from devtools.services import RedisServer
from devtools.transports import cpython_connect
from pyodide_transport import Client
from pyodide_transport.errors import ConnectionClosedError, NetworkError, RemoteProtocolError
from pyodide_transport.messages import JSONRPCError, JSONRPCResponse, make_request, make_response
from server_demo.queue import QueueClientTransport
from server_demo.queue_core import (
    DISCOVERY_KEY,
    GROUP,
    ResponseEnvelope,
    answered_key,
    decode_record,
    encode_response,
    request_stream,
    response_stream,
)
from server_demo.queue_worker import ANSWER_SCRIPT

HANDSHAKE = "2025-11-25"
VISIBILITY = 1.0
DRAIN = 0.5

pytestmark = pytest.mark.timeout(120)


class Worker:
    """``python -m server_demo worker`` as a child process; ready once it printed its line.

    ``wait=False`` only starts it (several then start at once): call :meth:`wait_ready`.
    """

    def __init__(self, redis_url: str, worker_id: str, *capabilities: str, wait: bool = True) -> None:
        self.worker_id = worker_id
        caps = [arg for c in capabilities for arg in ("--capability", c)]
        command = [
            *(sys.executable, "-m", "server_demo", "worker", "--redis", redis_url, "--worker-id", worker_id),
            *("--visibility-timeout", str(VISIBILITY), "--heartbeat-interval", "0.2", "--drain", str(DRAIN)),
            *("--log-level", "warning"),
            *caps,
        ]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> Worker:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().decode() if ready else ""
        if "ready" not in line:
            self.stop()
            raise RuntimeError(f"worker {self.worker_id} did not start: {line!r}")
        return self

    def terminate(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def stop_all(workers: Iterable[Worker]) -> None:
    """SIGTERM every worker at once, then wait for each."""
    for worker in workers:
        if worker.proc.poll() is None:
            worker.terminate()
    for worker in workers:
        worker.stop()


@pytest.fixture
def pool(redis_url: str) -> Iterator[dict[str, Worker]]:
    """Two workers: ``wa`` serves ``global``, ``wb`` also ``calc``."""
    workers = {"wa": Worker(redis_url, "wa", wait=False), "wb": Worker(redis_url, "wb", "calc", wait=False)}
    try:
        for worker in workers.values():
            worker.wait_ready()
        yield workers
    finally:
        stop_all(workers.values())


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def queue_client(
    redis_url: str, era: str | None = HANDSHAKE, **options: Any
) -> tuple[Client, QueueClientTransport]:
    transport = await QueueClientTransport.connect(redis_url)
    client = Client(transport, protocol_version=era, request_timeout=20, **options)
    await client.connect()
    return client, transport


async def records(redis: aioredis.Redis) -> dict[str, Any]:
    return {k: decode_record(v) for k, v in (await redis.hgetall(DISCOVERY_KEY)).items()}


async def until(check: Callable[[], Any], within: float = 5.0) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, for ``within`` seconds at most."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("era", [HANDSHAKE, None], ids=["handshake", "modern"])
async def test_tools_progress_sampling_elicitation_cancellation(
    pool: dict[str, Worker], redis_url: str, era: str | None
) -> None:
    logs: list[Any] = []
    client, _ = await queue_client(
        redis_url, era, sampling_handler=sampling, elicitation_handler=elicit, on_log=logs.append
    )
    try:
        assert client.protocol_version == (era or "2026-07-28")
        assert "calc_add" in {t.name for t in (await client.list_tools()).tools}
        await demo_tour(client)
        async with aioredis.Redis.from_url(redis_url, decode_responses=True) as r:
            # the cancelled call was acknowledged: nothing pending on the request streams
            pending = await until(lambda: _no_pending(r), 3)
            assert pending, "a cancelled request's entry is acknowledged"
    finally:
        await client.close()
    if era == HANDSHAKE:
        assert logs, "log notifications reach the client"


async def _no_pending(r: aioredis.Redis) -> bool:
    for stream in (request_stream(), request_stream("calc")):
        summary = await r.xpending(stream, GROUP)
        if summary["pending"]:
            return False
    return True


async def test_sealed_request_state_opens_on_any_worker(pool: dict[str, Worker], redis_url: str) -> None:
    async def confirm(params: Any) -> mt.ElicitResult:
        return mt.ElicitResult(action="accept", content={"ok": True})

    client, transport = await queue_client(redis_url, None, elicitation_handler=confirm)  # 2026-07-28
    try:
        for _ in range(6):  # each call is two rounds; the pool serves them on either worker
            result = await client.call_tool("test_input_required_result_request_state", {})
            assert tool_text(result) == "state-ok: confirmed=True"
        assert {"wa", "wb"} <= set(transport.served_by.values())
    finally:
        await client.close()


async def test_capability_routing_and_discovery(pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis) -> None:
    found = await until(lambda: records(redis))
    assert set(found) == {"wa", "wb"}
    assert found["wa"].capabilities == () and found["wb"].capabilities == ("calc",)
    assert all(r.status == "online" and r.alive(time.time()) for r in found.values())
    client, transport = await queue_client(redis_url)
    try:
        for i in range(4):
            assert tool_text(await client.call_tool("calc_add", {"a": i, "b": 1})) == str(i + 1)
        calc_ids = [rid for rid, worker in transport.served_by.items() if worker == "wb"]
        assert len(calc_ids) >= 4

        async def counted() -> bool:  # the heartbeat carries the per-stream counts
            now = await records(redis)
            return now["wb"].served.get(request_stream("calc")) == 4

        assert await until(counted)
        now = await records(redis)
        assert now["wa"].served.get(request_stream("calc"), 0) == 0
        # global calls go to either worker; both serve the same session (the envelope carries it)
        await asyncio.gather(*(client.call_tool("echo", {"message": str(i)}) for i in range(12)))
        assert {"wa", "wb"} <= set(transport.served_by.values())
    finally:
        await client.close()
    pool["wa"].stop()  # a worker that stops leaves discovery
    assert await until(lambda: _without(redis, "wa"))


async def _without(redis: aioredis.Redis, worker_id: str) -> bool:
    return worker_id not in await redis.hgetall(DISCOVERY_KEY)


async def test_a_worker_that_never_saw_initialize_serves_the_session(redis_url: str) -> None:
    first = Worker(redis_url, "w1")
    second: Worker | None = None
    client, transport = await queue_client(redis_url, sampling_handler=sampling)
    try:
        assert tool_text(await client.call_tool("echo", {"message": "a"})) == "a"
        second = Worker(redis_url, "w2")
        first.stop()
        # sampling needs the client's declared capability: w2 knows it from the envelope only
        assert "forty-two" in tool_text(await client.call_tool("ask_llm", {"question": "q"}))
        assert set(transport.served_by.values()) == {"w1", "w2"}
        assert list(transport.served_by.values())[-1] == "w2"
    finally:
        await client.close()
        first.stop()
        if second is not None:
            second.stop()


async def _owner(redis: aioredis.Redis) -> str | None:
    rows = await redis.xpending_range(request_stream(), GROUP, "-", "+", 10)
    return str(rows[0]["consumer"]) if rows else None


async def _long_call_on_a_worker(
    client: Client, redis: aioredis.Redis, pool: dict[str, Worker], steps: int
) -> tuple[asyncio.Future[mt.CallToolResult], list[tuple[float, float]], str]:
    """Start a ``long_running`` call and wait until a worker runs it: (the call, its (time, progress), that worker)."""
    progress: list[tuple[float, float]] = []
    call = asyncio.ensure_future(
        client.call_tool(
            "long_running",
            {"steps": steps, "delay_ms": 100},
            progress=lambda v, t, m: progress.append((time.monotonic(), v)),
        )
    )
    assert await until(lambda: progress, 5)
    victim = await _owner(redis)
    assert victim in pool
    return call, progress, victim


async def test_worker_killed_mid_call_is_reclaimed_once(
    pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis, record_figure: Callable[[str, object], None]
) -> None:
    client, transport = await queue_client(redis_url)
    try:
        call, progress, victim = await _long_call_on_a_worker(client, redis, pool, 12)
        survivor = next(w for w in pool if w != victim)
        killed_at = time.monotonic()
        pool[victim].kill()
        seen = len(progress)
        result = await asyncio.wait_for(call, 20)
        answered_at = time.monotonic()
        assert tool_text(result) == "completed 12 steps"
        restarted = [t for t, v in progress[seen:] if v == 1]
        assert restarted, "the survivor ran the call again from its first step"
        reclaim_s = restarted[0] - killed_at
        # idle since its last extension (every VISIBILITY / 3), claimed on a scan (as often)
        assert VISIBILITY * 0.6 <= reclaim_s < VISIBILITY + 3
        served = list(transport.served_by.values())[-1]
        assert served == survivor
        await asyncio.sleep(0.3)  # nothing else arrives for that call
        assert transport.core.deduper.dropped == 0
        assert await _no_pending(redis)
        record_figure(
            "queue worker kill",
            f"1 call reclaimed after {reclaim_s:.2f} s (visibility timeout {VISIBILITY:g} s), answered "
            f"{answered_at - killed_at:.2f} s after the kill, 1 response, 0 duplicates",
        )
    finally:
        await client.close()


async def test_a_stopping_worker_hands_its_unfinished_call_to_the_pool(
    pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis, record_figure: Callable[[str, object], None]
) -> None:
    client, transport = await queue_client(redis_url)
    try:
        call, progress, victim = await _long_call_on_a_worker(client, redis, pool, 15)
        pool[victim].terminate()  # SIGTERM: drains DRAIN seconds, then releases the entry
        stopped_at = time.monotonic()
        seen = len(progress)
        result = await asyncio.wait_for(call, 20)
        assert tool_text(result) == "completed 15 steps"
        restarted = [t for t, v in progress[seen:] if v == 1]
        assert restarted, "the survivor ran the call again from its first step"
        handover = restarted[0] - stopped_at
        assert handover < DRAIN + VISIBILITY, "released at once, not after the visibility timeout"
        assert list(transport.served_by.values())[-1] != victim
        assert transport.core.deduper.dropped == 0
        assert victim not in await redis.hgetall(DISCOVERY_KEY)
        record_figure("queue worker SIGTERM", f"1 call handed over {handover:.2f} s after SIGTERM (drain {DRAIN:g} s)")
    finally:
        await client.close()


async def test_a_paused_worker_that_finishes_late_does_not_answer_twice(
    pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis, record_figure: Callable[[str, object], None]
) -> None:
    client, transport = await queue_client(redis_url)
    try:
        call, progress, victim = await _long_call_on_a_worker(client, redis, pool, 15)
        os.kill(pool[victim].proc.pid, signal.SIGSTOP)  # wedged: stops extending its entry
        try:
            await asyncio.sleep(VISIBILITY + 0.8)
        finally:
            os.kill(pool[victim].proc.pid, signal.SIGCONT)  # it finishes its copy of the call late
        result = await asyncio.wait_for(call, 20)
        assert tool_text(result) == "completed 15 steps"
        assert [v for _, v in progress].count(1) == 2, "the survivor ran the call again from its first step"
        await asyncio.sleep(1.5)  # long enough for the late copy to finish and try to answer
        stream = response_stream(transport.link.inbox)
        assert transport.core.deduper.dropped == 0, "the late copy wrote no second response"
        assert await redis.exists(answered_key(transport.client_id, _last_call_id(transport)))
        assert await redis.xlen(stream) <= 1  # read and trimmed: at most the last entry stays
        record_figure(
            "queue paused worker",
            f"1 call served twice (its worker paused {VISIBILITY + 0.8:g} s, timeout {VISIBILITY:g} s), "
            "1 response, 0 duplicates",
        )
    finally:
        await client.close()


def _last_call_id(transport: QueueClientTransport) -> Any:
    return list(transport.served_by)[-1]


async def test_redis_unreachable_is_a_network_error_and_a_lost_stream_closes() -> None:
    with RedisServer() as own:
        transport = await QueueClientTransport.connect(own.url)
        own.stop()
        with pytest.raises(NetworkError, match="redis unreachable"):
            await transport.send(make_request(1, "ping", {}))
        with pytest.raises(ConnectionClosedError, match="lost the queue's response stream"):
            await asyncio.wait_for(transport.receive(), 10)
        await transport.close()
        with pytest.raises(NetworkError, match="redis unreachable"):
            await QueueClientTransport.connect(own.url)


async def test_a_client_that_closes_stops_its_running_calls(
    pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis
) -> None:
    transport = await QueueClientTransport.connect(redis_url, protocol_version=HANDSHAKE)  # no handshake needed
    params = {"name": "long_running", "arguments": {"steps": 100, "delay_ms": 100}, "_meta": {"progressToken": "t"}}
    await transport.send(make_request(1, "tools/call", params))
    note = await asyncio.wait_for(transport.receive(), 5)
    assert getattr(note, "method", None) == "notifications/progress"
    closed_at = time.monotonic()
    await transport.close()  # the workers stop the call and acknowledge its entry
    assert await until(lambda: _no_pending(redis), 3)
    assert time.monotonic() - closed_at < 3
    assert (
        not await redis.exists(response_stream(transport.link.inbox))
        or await redis.xlen(response_stream(transport.link.inbox)) <= 2
    )


async def test_an_answered_but_unacknowledged_entry_is_acked_not_served_again(
    pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis
) -> None:
    """A worker died after writing the response and before ``XACK`` (the marker is set): nobody runs it again."""
    transport = await QueueClientTransport.connect(redis_url, protocol_version=HANDSHAKE)
    try:
        request = make_request(7, "tools/call", {"name": "echo", "arguments": {"message": "once"}})
        out = transport.core.outgoing(request, set())
        async with redis.pipeline(transaction=True) as multi:  # atomic: the live workers cannot take it first
            multi.xadd(out.stream, out.fields)  # type: ignore[arg-type]
            multi.xreadgroup(GROUP, "ghost", {out.stream: ">"}, count=1)  # taken by a worker that then dies
            _, ghost = await multi.execute()
        assert ghost
        answer = make_response(7, {"content": [{"type": "text", "text": "once"}]})
        await redis.set(answered_key(transport.client_id, 7), "1", px=60_000)
        inbox = response_stream(transport.link.inbox)
        await redis.xadd(inbox, encode_response(ResponseEnvelope(transport.client_id, answer, "ghost")))  # type: ignore[arg-type]
        got = await asyncio.wait_for(transport.receive(), 5)
        assert isinstance(got, JSONRPCResponse) and got.id == 7
        assert await until(lambda: _no_pending(redis), VISIBILITY + 3), "a worker claimed it and acknowledged it"
        await transport.send(make_request(8, "ping", {}))
        pong = await asyncio.wait_for(transport.receive(), 5)
        assert isinstance(pong, JSONRPCResponse) and pong.id == 8, "no second answer to 7 came first"
        assert transport.core.deduper.dropped == 0
    finally:
        await transport.close()


async def test_answer_script_writes_once_and_the_client_drops_duplicates(
    pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis
) -> None:
    transport = await QueueClientTransport.connect(redis_url)
    try:
        stream = response_stream(transport.link.inbox)
        response = make_response("r-1", {"ok": True})
        fields = encode_response(ResponseEnvelope(transport.client_id, response, "wx"))
        pairs = [p for item in fields.items() for p in item]
        keys = (answered_key(transport.client_id, "r-1"), stream, stream)
        args = (60_000, GROUP, "", "", 1000, 60_000, *pairs)
        wrote = [await redis.eval(ANSWER_SCRIPT, 3, *keys, *args) for _ in range(2)]  # type: ignore[misc]
        assert wrote == [1, 0]
        got = await asyncio.wait_for(transport.receive(), 5)
        assert isinstance(got, JSONRPCResponse) and got.id == "r-1"
        # a second response written around the marker (e.g. after it expired) is dropped by the client
        await redis.xadd(stream, fields)  # type: ignore[arg-type]
        await redis.xadd(stream, encode_response(ResponseEnvelope(transport.client_id, make_response("r-2", {}), "wx")))  # type: ignore[arg-type]
        got = await asyncio.wait_for(transport.receive(), 5)
        assert isinstance(got, JSONRPCResponse) and got.id == "r-2"
        assert transport.core.deduper.dropped == 1
    finally:
        await transport.close()


async def test_malformed_entries_are_answered_acked_and_serving_goes_on(
    pool: dict[str, Worker], redis_url: str, redis: aioredis.Redis
) -> None:
    transport = await QueueClientTransport.connect(redis_url)
    client_id, inbox = transport.client_id, transport.link.inbox
    try:
        garbage = [
            {"x": "1"},  # no envelope at all: nobody to tell
            {"v": "9", "client": client_id, "inbox": inbox, "msg": "{}"},
            {"v": "1", "client": client_id, "inbox": inbox, "msg": '{"jsonrpc":"2.0","id":"bad-1","method":5}'},
            {"v": "1", "client": client_id, "inbox": inbox, "msg": "{not json"},
            {"v": "1", "client": "../../etc", "inbox": inbox, "msg": "{}"},
        ]
        for fields in garbage:
            await redis.xadd(request_stream(), fields)  # type: ignore[arg-type]
        errors = [await asyncio.wait_for(transport.receive(), 5) for _ in range(3)]
        assert all(isinstance(e, JSONRPCError) and e.error.code == -32600 for e in errors)
        texts = {e.id: [] for e in errors if isinstance(e, JSONRPCError)}
        for e in errors:
            assert isinstance(e, JSONRPCError)
            texts[e.id].append(e.error.message)
        assert set(texts) == {"bad-1", None}
        assert "Invalid Request" in texts["bad-1"][0] and "not one JSON-RPC message" in texts["bad-1"][0]
        assert any("envelope version '9'" in t for t in texts[None]) and any("invalid JSON" in t for t in texts[None])
        assert await until(lambda: _no_pending(redis), 3)
        assert await redis.xlen(request_stream()) == 0, "every malformed entry was acknowledged and deleted"
        # the workers go on serving
        await transport.send(make_request(1, "ping", {}))
        pong = await asyncio.wait_for(transport.receive(), 5)
        assert isinstance(pong, JSONRPCResponse) and pong.id == 1
        # a malformed entry on the client's own stream is raised once; reading goes on
        await redis.xadd(response_stream(inbox), {"v": "1", "client": client_id, "worker": "w", "msg": "[]"})
        with pytest.raises(RemoteProtocolError, match="not one JSON-RPC message"):
            await asyncio.wait_for(transport.receive(), 5)
        await transport.send(make_request(2, "ping", {}))
        pong = await asyncio.wait_for(transport.receive(), 5)
        assert isinstance(pong, JSONRPCResponse) and pong.id == 2
    finally:
        await transport.close()


# -- the front door --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def front_door_env() -> Iterator[tuple[DemoServer, str]]:
    """A front door and two workers on a Redis of their own (module-wide: the other tests flush theirs)."""
    with RedisServer() as own:
        workers = [Worker(own.url, "wa", wait=False), Worker(own.url, "wb", "calc", wait=False)]
        try:
            for worker in workers:
                worker.wait_ready()
            server = DemoServer("--backend", "redis-queue", "--redis", own.url, "--no-gateway", "--no-oauth")
            try:
                yield server, own.url
            finally:
                server.stop()
        finally:
            stop_all(workers)
            own.stop()


@pytest.fixture
async def front_door(front_door_env: tuple[DemoServer, str]) -> AsyncIterator[tuple[DemoServer, aioredis.Redis]]:
    server, url = front_door_env
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        yield server, client
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("path", "era"),
    [("/mcp", HANDSHAKE), ("/mcp", None), ("/mcp/json", HANDSHAKE), ("/mcp/stateless", HANDSHAKE), ("/ws", HANDSHAKE)],
    ids=["mcp-handshake", "mcp-modern", "json", "stateless", "ws"],
)
async def test_front_door_hands_requests_to_the_workers(
    front_door: tuple[DemoServer, aioredis.Redis], path: str, era: str | None
) -> None:
    server, redis = front_door

    async def calc_count() -> int:
        found = await records(redis)
        return found["wb"].served.get(request_stream("calc"), 0) if "wb" in found else -1

    before = await calc_count()
    url = server.url.replace("http:", "ws:") + path if path == "/ws" else server.url + path
    options: dict[str, Any] = {"request_timeout": 20}
    if era is not None:
        options["protocol_version"] = era
    if path != "/mcp/stateless":
        options.update(sampling_handler=sampling, elicitation_handler=elicit)
    client = await cpython_connect(url, **options)
    try:
        result = await client.call_tool("calculate", {"a": 2, "b": 3, "operation": "add"})
        assert result.structured_content == {"result": 5, "expression": "2 + 3 = 5"}
        progress: list[float] = []
        result = await client.call_tool(
            "long_running", {"steps": 3, "delay_ms": 5}, progress=lambda v, t, m: progress.append(v)
        )
        assert tool_text(result) == "completed 3 steps"
        if path != "/mcp/json" and path != "/mcp/stateless":
            assert progress == [1, 2, 3]
        assert tool_text(await client.call_tool("calc_add", {"a": 40, "b": 2})) == "42"
        if path != "/mcp/stateless":
            assert "forty-two" in tool_text(await client.call_tool("ask_llm", {"question": "q"}))
    finally:
        await client.close()

    async def calc_served() -> bool:
        return await calc_count() == before + 1

    assert await until(calc_served), "calc_add went to the calc worker"
